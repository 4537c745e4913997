"""Zhang, Bengio, Hardt, Recht & Vinyals (ICLR 2017): the four chapters' parameter schemas and the runs they build.

:func:`zhang_config` is appendix A's protocol: CIFAR-10 centre-cropped to 28x28 and standardized per image, SGD
with momentum 0.9, the model's learning rate decayed per epoch, no explicit regularization unless a change turns it
on; labels redrawn uniformly with probability ``corruption`` (``partial_labels``). The randomization and the
regularization chapters both build their runs here, so the unregularized runs they share are trained once
(:mod:`lib.studies.protocols` is where chapters import it from). :data:`ZHANG_TABLE1_ROWS` and
:data:`ZHANG_TABLE4_SETTINGS` name the regularizer settings of Table 1's and Table 4's rows, and
:func:`zhang_row_config` builds one of them.

Schemas: ``zhang-randomization`` (Figure 1, Table 1), ``zhang-regularization`` (Tables 1, 2 and 4, Figure 2),
``zhang-expressivity`` (Section 4) and ``zhang-kernels`` (Section 5, Table 3).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from lib.schemas import (BnStatisticsName, ChapterParams, DatasetName, Decay, Entry, Epochs, Fraction, InitName,
                         ModelName, NonEmpty, NonNegativeFloat, PositiveFloat, PositiveInt, PrecisionName, Probability,
                         Seed, _distinct, _located, _must_include, _must_name, check_subset, did_you_mean, schema)
from lib.train import RunConfig


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


def zhang_config(P: ZhangRandomization | ZhangRegularization, model: str, **changes) -> RunConfig:
    """One CIFAR-10 run of Zhang et al.'s appendix A for model entry ``P.models[model]``, unregularized.

    The model entry gives ``n_train``, ``lr`` and ``lr_decay``, and may replace the chapter-wide ``n_test``,
    ``max_epochs`` and ``test_every`` (where the entry's file gives them: ``m.get``), and PyTorch's defaults
    ``precision``, ``init`` and ``bn_statistics``, for that model; ``changes`` replace any field afterwards
    (``corruption=1.0`` for random labels, ``weight_decay=``, ``augment=``). Labels are ``partial_labels`` at
    ``corruption`` (0 by default: the true labels), so the true-label run of every chapter is the same run.
    """
    m = P.models[model]
    values = dict(dataset=P.dataset, n_train=m.n_train, n_test=m.get("n_test", P.n_test), model=model,
                  lr=m.lr, lr_decay=m.lr_decay, batch_size=P.batch_size,
                  max_epochs=m.get("max_epochs", P.max_epochs), stop_train_acc=P.stop_train_acc,
                  test_every=m.get("test_every", P.test_every), seed=P.seed, data_seed=P.data_seed,
                  randomization="partial_labels")
    for key in ("precision", "init", "bn_statistics"):
        if m.get(key) is not None:
            values[key] = m[key]
    return RunConfig(**{**values, **changes})


def zhang_row_config(P: ZhangRegularization, model: str, row: str, table: str = "table1", **changes) -> RunConfig:
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
        regularized["weight_decay"] = float(P.models[model].weight_decay)
    if augment != "none":
        regularized["augment"] = augment
    return zhang_config(P, model, corruption=corruption, **{**regularized, **changes})


# --- parameter schemas ------------------------------------------------------------------------------------------

class ZhangModel(Entry):
    """One architecture of Zhang et al.'s Figure 1 grid (keyed by its model name)."""

    lr: PositiveFloat
    n_train: PositiveInt | None
    lr_decay: Decay
    corruption_levels: Annotated[list[Probability], NonEmpty]
    precision: PrecisionName | None = None  # bf16 autocast where a CPU or GPU gains by it (None: fp32, the paper's)

    @model_validator(mode="after")
    def _levels(self):
        _distinct(self.corruption_levels, "corruption_levels")
        return self


class ZhangDataSizes(Entry):
    """The data-size panel: true-label runs of these models on growing subsets."""

    models: Annotated[list[ModelName], NonEmpty]
    sizes: Annotated[list[PositiveInt], NonEmpty]


@schema("zhang-randomization")
class ZhangRandomization(ChapterParams):
    """Zhang et al. 2017, Figure 1: label-corruption grid per model and the pixel randomizations. Every model runs at
    p = 0 (Figure 1b divides by its time at p = 0); the loss-curve model also at p = 1 (Figure 1a's random labels)."""

    dataset: DatasetName
    n_test: PositiveInt | None
    batch_size: PositiveInt
    max_epochs: Epochs
    stop_train_acc: Fraction | None
    test_every: PositiveInt
    seed: Seed
    data_seed: Seed
    models: Annotated[dict[ModelName, ZhangModel], NonEmpty]
    loss_curve_model: ModelName
    data_sizes: ZhangDataSizes

    @model_validator(mode="after")
    def _consistent(self):
        _must_name(self.loss_curve_model, list(self.models), "loss_curve_model", "the models")
        for name, entry in self.models.items():
            _must_include(entry.corruption_levels, [0.0], f"models.{name}.corruption_levels",
                          "Figure 1b divides each model's convergence time by its time at p = 0")
        _must_include(self.models[self.loss_curve_model].corruption_levels, [0.0, 1.0],
                      f"models.{self.loss_curve_model}.corruption_levels",
                      "it is the loss_curve_model: Figure 1a draws its true labels, p = 0, and random labels, p = 1")
        for i, name in enumerate(self.data_sizes.models):
            _must_name(name, list(self.models), f"data_sizes.models.{i}", "the models")
        for n in self.data_sizes.sizes:
            check_subset(self.dataset, n, None, where="data_sizes.sizes.")
        check_subset(self.dataset, None, self.n_test)
        for name, entry in self.models.items():
            check_subset(self.dataset, entry.n_train, None, where=f"models.{name}.")
        return self


class ExpressivityDepthK(Entry):
    n: PositiveInt                  # points (the first n of the chapter's MNIST subset)
    groups: Annotated[list[PositiveInt], NonEmpty]  # g: depth k = g + 3 linear layers


class ExpressivitySGD(Entry):
    n_train: PositiveInt
    generous_model: ModelName       # a lib.models name far larger than the construction (e.g. mlp1x512); the chapter
                                    # adds the 784-H-10 MLP with the fewest weights >= 2n + d
    lr: PositiveFloat
    lr_decay: Decay
    max_epochs: Epochs
    batch_size: PositiveInt


@schema("zhang-expressivity")
class ZhangExpressivity(ChapterParams):
    dataset: DatasetName
    sizes: Annotated[list[PositiveInt], NonEmpty]  # n of Theorem 1's fits (nested subsets of one random-label subset)
    data_seed: Seed
    projection_seed: Seed
    best_of_draws: PositiveInt      # random directions tried by the best_of projection
    bias_positions: Annotated[list[Annotated[float, Field(gt=0, lt=1)]], NonEmpty]  # θ of b_i = x_{i-1} + θ h_i, at max n
    sv_iterations: PositiveInt      # power-iteration steps of the σ_max / σ_min estimates
    svd_max_n: PositiveInt          # exact singular values (full SVD) up to this n
    exact_n: PositiveInt            # n of the exact rational (Fraction) solve
    depth_k: ExpressivityDepthK
    sgd: ExpressivitySGD

    @model_validator(mode="after")
    def _consistent(self):
        check_subset(self.dataset, max(self.sizes), None, where="sizes.")
        check_subset(self.dataset, self.sgd.n_train, None, where="sgd.")
        return self


class ZhangRegularizationModel(Entry):
    """One model of Zhang et al.'s Table 1 (``book/zhang-regularization.md``); optional keys replace the chapter-wide
    value for this model's runs (see :func:`lib.studies.protocols.zhang_config`)."""

    lr: PositiveFloat
    n_train: PositiveInt | None  # None = all 50,000 training images
    lr_decay: Decay
    weight_decay: PositiveFloat  # used by the rows that turn weight decay on (0 would make them the rows without it)
    n_test: PositiveInt | None = None
    max_epochs: Epochs | None = None
    test_every: PositiveInt | None = None
    regularized_max_epochs: Epochs | None = None  # epoch cap of the runs the randomization chapter does not share
    augmented_max_epochs: Epochs | None = None  # epoch cap of Table 1's random-crop runs
    init: InitName | None = None  # an initialization of lib.models.initialize (None = PyTorch's default)
    bn_statistics: BnStatisticsName | None = None  # BatchNorm's statistics at evaluation (lib.train.RunConfig)


@schema("zhang-regularization")
class ZhangRegularization(ChapterParams):
    """Zhang et al. 2017, Tables 1, 2 and 4 and Figure 2: the models are those of the paper's Table 1 (the chapter
    reads their rows from the paper's numbers, :mod:`lib.papers`)."""

    dataset: DatasetName
    n_test: PositiveInt | None
    batch_size: PositiveInt
    max_epochs: Epochs
    stop_train_acc: Fraction
    test_every: PositiveInt
    seed: Seed
    data_seed: Seed
    models: Annotated[dict[str, ZhangRegularizationModel], NonEmpty]
    figure2b_test_every: PositiveInt
    table4_augmented_lr_decay: Decay
    table4_augmented_max_epochs: Epochs

    @model_validator(mode="after")
    def _consistent(self):
        from lib.papers import paper

        table1 = list(dict.fromkeys(key.split(".")[1] for key in paper("zhang2017").keys("table1")))
        for name, entry in self.models.items():
            if name not in table1:
                raise _located(f"models.{name}: is not a model of the paper's Table 1{did_you_mean(name, table1)}; "
                               f"its models: {', '.join(table1)}")
            check_subset(self.dataset, entry.n_train, entry.n_test, where=f"models.{name}.")
        check_subset(self.dataset, None, self.n_test)
        return self


class KernelSolverEntry(Entry):
    """Settings of the iterative kernel solve (lib.studies.zhang2017.kernels.KernelInterpolant)."""

    solver: Literal["auto", "cholesky", "pcg", "eigenpro"] = "pcg"  # KernelInterpolant's solvers
    max_iter: PositiveInt
    tol: PositiveFloat = 1e-6
    m: PositiveInt  # Nyström subsample for the preconditioner
    q: PositiveInt  # eigen-directions flattened by it


@schema("zhang-kernels")
class ZhangKernels(ChapterParams):
    """Zhang et al. 2017, Section 5 and Table 3: minimum-norm Gaussian-kernel interpolation."""

    gamma: PositiveFloat  # exp(−γ‖x − y‖²) on MNIST pixels in [0, 1]
    n_full: PositiveInt | None  # the MNIST headline fit; None = the largest n that fits in memory (at most 60,000)
    n_curve: Annotated[list[PositiveInt], NonEmpty]  # exact (Cholesky) fits on the way
    n_check: PositiveInt  # exact and iterative on the same subset
    n_test: PositiveInt | None  # None = all 10,000
    exact_max: PositiveInt  # Cholesky up to this n
    iterative: KernelSolverEntry
    random_label_seed: Seed
    gabor_n: Annotated[list[PositiveInt], NonEmpty]
    gabor_scales: PositiveInt
    gabor_orientations: PositiveInt
    gabor_pool: PositiveInt
    cifar_n: PositiveInt
    cifar_n_test: PositiveInt
    rcf_filters: Annotated[list[PositiveInt], NonEmpty]
    rcf_n: PositiveInt
    rcf_patch: PositiveInt
    rcf_alpha: NonNegativeFloat
    seed: Seed
