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
- :func:`zhang_config`: Zhang, Bengio, Hardt, Recht & Vinyals (ICLR 2017), appendix A — CIFAR-10
  centre-cropped to 28x28 and standardized per image, SGD with momentum 0.9, the model's learning
  rate decayed per epoch, no explicit regularization unless a change turns it on; labels redrawn
  uniformly with probability ``corruption`` (``partial_labels``). ``P`` is
  ``params/<scale>/zhang-randomization.yaml`` or ``params/<scale>/zhang-regularization.yaml``;
  both chapters build their configurations here, so the unregularized runs they share are trained once.
  :data:`ZHANG_TABLE1_ROWS` and :data:`ZHANG_TABLE4_SETTINGS` name the regularizer settings of the
  paper's Table 1 rows and Table 4 rows, and :func:`zhang_row_config` builds one of them.
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


ZHANG_TABLE1_ROWS = {  # Table 1 row -> (augment, weight decay on, label corruption)
    "crop_wd": ("crop", True, 0.0),
    "crop": ("crop", False, 0.0),
    "wd": ("none", True, 0.0),
    "none": ("none", False, 0.0),
    "random_labels": ("none", False, 1.0),
}
ZHANG_TABLE4_SETTINGS = {  # Table 4 row (all on random labels) -> (augment, weight decay on)
    "wd": ("none", True),
    "crop": ("crop", False),
    "augmentation": ("flip_rotate", False),
}


def zhang_config(P: Mapping, model: str, **changes) -> RunConfig:
    """One CIFAR-10 run of Zhang et al.'s appendix A for model entry ``P["models"][model]``, unregularized.

    The model entry gives ``n_train``, ``lr`` and ``lr_decay``, and may replace the chapter-wide ``n_test``,
    ``max_epochs`` and ``test_every``, and PyTorch's defaults ``precision``, ``init`` and ``bn_statistics``, for that
    model; ``changes`` replace any field afterwards (``corruption=1.0`` for random labels, ``weight_decay=``,
    ``augment=``). Labels are ``partial_labels`` at
    ``corruption`` (0 by default: the true labels), so the true-label run of every chapter is the same run.
    """
    m = P["models"][model]
    values = dict(dataset=P["dataset"], n_train=m["n_train"], n_test=m.get("n_test", P["n_test"]), model=model,
                  lr=m["lr"], lr_decay=m["lr_decay"], batch_size=P["batch_size"],
                  max_epochs=m.get("max_epochs", P["max_epochs"]), stop_train_acc=P["stop_train_acc"],
                  test_every=m.get("test_every", P["test_every"]), seed=P["seed"], data_seed=P["data_seed"],
                  randomization="partial_labels")
    for key in ("precision", "init", "bn_statistics"):
        if m.get(key) is not None:
            values[key] = m[key]
    return RunConfig(**{**values, **changes})


def zhang_row_config(P: Mapping, model: str, row: str, table: str = "table1", **changes) -> RunConfig:
    """The run of one row of Zhang et al.'s Table 1 (``table="table1"``, rows :data:`ZHANG_TABLE1_ROWS`) or Table 4
    (``table="table4"``: random labels with the regularizer of :data:`ZHANG_TABLE4_SETTINGS`), for ``model``.

    Weight decay, where the row turns it on, is the model entry's ``weight_decay`` (the paper does not give it)."""
    if table == "table1":
        augment, decay, corruption = ZHANG_TABLE1_ROWS[row]
    elif table == "table4":
        (augment, decay), corruption = ZHANG_TABLE4_SETTINGS[row], 1.0
    else:
        raise ValueError(f"table must be 'table1' or 'table4', got {table!r}")
    regularized = {}
    if decay:
        regularized["weight_decay"] = float(P["models"][model]["weight_decay"])
    if augment != "none":
        regularized["augment"] = augment
    return zhang_config(P, model, corruption=corruption, **{**regularized, **changes})
