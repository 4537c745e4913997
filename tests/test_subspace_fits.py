"""The intrinsic-dimension chapter's measures (lib.studies.weng2019.subspace_fits) on small synthetic run tables,
against crossings computed by hand (between two d, a crossing halfway in accuracy is their geometric mean)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from lib.studies.weng2019 import subspace_fits as fits


def runs(rows) -> pd.DataFrame:
    """A subspace_grid-like table from (model, seed, d, test accuracy, train accuracy) tuples."""
    return pd.DataFrame(rows, columns=["model", "seed", "d", "final_test_acc", "final_train_acc"])


def log_crossing(d0, a0, d1, a1, bar):
    """The crossing, linear in log d, computed independently of lib."""
    return d0 * (d1 / d0) ** ((bar - a0) / (a1 - a0))


GRID = runs([("mlp", 0, 100, 0.80, 0.9), ("mlp", 0, 400, 1.00, 1.0),
             ("mlp", 1, 100, 0.85, 0.9), ("mlp", 1, 400, 0.95, 1.0)])


def test_each_seed_crosses_the_global_and_its_local_bar():
    table = fits.seed_crossings(GRID, {0: 0.98, 1: 0.96}).set_index("seed")
    assert table.loc[0, "d_int90, global bar 90.0%"] == pytest.approx(200)  # halfway: sqrt(100 * 400)
    assert table.loc[1, "d_int90, global bar 90.0%"] == pytest.approx(200)
    assert table.loc[0, "local bar (90% of direct)"] == pytest.approx(0.882)
    assert table.loc[0, "d_int90, local"] == pytest.approx(log_crossing(100, 0.8, 400, 1.0, 0.882))
    assert table.loc[1, "d_int90, local"] == pytest.approx(log_crossing(100, 0.85, 400, 0.95, 0.9 * 0.96))
    assert (table["d_int90, local"] < table["d_int90, global bar 90.0%"]).all()


def test_the_mean_crossing_is_nan_when_a_seed_never_reaches_the_bar():
    assert fits.mean_crossing(GRID, 0.9) == pytest.approx(200)
    assert fits.mean_crossing(GRID, 0.95) == pytest.approx(
        (log_crossing(100, 0.8, 400, 1.0, 0.95) + 400) / 2)
    assert math.isnan(fits.mean_crossing(GRID, 0.97))  # seed 1 tops out at 95%


def test_weng_s_bars_are_read_globally_and_against_each_direct_accuracy():
    grid = runs([("a", 0, 100, 0.70, 0), ("a", 0, 1000, 0.90, 0), ("b", 0, 100, 0.82, 0), ("b", 0, 1000, 0.86, 0)])
    direct = pd.DataFrame({"model": ["a", "b"], "seed": [0, 0], "final_test_acc": [0.95, 0.90]})
    table = fits.bar_crossings(grid, direct, bars=(0.8, 0.9)).set_index("model")
    assert table.loc["a", "direct test acc"] == 0.95
    assert table.loc["a", "d at 80% (global)"] == pytest.approx(math.sqrt(100 * 1000))
    assert table.loc["a", "d at 80% of direct"] == pytest.approx(log_crossing(100, 0.7, 1000, 0.9, 0.8 * 0.95))
    assert table.loc["b", "d at 80% (global)"] == 100 and math.isnan(table.loc["b", "d at 90% (global)"])
    assert table.loc["b", "d at 90% of direct"] == 100  # 90% of 90% is reached at the smallest d already


def test_memorizing_shuffled_labels_reads_the_training_accuracy_per_subset():
    grid = runs([(None, 0, 50, 0.1, 0.5), (None, 0, 200, 0.1, 1.0), (None, 0, 50, 0.1, 0.2), (None, 0, 200, 0.1, 0.6)])
    grid["n"] = [10, 10, 40, 40]
    table = fits.memorization_table(grid, 0.9)
    assert list(table.columns) == ["shuffled labels memorized (n)", "d at 90% training accuracy",
                                   "best training accuracy", "d per label"]
    assert table.iloc[0, 1] == pytest.approx(log_crossing(50, 0.5, 200, 1.0, 0.9))
    assert table["d per label"].iloc[0] == pytest.approx(table.iloc[0, 1] / 10)
    assert math.isnan(table.iloc[1, 1]) and table["best training accuracy"].tolist() == [1.0, 0.6]
    assert not fits.every_group_reaches(grid, 0.9) and fits.every_group_reaches(grid, 0.6)
    assert fits.starts_below(grid, 0.9)  # n = 40 starts at 20% (n = 10, the smallest, is not asked)
    assert not fits.starts_below(grid, 0.15) and fits.starts_below(grid.assign(final_train_acc=0.1 * grid.n), 4.1)


def test_the_grid_decides_a_crossing_only_if_it_brackets_the_bar_where_it_matters():
    bar = lambda seed: 0.9
    assert fits.grid_decides(GRID, bar, lo=150, hi=300)  # both seeds start below 90% and reach it
    # seed 1 is above 84% at its smallest d, 100: decided if 100 is below lo (the crossing is below the range) ...
    assert fits.grid_decides(GRID, lambda seed: 0.84, lo=150, hi=300)
    assert not fits.grid_decides(GRID, lambda seed: 0.84, lo=50, hi=300)  # ... censored if it could lie in [50, 100]
    assert not fits.grid_decides(GRID, lambda seed: 0.97, lo=150, hi=500)  # seed 1 never reaches, grid stops at 400
    assert fits.grid_decides(GRID, lambda seed: 0.97, lo=150, hi=300)  # ... but it went past hi: not in [lo, hi]
    assert fits.grid_decides(GRID, lambda seed: {0: 0.9, 1: 0.86}[seed], lo=150, hi=300)  # a bar per seed


def test_the_best_accuracy_and_the_accuracy_at_the_largest_d():
    assert fits.best_and_at_largest_d(GRID) == (1.0, pytest.approx(0.975))
    best, top = fits.best_and_at_largest_d(GRID.iloc[:0])
    assert math.isnan(best) and math.isnan(top)


def test_accuracy_between_measured_d_is_interpolated_in_log_d_and_log_accuracy():
    assert fits.accuracy_at([100, 10_000], [0.25, 1.0], 1000) == pytest.approx(0.5)  # halfway in both logs
    assert fits.accuracy_at(pd.Series([300, 900]), pd.Series([0.6, 0.9]), 300) == pytest.approx(0.6)


def test_the_epoch_cut_reads_the_history_at_the_grid_s_epochs_and_at_the_end():
    history = pd.DataFrame({"epoch": [1, 2, 3, 4], "test_acc": [0.5, 0.7, 0.8, 0.85]})
    assert fits.epoch_cut(history, 2) == (0.7, 0.85)


def test_numbers_are_shown_as_the_chapter_writes_them():
    assert fits.percent(0.98765) == "98.77%" and fits.percent(float("nan")) == "n/a" and fits.percent(None) == "n/a"
    assert fits.percent(np.float64(0.5)) == "50.00%"
    assert fits.dimension(1234.4) == "1,234" and fits.dimension(float("nan")) == "not reached"
