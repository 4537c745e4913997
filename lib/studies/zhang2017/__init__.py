"""Zhang, Bengio, Hardt, Recht & Vinyals (ICLR 2017): the analysis besides training.

- :mod:`.randomization` — Figure 1's quantities (convergence, the slowdown factor of random labels)
- :mod:`.expressivity` — Section 4: Theorem 1's depth-2 construction, Lemma 1, Corollary 1
- :mod:`.kernels` — Section 5: minimum-norm kernel interpolation, exact and iterative (a scikit-learn estimator)
- :mod:`.kernel_features` — Table 3's inputs: pixels, Gabor wavelets, random convolutional filters
"""
