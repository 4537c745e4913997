"""Zhang, Bengio, Hardt, Recht & Vinyals (ICLR 2017): the four chapters' parameter schemas and the runs they build.

:func:`zhang_config` is appendix A's protocol: CIFAR-10 centre-cropped to 28x28 and standardized per image, SGD
with momentum 0.9, the model's learning rate decayed per epoch, no explicit regularization unless a change turns it
on; labels redrawn uniformly with probability ``corruption`` (``partial_labels``). The randomization and the
regularization chapters both build their runs here, so the unregularized runs they share are trained once
(:mod:`lib.protocols` is where chapters import it from). :data:`ZHANG_TABLE1_ROWS` and
:data:`ZHANG_TABLE4_SETTINGS` name the regularizer settings of Table 1's and Table 4's rows, and
:func:`zhang_row_config` builds one of them.

Schemas: ``zhang-randomization`` (Figure 1, Table 1), ``zhang-regularization`` (Tables 1, 2 and 4, Figure 2),
``zhang-expressivity`` (Section 4) and ``zhang-kernels`` (Section 5, Table 3).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from lib.schemas import (BnStatisticsName, ChapterParams, DatasetName, Entry, Fraction, InitName, ModelName,
                         NonEmpty, NonNegativeFloat, PositiveFloat, PositiveInt, PrecisionName, Probability, Seed, _must_name,
                         check_subset, schema)
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
    lr_decay: PositiveFloat
    corruption_levels: Annotated[list[Probability], NonEmpty]
    precision: PrecisionName | None = None  # bf16 autocast where a CPU or GPU gains by it (None: fp32, the paper's)


class ZhangDataSizes(Entry):
    """The data-size panel: true-label runs of these models on growing subsets."""

    models: Annotated[list[ModelName], NonEmpty]
    sizes: Annotated[list[PositiveInt], NonEmpty]


@schema("zhang-randomization")
class ZhangRandomization(ChapterParams):
    """Zhang et al. 2017, Figure 1: label-corruption grid per model and the pixel randomizations."""

    dataset: DatasetName
    n_test: PositiveInt | None
    batch_size: PositiveInt
    max_epochs: PositiveInt
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
    groups: list[PositiveInt]       # g: depth k = g + 3 linear layers


class ExpressivitySGD(Entry):
    n_train: PositiveInt
    generous_model: str             # a lib.models name far larger than the construction (e.g. mlp1x512); the chapter
                                    # adds the 784-H-10 MLP with the fewest weights >= 2n + d
    lr: PositiveFloat
    lr_decay: PositiveFloat
    max_epochs: PositiveInt
    batch_size: PositiveInt


@schema("zhang-expressivity")
class ZhangExpressivity(ChapterParams):
    dataset: str
    sizes: list[PositiveInt]        # n of Theorem 1's fits (nested subsets of one random-label subset)
    data_seed: Seed
    projection_seed: Seed
    best_of_draws: PositiveInt      # random directions tried by the best_of projection
    bias_positions: list[Annotated[float, Field(gt=0, lt=1)]]   # θ of b_i = x_{i-1} + θ h_i, compared at max n
    sv_iterations: PositiveInt      # power-iteration steps of the σ_max / σ_min estimates
    svd_max_n: PositiveInt          # exact singular values (full SVD) up to this n
    exact_n: PositiveInt            # n of the exact rational (Fraction) solve
    depth_k: ExpressivityDepthK
    sgd: ExpressivitySGD


class ZhangRegularizationModel(Entry):
    """One model of Zhang et al.'s Table 1 (``book/zhang-regularization.md``); optional keys replace the chapter-wide
    value for this model's runs (see :func:`lib.protocols.zhang_config`)."""

    lr: PositiveFloat
    n_train: PositiveInt | None  # None = all 50,000 training images
    lr_decay: Annotated[float, Field(gt=0, le=1)]
    weight_decay: NonNegativeFloat  # used by the rows that turn weight decay on
    n_test: PositiveInt | None = None
    max_epochs: PositiveInt | None = None
    test_every: PositiveInt | None = None
    regularized_max_epochs: PositiveInt | None = None  # epoch cap of the runs the randomization chapter does not share
    augmented_max_epochs: PositiveInt | None = None  # epoch cap of Table 1's random-crop runs
    init: InitName | None = None  # an initialization of lib.models.initialize (None = PyTorch's default)
    bn_statistics: BnStatisticsName | None = None  # BatchNorm's statistics at evaluation (lib.train.RunConfig)


@schema("zhang-regularization")
class ZhangRegularization(ChapterParams):
    dataset: str
    n_test: PositiveInt | None
    batch_size: PositiveInt
    max_epochs: PositiveInt
    stop_train_acc: Probability
    test_every: PositiveInt
    seed: Seed
    data_seed: Seed
    models: dict[str, ZhangRegularizationModel]
    figure2b_test_every: PositiveInt
    table4_augmented_lr_decay: Annotated[float, Field(gt=0, le=1)]
    table4_augmented_max_epochs: PositiveInt


class KernelSolverEntry(Entry):
    """Settings of the iterative kernel solve (lib.studies.zhang2017.kernels.KernelInterpolant)."""

    solver: str = "pcg"
    max_iter: PositiveInt
    tol: PositiveFloat = 1e-6
    m: PositiveInt  # Nyström subsample for the preconditioner
    q: PositiveInt  # eigen-directions flattened by it


@schema("zhang-kernels")
class ZhangKernels(ChapterParams):
    """Zhang et al. 2017, Section 5 and Table 3: minimum-norm Gaussian-kernel interpolation."""

    gamma: PositiveFloat  # exp(−γ‖x − y‖²) on MNIST pixels in [0, 1]
    n_full: PositiveInt | None  # the MNIST headline fit; None = the largest n that fits in memory (at most 60,000)
    n_curve: list[PositiveInt]  # exact (Cholesky) fits on the way
    n_check: PositiveInt  # exact and iterative on the same subset
    n_test: PositiveInt | None  # None = all 10,000
    exact_max: PositiveInt  # Cholesky up to this n
    iterative: KernelSolverEntry
    random_label_seed: Seed
    gabor_n: list[PositiveInt]
    gabor_scales: PositiveInt
    gabor_orientations: PositiveInt
    gabor_pool: PositiveInt
    cifar_n: PositiveInt
    cifar_n_test: PositiveInt
    rcf_filters: list[PositiveInt]
    rcf_n: PositiveInt
    rcf_patch: PositiveInt
    rcf_alpha: NonNegativeFloat
    seed: Seed
