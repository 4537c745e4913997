"""The MASC paper, *Decoding generalization from memorization in deep neural networks*.

- :mod:`.classifier` — MASC itself, a scikit-learn estimator (class subspaces by PCA, angle to each)
- :mod:`.decoding` — MASC layer by layer on trained runs (Table 2, Figures 1-3), stored in the result store
"""
