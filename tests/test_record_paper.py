"""python -m lib record-paper (lib.book.record): the papers' protocol recorded into results/<scale>/runs within a
budget, each run as it finishes, nothing twice, and a cut-off call keeping what finished. Run on the CPU at `smoke`
(the same code path as on a GPU, with the smoke parameters' tiny grid)."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from lib import results, runs
from lib.book import cli, record
from lib.keys import run_key
from lib.params import load_params
from lib.train import RunConfig

TINY = RunConfig(dataset="mnist", n_train=64, n_test=32, preprocessing="scale", model="mlp1x64", lr=0.05,
                 lr_decay=1.0, max_epochs=1, stop_train_acc=None, batch_size=32)


@pytest.fixture
def stores(tmp_path, monkeypatch) -> Path:
    """An empty run cache, results store and probe cache; returns the results store."""
    monkeypatch.setenv("LIB_CACHE_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("LIB_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("LIB_PROGRESS", "0")
    monkeypatch.delenv("LIB_RECORD", raising=False)
    return tmp_path / "results"


def _files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_paper_targets_are_the_chapters_runs_most_valuable_first():
    targets = record.paper_targets("paper")
    masc = load_params("masc-decoding", "paper")
    grid = targets[0].configs
    assert targets[0].name == "MASC MLP-MNIST grid"
    assert len(grid) == len(masc.corruption_levels) * len(masc.seeds) == 18
    assert {c.model for c in grid} == {"mlp-128-512-2048-2048"} and {c.n_train for c in grid} == {None}
    assert [c.corruption for c in grid[:3]] == [0.8, 0.4, 1.0] and {c.seed for c in grid[:6]} == {masc.seeds[0]}
    zhang = [(c.model, c.corruption) for t in targets[1:] for c in t.configs]
    assert zhang == [("inception", 0.0), ("inception", 1.0), ("alexnet", 0.0), ("alexnet", 1.0)]
    from lib.studies.zhang2017.randomization import figure1_runs

    chapter_runs, _ = figure1_runs(load_params("zhang-randomization", "paper"), "inception")
    assert all(c in chapter_runs for t in targets[1:] for c in t.configs)  # the chapter's own runs: same keys


def test_runs_in_the_cache_or_at_another_scale_are_recorded_without_training(stores):
    cached, elsewhere = TINY, replace(TINY, seed=1)
    runs.run(cached)
    results.record_run("full", runs.run(elsewhere), None)
    shutil.rmtree(runs.cache_dir() / run_key(elsewhere))  # only its record at full is left
    report = record.record_paper("smoke", budget_s=60, targets=[record.Target("tiny", (cached, elsewhere))])
    assert sorted(report.recorded) == sorted([run_key(cached), run_key(elsewhere)]) and not report.missing
    copied = results.run_path("smoke", run_key(elsewhere))
    assert copied.read_text() == results.run_path("full", run_key(elsewhere)).read_text()
    assert json.loads(results.run_path("smoke", run_key(cached)).read_text())["provenance"]["precision"] == "fp32"
    assert not runs.in_cache(elsewhere)  # recorded, not trained


@pytest.mark.slow
def test_record_paper_at_smoke_records_the_grid_once(stores, capsys):
    """The command end to end on the CPU at smoke: every target run recorded under results/smoke/runs and nowhere
    else, each valid for this checkout and as trained; a second call trains and records nothing."""
    assert cli.main(["record-paper", "--scale", "smoke", "--budget-min", "30"]) == 0
    out = capsys.readouterr().out
    configs = [c for target in record.paper_targets("smoke") for c in target.configs]
    assert len(configs) == 4  # the MLP at p = 0 and 0.8, AlexNet on true and random labels
    written = _files(stores)
    assert sorted(written) == sorted(f"smoke/runs/{run_key(c)}.json" for c in configs)
    for config in configs:
        recorded = results.load_run(config)  # refuses a damaged or foreign record
        assert recorded.summary["epochs"] == config.max_epochs  # the smoke grid stops at its cap
        assert recorded.summary == runs.load(config).summary  # as stored in the run cache, weights and all
        assert f"{config.model} {config.dataset} p={config.corruption:g}" in out
    assert "Recorded 4 runs" in out
    assert cli.main(["record-paper", "--scale", "smoke", "--budget-min", "30"]) == 0
    again = capsys.readouterr().out
    assert "Recorded 0 runs" in again and "(4 were recorded before)" in again
    assert _files(stores) == written


@pytest.mark.slow
def test_a_budget_cut_keeps_the_runs_that_finished(stores):
    """A single run that finishes, then a stack of two (forced on the CPU) whose first network converges after one
    epoch and whose second never would: the budget stops the call before its end, with the single run and the
    converged network recorded (the latter from the stack's checkpoint, stored in the run cache with its weights),
    the other network not."""
    single = TINY
    stack = [replace(TINY, model="mlp2x64", max_epochs=100_000, stop_train_acc=0.01, seed=1),
             replace(TINY, model="mlp2x64", max_epochs=100_000, stop_train_acc=None, seed=2)]
    targets = [record.Target("single", (single,)), record.Target("stack", tuple(stack))]
    budget = 120.0  # the child process starts, loads MNIST and trains the single run in seconds on an idle machine
    report = record.record_paper("smoke", budget_s=budget, targets=targets, batched=True, reserve_s=30,
                                 checkpoint_every_s=1, poll_s=0.5, device=torch.device("cpu"))
    assert report.stopped and report.failed is None and report.seconds < budget
    assert sorted(report.recorded) == sorted([run_key(single), run_key(stack[0])])
    assert report.missing == [run_key(stack[1])]
    assert sorted(_files(stores)) == sorted(f"smoke/runs/{run_key(c)}.json" for c in (single, stack[0]))
    converged = results.load_run(stack[0]).summary
    assert converged["converged"] and converged["converged_epoch"] == 1 and converged["batched_with"] == 2
    kept = runs.load(stack[0])  # in the run cache with its weights: a model that loads them
    assert kept.summary == converged and kept.model()(torch.zeros(1, 1, 28, 28)).shape == (1, 10)
    assert not runs.in_cache(stack[1]) and results.load_run(stack[1]) is None
