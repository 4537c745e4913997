"""The MASC paper, *Decoding generalization from memorization in deep neural networks*.

- :mod:`.classifier` — MASC itself, a scikit-learn estimator (class subspaces by PCA, angle to each)
- :mod:`.decoding` — MASC layer by layer on trained runs (Table 2, Figures 1-3), stored in the result store
- :mod:`.summaries` — the chapter's grid summarized: Tables 2-3, the data-size panel, the decoding jobs and the
  per-layer summaries of Figures 1-3, 5, 6, 9, 10, 16-18 (pure functions of the run and decoding tables)
"""
