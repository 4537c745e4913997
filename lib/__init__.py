"""``lib``: the one library behind the book. A map of the package, by what a module is for.

The engine (every chapter trains through it; the run cache's key hashes the first six, ``lib.runs.TRAINING_MODULES``):

- :mod:`lib.data` — MNIST, Fashion-MNIST, CIFAR-10/100 as in-memory tensors, found offline (``$LIB_DATA_DIR``, ``../shared/data``)
- :mod:`lib.corrupt` — label and input randomizations (Zhang et al.; Theunissen et al.'s Algorithms 1-3), pure functions
- :mod:`lib.augment` — Zhang et al.'s augmentations on whole batches
- :mod:`lib.models` — every paper's architecture, by name, with probe-able blocks
- :mod:`lib.train` — one typed :class:`~lib.train.RunConfig`, one training loop
- :mod:`lib.batched` — many same-shaped networks trained as one stacked model (pays on a GPU)
- :mod:`lib.runs` — the run cache (content-addressed, atomic, locked, resumable) and the grid API
- :mod:`lib.cluster` — the grid API's Dask backend
- :mod:`lib.cache` — the result store for everything that is not a training run (solves, sweeps, decodings)
- :mod:`lib.params`, :mod:`lib.schemas`, :mod:`lib.protocols` — chapter parameters, their schemas, and the papers'
  protocols as run configurations shared between chapters

Per paper (the analysis a chapter does besides training):

- Zhang, Bengio, Hardt, Recht & Vinyals (2017): :mod:`lib.expressivity` (Theorem 1, Lemma 1, Corollary 1),
  :mod:`lib.kernels` and :mod:`lib.kernel_features` (Section 5, Table 3), :mod:`lib.metrics` (Figure 1's quantities)
- Theunissen, Davel & Barnard (2019): :mod:`lib.probes` (per-layer probes, Figures 3-7)
- The MASC paper: :mod:`lib.masc` (the classifier, a scikit-learn estimator), :mod:`lib.decode` (layer by layer)
- Weng (2019) and the works it tours: :mod:`lib.double_descent` (Belkin et al.), :mod:`lib.subspace` (Li et al.'s
  intrinsic dimension), :mod:`lib.layers` (Zhang, Bengio & Singer's layer robustness)
- Across papers: :mod:`lib.synthesis`
- The papers' own numbers, as data: :mod:`lib.papers`

The publishing layer: :mod:`lib.book` (the build, the command line ``python -m lib``, the opening box, claims and the
scorecard, plots, the prose checker).
"""
