"""Weng (2019): the parameter schemas of the essay's three chapters (double descent, intrinsic dimension, layer
robustness). Their runs are built by :mod:`.double_descent`, :mod:`.intrinsic_dimension` and
:mod:`.layer_robustness`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from lib.schemas import (ChapterParams, DatasetName, Decay, Entry, Epochs, Fraction, InitName, ModelName, NonEmpty,
                         NonNegativeInt, PositiveFloat, PositiveInt, PreprocessingName, Probability, Seed, Threads,
                         _distinct, _located, _must_include, check_subset, schema)


# --- parameter schemas ------------------------------------------------------------------------------------------

class _SubspaceRuns(Entry):
    """One network's subspace runs in the intrinsic-dimension chapter."""

    model: str
    n_train: PositiveInt | None          # None = all 60,000 training images
    n_test: PositiveInt | None = None    # None = all 10,000 test images
    batch_size: PositiveInt
    lr: PositiveFloat                    # Adam's learning rate for θ_d
    epochs: Epochs                       # epochs per subspace run (all trained; the last one is reported)
    d: Annotated[list[PositiveInt], NonEmpty]
    seeds: Annotated[list[Seed], NonEmpty]
    projection: Literal["auto", "dense", "sparse", "fastfood", "identity"] = "auto"  # intrinsic_dimension.PROJECTIONS
    direct_lr: PositiveFloat = 0.001     # Adam's learning rate of the directly trained reference
    direct_epochs: Epochs = 10


class _MnistRuns(_SubspaceRuns):
    long_d: PositiveInt | None = None    # one d trained for long_epochs, to show what the epoch cut costs
    long_epochs: Epochs | None = None


class _EssayRuns(_SubspaceRuns):
    models: Annotated[list[str], NonEmpty]
    model: str = ""


class _ShuffledRuns(Entry):
    model: str
    n_train: Annotated[list[PositiveInt], NonEmpty]  # subset sizes whose labels are all shuffled
    n_test: PositiveInt = 1000
    batch_size: PositiveInt
    lr: PositiveFloat
    epochs: Epochs
    d: Annotated[list[PositiveInt], NonEmpty]
    seed: Seed
    criterion: Fraction                  # the training accuracy that counts as memorized


@schema("weng-intrinsic-dimension")
class WengIntrinsicDimension(ChapterParams):
    torch_threads: Threads | None        # None = torch's default
    data_seed: Seed
    mnist: _MnistRuns
    essay: _EssayRuns
    shuffled: _ShuffledRuns
    lenet: _SubspaceRuns | None          # None = not trained at this scale (the paper's values are shown)


class LayerRobustnessNet(Entry):
    """One network of the layer-robustness chapter: its model, data and SGD settings, and its checkpoints."""

    model: ModelName
    dataset: DatasetName
    n_train: PositiveInt | None   # None = the whole training set
    n_test: PositiveInt | None
    preprocessing: PreprocessingName
    init: InitName
    lr: PositiveFloat
    momentum: Probability
    lr_decay: Decay
    batch_size: PositiveInt
    max_epochs: Epochs
    checkpoints: Annotated[list[NonNegativeInt], NonEmpty]  # epochs whose weights are kept (0 = initial); re-initialization targets
    draws: PositiveInt                  # re-randomization draws per layer
    label: str                          # what the chapter calls it

    @model_validator(mode="after")
    def _consistent(self):
        _must_include(self.checkpoints, [0], "checkpoints", "re-initialization to the initial weights, τ = 0")
        _distinct(self.checkpoints, "checkpoints")
        late = [tau for tau in self.checkpoints if tau > self.max_epochs]
        if late:
            raise _located(f"checkpoints: {self.checkpoints!r} — must be at most max_epochs, {self.max_epochs} "
                           f"(no weights exist after epoch {self.max_epochs}: {', '.join(map(str, late))})")
        check_subset(self.dataset, self.n_train, self.n_test)
        return self


@schema("weng-layer-robustness")
class WengLayerRobustness(ChapterParams):
    """Zhang, Bengio & Singer (2019) layer robustness, as toured by Weng (2019)."""

    seed: Seed
    data_seed: Seed
    fc: Annotated[dict[str, LayerRobustnessNet], NonEmpty]    # the FC nets on MNIST; the first is the claims' net
    weng: LayerRobustnessNet                                  # the essay's variant: the same net trained with dropout
    conv: Annotated[dict[str, LayerRobustnessNet], NonEmpty]  # VGG-style nets on CIFAR-10
    torch_threads: Threads | None


class DoubleDescentTraining(Entry):
    """How one side of the threshold trains (lib.studies.weng2019.double_descent.TrainSpec fields)."""

    epochs: Epochs
    lr: PositiveFloat
    optimizer: Literal["sgd", "adam"] = "sgd"
    momentum: Probability = 0.95
    batch_size: PositiveInt | None = None      # null: full batch
    lr_decay: Annotated[float, Field(gt=0, le=1)] = 1.0
    lr_decay_every: NonNegativeInt = 0
    stop_at_zero_error: bool = False
    loss_on: Literal["linear", "softmax"] = "linear"  # "linear" (Belkin) or "softmax" (Weng's code)


class DoubleDescentWeng(Entry):
    widths: Annotated[list[PositiveInt], NonEmpty]
    training: DoubleDescentTraining


class DoubleDescentRFF(Entry):
    n_train: PositiveInt
    features: Annotated[list[PositiveInt], NonEmpty]
    sigma: PositiveFloat
    seed: Seed


@schema("weng-double-descent")
class WengDoubleDescent(ChapterParams):
    n_train: PositiveInt                # Belkin et al.: 4,000 MNIST images, sampled once
    n_test: PositiveInt | None          # null: the full 10,000-image test set
    split_seed: Seed
    seeds: Annotated[list[Seed], NonEmpty]       # repetitions (Belkin et al.: 5), averaged
    widths: Annotated[list[PositiveInt], NonEmpty]  # hidden units H, increasing
    training: DoubleDescentTraining     # decay and stop at zero error apply below the threshold n K only
    chain_epochs: Epochs                # the reuse chain's per-net budget (Belkin: to zero error or 6,000 epochs)
    label_noise: Probability            # fraction of training labels redrawn in the label-noise variant
    noise_seed: Seed
    weng: DoubleDescentWeng
    rff: DoubleDescentRFF
    torch_threads: Threads              # 0: torch's default

    @model_validator(mode="after")
    def _consistent(self):
        if sorted(set(self.widths)) != list(self.widths):
            raise _located(f"widths: {list(self.widths)!r} — must increase (the weight-reuse chain grows each net "
                           f"from the one before)")
        check_subset("mnist", self.n_train, self.n_test)
        _distinct(self.seeds, "seeds")
        return self
