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
    monkeypatch.setattr(runs, "code_version", lambda: "another-version-of-lib")
    assert runs.run_key(CONFIG) not in keys


def test_code_version_covers_the_training_modules():
    assert {"data.py", "corrupt.py", "models.py", "train.py"} <= set(runs.TRAINING_MODULES)
    assert len(runs.code_version()) == 16


def test_editing_the_training_code_changes_the_key_and_editing_the_cache_does_not(tmp_path):
    import shutil

    copy = tmp_path / "lib"
    shutil.copytree(runs.PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = runs.training_digest(copy)
    assert before == runs.training_digest()
    (copy / "runs.py").write_text((copy / "runs.py").read_text() + "\n# plumbing only\n")
    assert runs.training_digest(copy) == before  # the cache's own code decides no result
    (copy / "train.py").write_text((copy / "train.py").read_text() + "\n# a change to training\n")
    changed = runs.training_digest(copy)
    assert changed != before and changed not in runs.KEPT_VERSIONS  # a new key: nothing stale is reused


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
