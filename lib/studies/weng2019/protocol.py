"""Weng (2019): the parameter schemas of the essay's three chapters (double descent, intrinsic dimension, layer
robustness). Their runs are built by :mod:`.double_descent`, :mod:`.intrinsic_dimension` and
:mod:`.layer_robustness`.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from lib.schemas import (ChapterParams, Entry, NonNegativeInt, PositiveFloat, PositiveInt, Probability, Seed,
                         schema)


# --- parameter schemas ------------------------------------------------------------------------------------------

class _SubspaceRuns(Entry):
    """One network's subspace runs in the intrinsic-dimension chapter."""

    model: str
    n_train: PositiveInt | None          # None = all 60,000 training images
    n_test: PositiveInt | None = None    # None = all 10,000 test images
    batch_size: PositiveInt
    lr: PositiveFloat                    # Adam's learning rate for θ_d
    epochs: PositiveInt                  # epochs per subspace run (all trained; the last one is reported)
    d: list[PositiveInt]
    seeds: list[Seed]
    projection: str = "auto"
    direct_lr: PositiveFloat = 0.001     # Adam's learning rate of the directly trained reference
    direct_epochs: PositiveInt = 10


class _MnistRuns(_SubspaceRuns):
    long_d: PositiveInt | None = None    # one d trained for long_epochs, to show what the epoch cut costs
    long_epochs: PositiveInt | None = None


class _EssayRuns(_SubspaceRuns):
    models: list[str]
    model: str = ""


class _ShuffledRuns(Entry):
    model: str
    n_train: list[PositiveInt]           # subset sizes whose labels are all shuffled
    n_test: PositiveInt = 1000
    batch_size: PositiveInt
    lr: PositiveFloat
    epochs: PositiveInt
    d: list[PositiveInt]
    seed: Seed
    criterion: Probability               # the training accuracy that counts as memorized


@schema("weng-intrinsic-dimension")
class WengIntrinsicDimension(ChapterParams):
    torch_threads: PositiveInt | None    # None = torch's default
    data_seed: Seed
    mnist: _MnistRuns
    essay: _EssayRuns
    shuffled: _ShuffledRuns
    lenet: _SubspaceRuns | None          # None = not trained at this scale (the paper's values are shown)


class LayerRobustnessNet(Entry):
    """One network of the layer-robustness chapter: its model, data and SGD settings, and its checkpoints."""

    model: str
    dataset: str
    n_train: PositiveInt | None   # None = the whole training set
    n_test: PositiveInt | None
    preprocessing: str
    init: str
    lr: PositiveFloat
    momentum: Probability
    lr_decay: PositiveFloat
    batch_size: PositiveInt
    max_epochs: PositiveInt
    checkpoints: list[NonNegativeInt]   # epochs whose weights are kept (0 = initial); re-initialization targets
    draws: PositiveInt                  # re-randomization draws per layer
    label: str                          # what the chapter calls it


@schema("weng-layer-robustness")
class WengLayerRobustness(ChapterParams):
    """Zhang, Bengio & Singer (2019) layer robustness, as toured by Weng (2019)."""

    seed: Seed
    data_seed: Seed
    fc: dict[str, LayerRobustnessNet]     # the fully connected nets on MNIST; the first is the claims' net
    weng: LayerRobustnessNet              # the essay's variant: the same net trained with dropout
    conv: dict[str, LayerRobustnessNet]   # VGG-style nets on CIFAR-10
    torch_threads: PositiveInt | None


class DoubleDescentTraining(Entry):
    """How one side of the threshold trains (lib.studies.weng2019.double_descent.TrainSpec fields)."""

    epochs: PositiveInt
    lr: PositiveFloat
    optimizer: str = "sgd"
    momentum: Probability = 0.95
    batch_size: PositiveInt | None = None      # null: full batch
    lr_decay: Annotated[float, Field(gt=0, le=1)] = 1.0
    lr_decay_every: NonNegativeInt = 0
    stop_at_zero_error: bool = False
    loss_on: str = "linear"                    # "linear" (Belkin) or "softmax" (Weng's code)


class DoubleDescentWeng(Entry):
    widths: list[PositiveInt]
    training: DoubleDescentTraining


class DoubleDescentRFF(Entry):
    n_train: PositiveInt
    features: list[PositiveInt]
    sigma: PositiveFloat
    seed: Seed


@schema("weng-double-descent")
class WengDoubleDescent(ChapterParams):
    n_train: PositiveInt                # Belkin et al.: 4,000 MNIST images, sampled once
    n_test: PositiveInt | None          # null: the full 10,000-image test set
    split_seed: Seed
    seeds: list[Seed]                   # repetitions (Belkin et al.: 5), averaged
    widths: list[PositiveInt]           # hidden units H, increasing
    training: DoubleDescentTraining     # decay and stop at zero error apply below the threshold n K only
    chain_epochs: PositiveInt           # the reuse chain's per-net budget (Belkin: to zero error or 6,000 epochs)
    label_noise: Probability            # fraction of training labels redrawn in the label-noise variant
    noise_seed: Seed
    weng: DoubleDescentWeng
    rff: DoubleDescentRFF
    torch_threads: NonNegativeInt       # 0: torch's default
