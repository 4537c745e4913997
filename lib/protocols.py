"""The papers' training protocols as :class:`~lib.train.RunConfig`, built from a chapter's parameters.

One function per paper, so that every page that needs a paper's networks (its own chapter, and
the cross-paper chapter that re-analyses them) builds exactly the same configurations and
therefore gets exactly the same runs from the cache (the cache key is the configuration).

- :func:`theunissen_config`: Theunissen, Davel & Barnard (FAIR 2019), Appendix A — the 55k/5k/10k
  split, pixels /255, MSE on one-hot targets, Adam, no regularization, noise of Appendix B
  (Algorithms 1-3) with probability ``p``. ``P`` is ``params/<scale>/theunissen-noise.yaml``.
- :func:`masc_config`: "Decoding generalization from memorization in deep neural networks",
  section 3.1 and appendix A.2 — one model entry of ``params/<scale>/masc-decoding.yaml``
  (architecture, optimizer, stopping criterion) with labels redrawn uniformly with probability
  ``p``.
"""

from __future__ import annotations

from collections.abc import Mapping

from lib.train import RunConfig


def theunissen_config(P: Mapping, dataset: str, noise: str, p: float, **changes) -> RunConfig:
    """One setting of Theunissen et al.'s Appendix A; ``p = 0`` is the same clean run for every noise type.

    ``noise`` is ``label_noise`` (Alg. 1), ``gaussian_input`` (Alg. 2) or ``structured_input``
    (Alg. 3); ``changes`` replace fields (e.g. ``model=`` for Figure 4's smaller network).
    """
    values = dict(dataset=dataset, split="theunissen", n_train=P["n_train"], n_test=P["n_test"],
                  randomization=noise if p > 0 else "none", corruption=float(p) if p > 0 else 0.0,
                  preprocessing="scale", data_seed=P["data_seed"], model=P["model"], init=P["init"], optimizer="adam",
                  lr=P["lr"], lr_decay=1.0, batch_size=P["batch_size"], loss="mse", max_epochs=P["max_epochs"],
                  stop_train_acc=P["stop_train_acc"], test_every=P["test_every"])
    return RunConfig(**{**values, **changes})


def masc_config(P: Mapping, spec: Mapping, p: float, seed: int) -> RunConfig:
    """One run of the MASC paper: model entry ``spec`` (a value of ``P["models"]``) at label corruption ``p``."""
    return RunConfig(dataset=spec["dataset"], n_train=spec["n_train"], n_test=P["n_test"], randomization="partial_labels",
                     corruption=p, preprocessing=spec["preprocessing"], data_seed=P["data_seed"], model=spec["model"],
                     seed=seed, optimizer=spec["optimizer"], lr=spec["lr"], momentum=spec["momentum"], lr_decay=1.0,
                     batch_size=spec["batch_size"], max_epochs=spec["max_epochs"], stop_train_acc=spec["stop_train_acc"],
                     test_every=P["test_every"])
