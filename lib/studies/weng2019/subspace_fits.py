"""The intrinsic-dimension chapter's measures (Li, Farkhoor, Liu & Yosinski 2018; Weng 2019): where each run's
accuracy crosses a bar (d_int90 and its kin), per seed and per network, and whether a d grid can tell.

Every crossing is :func:`lib.studies.weng2019.intrinsic_dimension.crossing` (linear in log d between the last d
below the bar and the first at or above it, NaN when no d of the grid reaches it); the tables here apply it to the
tables of runs :func:`lib.studies.weng2019.intrinsic_dimension.subspace_grid` returns (one row per run: ``model``,
``seed``, ``d``, ``final_train_acc``, ``final_test_acc``, ...).
"""

from __future__ import annotations

import math
from typing import Callable, Hashable, Iterable

import numpy as np
import pandas as pd

from lib.studies.weng2019.intrinsic_dimension import crossing

GLOBAL_BAR = 0.9  # the paper's d_int90: a test accuracy of 90.0% (its baseline of 1.0)


def seed_crossings(grid: pd.DataFrame, direct_acc: dict[int, float]) -> pd.DataFrame:
    """d_int90 of each seed, both ways (Li et al., Section 2 and the authors' notebook): against the global bar
    (a test accuracy of 90.0%) and against the local one, 90% of the seed's directly trained accuracy
    (``direct_acc``: seed → test accuracy)."""
    rows = []
    for seed, g in grid.groupby("seed"):
        rows.append({"seed": seed, "direct test acc": direct_acc[seed],
                     "d_int90, global bar 90.0%": crossing(g.d, g.final_test_acc, GLOBAL_BAR),
                     "local bar (90% of direct)": 0.9 * direct_acc[seed],
                     "d_int90, local": crossing(g.d, g.final_test_acc, 0.9 * direct_acc[seed])})
    return pd.DataFrame(rows)


def mean_crossing(grid: pd.DataFrame, bar: float, by: str = "seed", column: str = "final_test_acc") -> float:
    """The mean over the groups of ``grid`` (seeds) of the d at which ``column`` reaches ``bar`` (NaN if a group
    never does)."""
    return float(np.mean([crossing(g.d, g[column], bar) for _, g in grid.groupby(by)]))


def bar_crossings(grid: pd.DataFrame, direct: pd.DataFrame, bars: Iterable[float] = (0.8, 0.9)) -> pd.DataFrame:
    """Weng's measurement (her essay's "Intrinsic Dimension Measurement"): for each (model, seed) of ``grid``, the
    d at which the test accuracy reaches each of ``bars`` as a global bar and as a fraction of the directly trained
    accuracy (``direct``: the references' run table, with ``model``, ``seed`` and ``final_test_acc``)."""
    rows = []
    for (model, seed), g in grid.groupby(["model", "seed"]):
        base = float(direct.loc[(direct.model == model) & (direct.seed == seed), "final_test_acc"].iloc[0])
        row = {"model": model, "seed": seed, "direct test acc": base}
        for bar in bars:
            row[f"d at {bar:.0%} (global)"] = crossing(g.d, g.final_test_acc, bar)
            row[f"d at {bar:.0%} of direct"] = crossing(g.d, g.final_test_acc, bar * base)
        rows.append(row)
    return pd.DataFrame(rows)


def memorization_table(grid: pd.DataFrame, criterion: float, by: str = "n") -> pd.DataFrame:
    """Li et al.'s Section 4 on subsets: for each number n of shuffled labels (column ``by`` of ``grid``), the d at
    which the training accuracy reaches ``criterion``, the best training accuracy over d, and d per label."""
    table = pd.DataFrame([{"shuffled labels memorized (n)": n,
                           f"d at {criterion:.0%} training accuracy": crossing(g.d, g.final_train_acc, criterion),
                           "best training accuracy": g.final_train_acc.max()}
                          for n, g in grid.groupby(by)])
    table["d per label"] = table.iloc[:, 1] / table.iloc[:, 0]
    return table


def grid_decides(grid: pd.DataFrame, bar: Callable[[Hashable], float], lo: float, hi: float, by: str = "seed",
                 column: str = "final_test_acc") -> bool:
    """Whether the d grid decides if the crossing lies in [``lo``, ``hi``] for every group of ``grid`` (a seed, a
    model): either its smallest d is below the bar (``bar(key)``) or already below ``lo``, and either the bar is
    reached or the grid goes past ``hi``. Otherwise the crossing is censored by the grid where it matters."""
    return all((g.sort_values("d")[column].iloc[0] < bar(key) or g.d.min() < lo)
               and (g[column].max() >= bar(key) or g.d.max() > hi) for key, g in grid.groupby(by))


def crossing_resolution(d_values: Iterable[float], crossing: float) -> float:
    """How finely a d grid resolves a crossing: half the width of the interval of consecutive ``d_values`` that holds
    ``crossing`` (its value is interpolated inside that interval, so it is known to about half its width). NaN for a
    NaN crossing or one outside the grid."""
    grid = np.unique(np.asarray(list(d_values), dtype=float))
    if math.isnan(crossing) or len(grid) < 2 or not grid[0] <= crossing <= grid[-1]:
        return float("nan")
    upper = min(max(int(np.searchsorted(grid, crossing, side="left")), 1), len(grid) - 1)
    return float(grid[upper] - grid[upper - 1]) / 2


def spread(values: Iterable[float]) -> float:
    """The spread (max - min) of the finite ``values`` (0 for fewer than two; NaN where any is NaN: a seed that never
    crossed leaves the spread unknown)."""
    values = [float(v) for v in values]
    if any(math.isnan(v) for v in values):
        return float("nan")
    return max(values) - min(values) if len(values) > 1 else 0.0


def every_group_reaches(grid: pd.DataFrame, bar: float, by: str = "n", column: str = "final_train_acc") -> bool:
    """Whether every group of ``grid`` (a subset size) reaches ``bar`` at some d of the grid."""
    return all(g[column].max() >= bar for _, g in grid.groupby(by))


def starts_below(grid: pd.DataFrame, bar: float, by: str = "n", column: str = "final_train_acc") -> bool:
    """Whether every group of ``grid`` but the smallest key (the smallest subset) is below ``bar`` at the grid's
    smallest d: its crossing is not tied at the grid's edge."""
    smallest = grid[by].min()
    return all(g.sort_values("d")[column].iloc[0] < bar for key, g in grid.groupby(by) if key != smallest)


def best_and_at_largest_d(grid: pd.DataFrame, column: str = "final_test_acc") -> tuple[float, float]:
    """The best ``column`` over the runs of ``grid`` and its mean at the grid's largest d (NaN for no runs)."""
    if not len(grid):
        return float("nan"), float("nan")
    return float(grid[column].max()), float(grid[grid.d == grid.d.max()][column].mean())


def accuracy_at(d: Iterable[float], accuracy: Iterable[float], at: float) -> float:
    """The accuracy at ``at`` interpolated between measured d values, linearly in log d and log accuracy (the paper
    reports 90% at d = 750)."""
    d, accuracy = np.asarray(list(d), dtype=float), np.asarray(list(accuracy), dtype=float)
    return float(np.exp(np.interp(np.log(at), np.log(d), np.log(accuracy))))


def epoch_cut(history: pd.DataFrame, epochs: int) -> tuple[float, float]:
    """What the grid's epoch cut costs (one long run's ``history``, one row per epoch): the test accuracy after
    ``epochs`` and after the last epoch."""
    return float(history.loc[history.epoch == epochs, "test_acc"].iloc[0]), float(history.test_acc.iloc[-1])


def percent(x: float | None) -> str:
    """An accuracy as a percentage with two decimals; "n/a" for a missing one."""
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.2f}%"


def dimension(x: float | None) -> str:
    """A crossing's d, rounded; "not reached" where the grid never reaches the bar (NaN)."""
    return "not reached" if x is None or math.isnan(x) else f"{x:,.0f}"
