"""The intrinsic-dimension chapter's run configurations (lib.studies.weng2019.subspace_runs), built from its real
parameters: what each run trains, and that a subspace run starts from its directly trained reference's θ₀."""

from __future__ import annotations

from dataclasses import replace

import pytest

from lib.params import load_params
from lib.studies.weng2019 import subspace_runs
from lib.studies.weng2019.intrinsic_dimension import SubspaceConfig
from lib.train import RunConfig


@pytest.fixture(scope="module")
def params():
    return load_params("weng-intrinsic-dimension", "smoke")


def test_a_run_is_the_papers_protocol_on_mnist(params):
    spec = params.mnist
    run = subspace_runs.run_config(spec, "mlp-200-200", 3, 0.25, 7, data_seed=11)
    assert isinstance(run, RunConfig)
    assert (run.dataset, run.preprocessing, run.optimizer) == ("mnist", "scale", "adam")
    assert (run.n_train, run.n_test, run.batch_size) == (spec.n_train, spec.n_test, spec.batch_size)
    assert (run.seed, run.lr, run.max_epochs, run.data_seed) == (3, 0.25, 7, 11)
    assert run.lr_decay == 1.0 and run.stop_train_acc is None  # a constant rate, every epoch trained
    changed = subspace_runs.run_config(spec, "mlp-200-200", 3, 0.25, 7, data_seed=11, n_train=50, corruption=0.5)
    assert (changed.n_train, changed.corruption) == (50, 0.5) and replace(changed, n_train=run.n_train,
                                                                          corruption=run.corruption) == run


def test_direct_references_cover_every_model_and_seed_at_the_direct_rate(params):
    spec = params.essay
    configs = subspace_runs.direct_configs(spec, spec.models, data_seed=params.data_seed)
    assert [(c.model, c.seed) for c in configs] == [(m, s) for m in spec.models for s in spec.seeds]
    assert {(c.lr, c.max_epochs) for c in configs} == {(spec.direct_lr, spec.direct_epochs)}


def test_each_subspace_run_starts_from_its_references_initialization(params):
    spec = params.mnist
    direct = subspace_runs.direct_configs(spec, [spec.model], data_seed=params.data_seed)
    configs = subspace_runs.subspace_configs(spec, [spec.model], data_seed=params.data_seed)
    assert all(isinstance(c, SubspaceConfig) for c in configs)
    assert len(configs) == len(spec.seeds) * len(spec.d) and [c.d for c in configs] == list(spec.d) * len(spec.seeds)
    assert {c.projection for c in configs} == {spec.projection}
    assert {(c.run.lr, c.run.max_epochs) for c in configs} == {(spec.lr, spec.epochs)}
    by_seed = {c.seed: c for c in direct}
    for c in configs:  # same data, model and seed, so the same θ₀: only the rate and the epochs differ
        assert replace(c.run, lr=spec.direct_lr, max_epochs=spec.direct_epochs) == by_seed[c.run.seed]


def test_the_long_run_is_one_d_trained_longer_and_only_where_asked(params):
    spec = params.mnist
    long = subspace_runs.long_config(spec, data_seed=params.data_seed)
    assert (long.d, long.run.max_epochs, long.run.seed) == (spec.long_d, spec.long_epochs, spec.seeds[0])
    assert replace(long.run, max_epochs=spec.epochs) == subspace_runs.subspace_configs(
        spec, [spec.model], data_seed=params.data_seed)[0].run
    paper = load_params("weng-intrinsic-dimension", "paper")
    assert paper.mnist.long_d is None and subspace_runs.long_config(paper.mnist, data_seed=0) is None


def test_shuffled_runs_randomize_every_label_of_each_subset(params):
    spec = params.shuffled
    configs = subspace_runs.shuffled_configs(spec, data_seed=params.data_seed)
    assert [(c.run.n_train, c.d) for c in configs] == [(n, d) for n in spec.n_train for d in spec.d]
    assert {(c.run.randomization, c.run.corruption) for c in configs} == {("random_labels", 1.0)}
    assert {(c.run.n_test, c.run.model, c.run.seed, c.run.lr, c.run.max_epochs, c.projection) for c in configs} == {
        (spec.n_test, spec.model, spec.seed, spec.lr, spec.epochs, "auto")}
