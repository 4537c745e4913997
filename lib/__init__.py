"""``lib``: the one library behind the book. A map of the package, by what a module is for.

The engine (every chapter trains through it; the run cache's key hashes the first six, ``lib.keys.TRAINING_MODULES``):

- :mod:`lib.data` — MNIST, Fashion-MNIST, CIFAR-10/100 as in-memory tensors, found offline (``$LIB_DATA_DIR``, ``../shared/data``)
- :mod:`lib.corrupt` — label and input randomizations (Zhang et al.; Theunissen et al.'s Algorithms 1-3), pure functions
- :mod:`lib.augment` — Zhang et al.'s augmentations on whole batches
- :mod:`lib.models` — every paper's architecture, by name, with probe-able blocks
- :mod:`lib.train` — one typed :class:`~lib.train.RunConfig`, one training loop
- :mod:`lib.batched` — many same-shaped networks trained as one stacked model (pays on a GPU)
- :mod:`lib.runs` — the run cache (content-addressed, atomic, locked, resumable) and the grid API
- :mod:`lib.cluster` — the grid API's Dask backend
- :mod:`lib.cache` — the result store for everything that is not a training run (solves, sweeps, decodings)
- :mod:`lib.params`, :mod:`lib.schemas`, :mod:`lib.studies.protocols` — chapter parameters, their schemas, and the papers'
  protocols as run configurations shared between chapters

Per paper (the analysis a chapter does besides training), in :mod:`lib.studies`, one package per paper:

- :mod:`lib.studies.zhang2017` (Zhang, Bengio, Hardt, Recht & Vinyals 2017): ``protocol`` (the four chapters'
  schemas, appendix A's runs), ``randomization`` (Figure 1, Table 1), ``regularization`` (Tables 1, 2, 4, Figure 2),
  ``expressivity`` (Theorem 1, Lemma 1, Corollary 1), ``kernels`` (Section 5's interpolant) and ``kernel_features``
  (Table 3's inputs, solve jobs and tables)
- :mod:`lib.studies.theunissen2019` (Theunissen, Davel & Barnard 2019): ``protocol`` (schema, Appendix A's runs),
  ``probes`` (per-layer probes), ``noise`` (the chapter's grid and its Figures 1-7 measures)
- :mod:`lib.studies.masc` (the MASC paper): ``protocol``, ``classifier`` (MASC, a scikit-learn estimator),
  ``decoding`` (layer by layer, stored), ``summaries`` (Tables 1-3, the per-layer figures, the data-size panel)
- :mod:`lib.studies.weng2019` (Weng 2019 and the works it tours): ``protocol`` (the three chapters' schemas),
  ``double_descent`` and ``risk_curves`` (Belkin et al.), ``intrinsic_dimension``, ``subspace_runs`` and
  ``subspace_fits`` (Li et al.), ``layer_robustness`` (Zhang, Bengio & Singer)
- :mod:`lib.studies.synthesis`: across papers
- The papers' own numbers, as data: :mod:`lib.papers`

The publishing layer: :mod:`lib.book` (the build, the command line ``python -m lib``, the opening box, claims and the
scorecard, plots, the prose checker).

In a checkout, ``lib`` reads the chapters (``book/``), their parameters (``params/``) and the committed results store
(``results/``) at the repository root; a wheel (``pip install .``, or from the repository's URL) carries copies of
them inside the package, under ``lib/_repo``, and reads those (:data:`lib.settings.REPO_ROOT`). Caches go to the
user's cache folder, never into the package.
"""
