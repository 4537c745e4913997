"""Zhang, Bengio, Hardt, Recht & Vinyals (ICLR 2017): the analysis besides training.

- :mod:`.protocol` — the four chapters' parameter schemas and appendix A's runs (:func:`.protocol.zhang_config`)
- :mod:`.randomization` — Figure 1 and Table 1: convergence, the slowdown of random labels, the test-error curve
- :mod:`.regularization` — Tables 1, 2 and 4 and Figure 2: regularizer gains, early stopping, BatchNorm
- :mod:`.expressivity` — Section 4: Theorem 1's depth-2 construction, Lemma 1, Corollary 1
- :mod:`.kernels` — Section 5: minimum-norm kernel interpolation, exact and iterative (a scikit-learn estimator)
- :mod:`.kernel_features` — Table 3's inputs (pixels, Gabor wavelets, random convolutional filters), the
  chapter's solve jobs and its tables
"""
