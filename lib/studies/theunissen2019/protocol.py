"""Theunissen, Davel & Barnard (FAIR 2019): the chapter's parameter schema and the runs it builds.

:func:`theunissen_config` is Appendix A's protocol: the 55k/5k/10k split, pixels /255, MSE on one-hot targets,
Adam, no regularization, noise of Appendix B (Algorithms 1-3) with probability ``p``. The cross-paper chapter
builds its runs here too (through :mod:`lib.studies.protocols`), so they are the same runs.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import model_validator

from lib.schemas import (ChapterParams, DatasetName, Entry, Epochs, Fraction, InitName, ModelName, NoiseType, NonEmpty,
                         PositiveFloat, PositiveInt, PrecisionName, Probability, Seed, _distinct, check_subset, schema)
from lib.train import RunConfig


def theunissen_config(P: TheunissenNoise, dataset: str, noise: str, p: float, **changes) -> RunConfig:
    """One setting of Theunissen et al.'s Appendix A; ``p = 0`` is the same clean run for every noise type.

    ``P`` is the chapter's parameters (:class:`TheunissenNoise`); ``noise`` is ``label_noise`` (Alg. 1),
    ``gaussian_input`` (Alg. 2) or ``structured_input`` (Alg. 3); ``changes`` replace fields (e.g. ``model=`` for
    Figure 4's smaller network).
    """
    values = dict(dataset=dataset, split="theunissen", n_train=P.n_train, n_test=P.n_test,
                  randomization=noise if p > 0 else "none", corruption=float(p) if p > 0 else 0.0,
                  preprocessing="scale", data_seed=P.data_seed, model=P.model, init=P.init, optimizer="adam",
                  lr=P.lr, lr_decay=1.0, batch_size=P.batch_size, loss="mse", max_epochs=P.max_epochs,
                  stop_train_acc=P.stop_train_acc, test_every=P.test_every, precision=P.precision)
    return RunConfig(**{**values, **changes})


# --- parameter schemas ------------------------------------------------------------------------------------------

class TheunissenFigure1(Entry):
    model: ModelName
    lr: PositiveFloat
    max_epochs: Epochs
    stop_train_acc: Fraction | None


class TheunissenFigure4(Entry):
    model: ModelName
    dataset: DatasetName
    corruption: Probability
    n_train: PositiveInt | None
    max_epochs: Epochs
    stop_train_acc: Fraction | None


@schema("theunissen-noise")
class TheunissenNoise(ChapterParams):
    """Theunissen, Davel & Barnard 2019, Appendix A: 10x512 MLPs under label, Gaussian and structured noise."""

    datasets: Annotated[list[DatasetName], NonEmpty]
    noise_types: Annotated[list[NoiseType], NonEmpty]
    corruption_levels: Annotated[list[Probability], NonEmpty]
    n_train: PositiveInt | None
    n_test: PositiveInt | None
    data_seed: Seed
    model: ModelName
    init: InitName
    lr: PositiveFloat
    batch_size: PositiveInt
    max_epochs: Epochs
    stop_train_acc: Fraction | None
    test_every: PositiveInt
    seeds: Annotated[list[Seed], NonEmpty]
    enough: Fraction | None
    fit_threshold: Fraction
    probe_chunk: PositiveInt
    figure1: TheunissenFigure1
    figure4: TheunissenFigure4
    precision: PrecisionName = "fp32"  # every run's (lib.train.RunConfig.precision)

    @model_validator(mode="after")
    def _consistent(self):
        _distinct(self.corruption_levels, "corruption_levels")
        for dataset in self.datasets:
            check_subset(dataset, self.n_train, self.n_test, split="theunissen")
        check_subset(self.figure4.dataset, self.figure4.n_train, None, split="theunissen", where="figure4.")
        return self
