"""The run cache: misses train, hits reuse, any change of config or code misses, writes are atomic."""

from __future__ import annotations

import pytest
import torch

import lib.runs as runs
from lib.train import RunConfig

CONFIG = RunConfig(dataset="mnist", n_train=128, n_test=64, preprocessing="scale", model="mlp1x64",
                   lr=0.05, max_epochs=2, stop_train_acc=None, batch_size=64)


def test_miss_then_hit(isolated_cache, monkeypatch):
    assert not runs.is_cached(CONFIG)
    first = runs.run(CONFIG, progress=False)
    assert runs.is_cached(CONFIG) and (isolated_cache / runs.run_key(CONFIG) / "model.pt").is_file()

    def must_not_train(*args, **kwargs):
        raise AssertionError("a cached run was trained again")

    monkeypatch.setattr(runs, "train", must_not_train)
    second = runs.run(CONFIG)
    assert second.summary == first.summary
    assert all(torch.equal(second.state_dict[k], first.state_dict[k]) for k in first.state_dict)
    assert second.history[["epoch", "train_loss"]].equals(first.history[["epoch", "train_loss"]])
    model = second.model()
    x = torch.rand(3, 1, 28, 28)
    assert model(x).shape == (3, 10)


def test_key_changes_with_any_field_and_with_the_code(monkeypatch):
    keys = {runs.run_key(CONFIG)}
    for change in ({"lr": 0.1}, {"seed": 1}, {"corruption": 0.2}, {"n_train": 129}):
        keys.add(runs.run_key(RunConfig(**{**CONFIG.to_dict(), **change})))
    assert len(keys) == 5
    import lib.keys

    monkeypatch.setattr(lib.keys, "code_version", lambda: "another-version-of-lib")  # the key's own module
    assert runs.run_key(CONFIG) not in keys


def test_code_version_covers_the_training_modules():
    assert {"data.py", "corrupt.py", "models.py", "train.py"} <= set(runs.TRAINING_MODULES)
    assert len(runs.code_version()) == 16


def test_editing_the_training_code_changes_the_key_and_editing_the_cache_does_not(tmp_path):
    import shutil

    copy = tmp_path / "lib"
    shutil.copytree(runs.PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = runs.training_digest(copy)
    assert before == runs.training_digest() == runs.code_version()
    (copy / "runs.py").write_text((copy / "runs.py").read_text() + "\nPLUMBING = 1\n")
    assert runs.training_digest(copy) == before  # the cache's own code decides no result
    (copy / "train.py").write_text((copy / "train.py").read_text() + "\nTRAINING = 1\n")
    assert runs.training_digest(copy) != before  # a new key: nothing stale is reused


def test_a_failed_write_leaves_no_run_behind(isolated_cache, monkeypatch):
    def broken_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(runs.torch, "save", broken_save)
    with pytest.raises(OSError):
        runs.run(CONFIG, progress=False)
    assert not runs.is_cached(CONFIG)
    assert not any(p.name == runs.run_key(CONFIG) for p in isolated_cache.iterdir())


def test_grid_returns_a_tidy_frame_and_reuses_runs(isolated_cache):
    configs = runs.grid(CONFIG, corruption=[0.0, 1.0], randomization=["partial_labels"])
    assert [c.corruption for c in configs] == [0.0, 1.0]
    frame = runs.run_grid(configs)
    assert len(frame) == 2 and {"corruption", "model", "final_test_acc", "converged", "key"} <= set(frame.columns)
    assert not frame.cached.any()
    again = runs.run_grid(configs)
    assert again.cached.all() and again.final_test_acc.tolist() == frame.final_test_acc.tolist()
    history = runs.grid_history(configs)
    assert len(history) == 4 and set(history.corruption) == {0.0, 1.0}
    assert len(runs.cached_runs()) == 2


# ---------------------------------------------------------------------------------------------------------------
# One chunk planner, and executors that get the planned chunks

CPU, CUDA = torch.device("cpu"), torch.device("cuda")  # planning only looks at the kind of device: no GPU needed


def sizes(chunks) -> list[int]:
    return [len(chunk) for chunk in chunks]


def test_plan_groups_by_batch_key_in_order(monkeypatch):
    monkeypatch.delenv("LIB_BATCHED", raising=False)
    seeds = runs.grid(CONFIG, seed=[0, 1, 2])
    wider = runs.grid(RunConfig(**{**CONFIG.to_dict(), "model": "mlp1x32"}), seed=[0, 1])
    mixed = [seeds[0], wider[0], seeds[1], wider[1], seeds[2]]
    chunks = runs.plan_chunks(mixed, CUDA)
    assert chunks == [seeds, wider]  # one stack per batch key, each in the order given
    assert sorted(sum(chunks, []), key=mixed.index) == mixed  # every run once


def test_plan_stacks_only_where_it_pays_unless_told(monkeypatch):
    monkeypatch.delenv("LIB_BATCHED", raising=False)
    configs = runs.grid(CONFIG, seed=list(range(5)))
    assert sizes(runs.plan_chunks(configs, CPU)) == [1] * 5  # no gain on a CPU (make bench)
    assert sizes(runs.plan_chunks(configs, CUDA)) == [5]
    assert sizes(runs.plan_chunks(configs, CPU, batched=True)) == [5]
    assert sizes(runs.plan_chunks(configs, CUDA, batched=False)) == [1] * 5
    monkeypatch.setenv("LIB_BATCHED", "off")
    assert sizes(runs.plan_chunks(configs, CUDA)) == [1] * 5
    assert sizes(runs.plan_chunks(configs, CUDA, batched=True)) == [5]  # an explicit argument wins


def test_plan_respects_max_batch():
    configs = runs.grid(CONFIG, seed=list(range(5)))
    assert sizes(runs.plan_chunks(configs, CUDA, max_batch=3)) == [3, 2]
    assert sizes(runs.plan_chunks(configs, CPU, batched=True, max_batch=2)) == [2, 2, 1]
    many = runs.grid(CONFIG, seed=list(range(40)))
    assert sizes(runs.plan_chunks(many, CUDA)) == [32, 8]  # default on a GPU
    assert sizes(runs.plan_chunks(many, CPU, batched=True)) == [8] * 5  # default elsewhere


def test_plan_never_stacks_runs_with_snapshots_or_unbatchable_architectures():
    snapshots = runs.grid(RunConfig(**{**CONFIG.to_dict(), "save_epochs": (1,)}), seed=[0, 1, 2])
    assert sizes(runs.plan_chunks(snapshots, CUDA, batched=True)) == [1, 1, 1]
    inception = [RunConfig(dataset="cifar10", model="inception", seed=s) for s in range(3)]  # BatchNorm
    assert sizes(runs.plan_chunks(inception, CUDA)) == [1, 1, 1]
    assert sizes(runs.plan_chunks(inception, CUDA, batched=True)) == [1, 1, 1]
    assert runs.plan_chunks([], CUDA) == []


class Recording:
    """An executor that records what it is given and trains nothing."""

    def __init__(self, device):
        self.device = device
        self.calls = []

    def __call__(self, chunks, train_chunk):
        self.calls.append(([list(c) for c in chunks], train_chunk))


def test_train_missing_hands_the_planned_chunks_to_its_executor(isolated_cache):
    configs = runs.grid(CONFIG, seed=[0, 1, 2])
    executor = Recording(CUDA)
    runs.train_missing(configs + configs[:1], executor=executor, max_batch=2)
    [(chunks, trainer)] = executor.calls
    assert chunks == runs.plan_chunks(configs, CUDA, max_batch=2) == [configs[:2], configs[2:]]
    assert trainer is runs.train_chunk
    runs.train_missing([], executor=executor)
    assert len(executor.calls) == 1  # nothing missing: the executor is not called


def test_the_local_executor_trains_and_stores_each_chunk(isolated_cache):
    configs = runs.grid(CONFIG, seed=[0, 1])
    runs.train_missing(configs, executor=runs.LocalExecutor(CPU))
    assert all(runs.is_cached(c) for c in configs)
    assert runs.train_chunk(configs, CPU) == runs.code_version()  # cached: nothing trained, the version returned
    executor = Recording(CPU)
    runs.train_missing(configs, executor=executor)
    assert executor.calls == []


def test_a_scheduler_spec_gives_a_dask_executor(isolated_cache, monkeypatch):
    from lib.cluster import DaskExecutor

    monkeypatch.delenv("LIB_DASK_SCHEDULER", raising=False)
    assert isinstance(runs.executor_for(), runs.LocalExecutor)
    for off in ("", "none", "off"):
        assert isinstance(runs.executor_for(off), runs.LocalExecutor)
    executor = runs.executor_for(" tcp://10.0.0.5:8786 ")  # made without contacting the scheduler
    assert isinstance(executor, DaskExecutor) and executor.spec == "tcp://10.0.0.5:8786"
    assert executor.cache_dir == str(isolated_cache.resolve()) and executor.code_version == runs.code_version()
    monkeypatch.setenv("LIB_DASK_SCHEDULER", "local:2")
    assert runs.executor_for().spec == "local:2"
    assert isinstance(runs.executor_for(""), runs.LocalExecutor)  # an explicit argument wins
