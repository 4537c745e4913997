"""The intrinsic-dimension chapter's runs (Li, Farkhoor, Liu & Yosinski 2018; Weng 2019): the directly trained
references and the subspace runs of each network, as run configurations.

Every run is on MNIST with pixels / 255 and Adam at a constant rate, all its epochs trained (no early stop): the
paper's protocol (Section 2 and the authors' scripts, protocol notes). A network's runs are described by one entry
of the chapter's parameters (:class:`~lib.studies.weng2019.protocol._SubspaceRuns`: model, data sizes, batch, the
rates and epochs of the direct and the subspace runs, the d grid, seeds, projection); the subspace runs are
trained by :mod:`.intrinsic_dimension`. :func:`protocol` says how a network's runs depart from the paper's.
"""

from __future__ import annotations

from lib.data import SIZES
from lib.studies.weng2019.intrinsic_dimension import SubspaceConfig
from lib.train import RunConfig
from lib.verdicts import Protocol, compare_runs


def run_config(spec, model: str, seed: int, lr: float, epochs: int, *, data_seed: int, **changes) -> RunConfig:
    """One run on MNIST (pixels / 255, Adam at ``lr``, batch ``spec.batch_size``, no decay, all ``epochs``
    trained) of ``model`` on ``spec.n_train`` / ``spec.n_test`` images drawn with ``data_seed``; ``changes``
    replace any field."""
    values = dict(dataset="mnist", n_train=spec.n_train, n_test=spec.n_test, preprocessing="scale",
                  data_seed=data_seed, model=model, seed=seed, optimizer="adam", lr=lr, lr_decay=1.0,
                  batch_size=spec.batch_size, max_epochs=epochs, stop_train_acc=None)
    return RunConfig(**{**values, **changes})


def direct_configs(spec, models, *, data_seed: int) -> list[RunConfig]:
    """The directly trained references (all D parameters; the baseline of the local bar): each of ``models`` for
    each seed of ``spec``, at ``spec.direct_lr`` for ``spec.direct_epochs`` epochs."""
    return [run_config(spec, m, s, spec.direct_lr, spec.direct_epochs, data_seed=data_seed)
            for m in models for s in spec.seeds]


def subspace_configs(spec, models, *, data_seed: int) -> list[SubspaceConfig]:
    """The subspace runs of Li et al.'s Figure 1 (θ = θ₀ + P θ_d, Eq. 2): each of ``models``, each seed, each d of
    ``spec.d``, θ_d trained at ``spec.lr`` for ``spec.epochs`` epochs with ``spec.projection``."""
    return [SubspaceConfig(run_config(spec, m, s, spec.lr, spec.epochs, data_seed=data_seed), d, spec.projection)
            for m in models for s in spec.seeds for d in spec.d]


def long_config(spec, *, data_seed: int) -> SubspaceConfig | None:
    """One subspace run at ``spec.long_d`` trained for ``spec.long_epochs`` (the first seed): what the grid's epoch
    cut costs. None where the parameters set no ``long_d``."""
    if not spec.long_d:
        return None
    return SubspaceConfig(run_config(spec, spec.model, spec.seeds[0], spec.lr, spec.long_epochs, data_seed=data_seed),
                          spec.long_d, spec.projection)


def shuffled_configs(spec, *, data_seed: int) -> list[SubspaceConfig]:
    """Li et al.'s Section 4 on a small scale: every label of the first n images shuffled
    (``randomization="random_labels"``, corruption 1), for each n of ``spec.n_train`` and each d of ``spec.d``, so
    that the subspace needed to memorize them can be read off the training accuracy."""
    return [SubspaceConfig(run_config(spec, spec.model, spec.seed, spec.lr, spec.epochs, data_seed=data_seed, n_train=n,
                                      randomization="random_labels", corruption=1.0), d, "auto")
            for n in spec.n_train for d in spec.d]


def protocol(spec, paper_spec, model: str, *, data_seed: int, direct: bool = False, ours_extra: dict | None = None,
             paper_extra: dict | None = None) -> Protocol:
    """How the runs of ``model`` described by ``spec`` (one entry of the chapter's parameters) depart from those of
    ``paper_spec`` (the same entry at ``paper`` scale): :func:`lib.verdicts.compare_runs` of their subspace runs (or,
    with ``direct``, of their directly trained references) on MNIST's 60,000 / 10,000 images, seeds counted, and the
    projection. ``ours_extra`` / ``paper_extra`` add or replace fields on either side (a departure the parameters
    do not hold, such as the essay's dropout at evaluation)."""
    def config(entry) -> RunConfig:
        lr, epochs = (entry.direct_lr, entry.direct_epochs) if direct else (entry.lr, entry.epochs)
        return run_config(entry, model, entry.seeds[0], lr, epochs, data_seed=data_seed)

    train_total, test_total = SIZES["mnist"]
    distance = compare_runs(config(spec), config(paper_spec), len(spec.seeds), len(paper_spec.seeds),
                            train_total=train_total, test_total=test_total)
    ours, paper = dict(distance.ours), dict(distance.paper)
    if not direct:
        ours["projection"], paper["projection"] = spec.projection, paper_spec.projection
    return Protocol({**ours, **(ours_extra or {})}, {**paper, **(paper_extra or {})})
