"""The MASC paper: the chapter's parameter schema and the runs it builds.

:func:`masc_config` is section 3.1 and appendix A.2: one model entry (architecture, optimizer, stopping criterion)
with labels redrawn uniformly with probability ``p``. The cross-paper chapter builds its runs here too (through
:mod:`lib.studies.protocols`), so they are the same runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from pydantic import Field, model_validator

from lib.schemas import (ChapterParams, DatasetName, Entry, Epochs, Fraction, ModelName, NonEmpty, OptimizerName,
                         PositiveFloat, PositiveInt, PrecisionName, PreprocessingName, Probability, Seed, Threads,
                         _distinct, _must_name, check_subset, schema)
from lib.train import RunConfig


def masc_config(P: Mapping, spec: Mapping, p: float, seed: int) -> RunConfig:
    """One run of the MASC paper: model entry ``spec`` (a value of ``P["models"]``) at label corruption ``p``."""
    return RunConfig(dataset=spec["dataset"], n_train=spec["n_train"], n_test=P["n_test"], randomization="partial_labels",
                     corruption=p, preprocessing=spec["preprocessing"], data_seed=P["data_seed"], model=spec["model"],
                     seed=seed, optimizer=spec["optimizer"], lr=spec["lr"], momentum=spec["momentum"], lr_decay=1.0,
                     batch_size=spec["batch_size"], max_epochs=spec["max_epochs"], stop_train_acc=spec["stop_train_acc"],
                     test_every=P["test_every"], precision=spec.get("precision") or "fp32")


# --- parameter schemas ------------------------------------------------------------------------------------------

class MascModel(Entry):
    """One model entry of the MASC grid: architecture, data, optimizer and stopping criterion (section 3.1, A.2)."""

    dataset: DatasetName
    model: ModelName
    preprocessing: PreprocessingName
    optimizer: OptimizerName
    lr: PositiveFloat
    momentum: Probability
    batch_size: PositiveInt
    n_train: PositiveInt | None
    max_epochs: Epochs
    stop_train_acc: Fraction | None
    corruption_levels: Annotated[list[Probability], NonEmpty] | None = None  # None: the chapter's levels
    paper: Annotated[list[str], NonEmpty]  # the paper's names: architecture, data set, optimizer
    precision: PrecisionName | None = None  # bf16 autocast where a CPU or GPU gains by it (None: fp32, the paper's)


class MascDataSizes(Entry):
    """The data-size panel: the clean model on growing subsets, and MASC on the raw input at corruption ``p``."""

    model: str
    p: Probability
    sizes: Annotated[list[PositiveInt], NonEmpty]
    input_sizes: Annotated[list[PositiveInt], NonEmpty]


@schema("masc-decoding")
class MascDecoding(ChapterParams):
    """MASC ("Decoding generalization from memorization"): the grid of models × corruption degrees × seeds."""

    n_test: PositiveInt | None
    seeds: Annotated[list[Seed], NonEmpty]
    data_seed: Seed
    test_every: PositiveInt
    corruption_levels: Annotated[list[Probability], NonEmpty]
    control_levels: list[Probability]
    variances: Annotated[list[Fraction], NonEmpty]
    variance_model: str
    decode_seed_only: Seed | None
    torch_threads: Threads | None
    models: Annotated[dict[str, MascModel], NonEmpty]
    extra_models: dict[str, MascModel]
    optimizer_pairs: list[Annotated[list[str], Field(min_length=2, max_length=2)]]
    data_sizes: MascDataSizes

    @model_validator(mode="after")
    def _consistent(self):
        names = [*self.models, *self.extra_models]
        _distinct(self.corruption_levels, "corruption_levels")
        _distinct(self.seeds, "seeds")
        _must_name(self.data_sizes.model, list(self.models), "data_sizes.model", "the models")
        dataset = self.models[self.data_sizes.model].dataset
        for n in [*self.data_sizes.sizes, *self.data_sizes.input_sizes]:
            check_subset(dataset, n, None, where="data_sizes.")
        _must_name(self.variance_model, list(self.models), "variance_model", "the models")
        if self.decode_seed_only is not None:
            _must_name(self.decode_seed_only, self.seeds, "decode_seed_only", "the seeds")
        for i, pair in enumerate(self.optimizer_pairs):
            for j, name in enumerate(pair):
                _must_name(name, names, f"optimizer_pairs.{i}.{j}", "the models and extra_models")
        for group, entries in (("models", self.models), ("extra_models", self.extra_models)):
            for name, entry in entries.items():
                check_subset(entry.dataset, entry.n_train, self.n_test, where=f"{group}.{name}.")
        return self
