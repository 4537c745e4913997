"""Pure functions that turn run summaries and histories into the papers' plotted quantities."""

from __future__ import annotations

import pandas as pd


def relative_convergence_time(summary: pd.DataFrame, by: str = "model", level: str = "corruption") -> pd.DataFrame:
    """Zhang et al., Figure 1b: steps to convergence divided by the same model's steps at zero corruption.

    ``summary`` is :func:`lib.runs.run_grid`'s frame; runs that never converged get NaN.
    Adds the column ``relative_convergence``.
    """
    frame = summary.copy()
    steps = frame["converged_step"].where(frame["converged"])
    baseline = frame[frame[level] == 0].set_index(by)["converged_step"]
    frame["relative_convergence"] = steps / frame[by].map(baseline)
    return frame


def loss_curve(history: pd.DataFrame, group: str, max_points: int = 200) -> pd.DataFrame:
    """Zhang et al., Figure 1a: the mean training loss of each epoch against thousands of steps.

    Thins each group's curve to at most ``max_points`` epochs so the chart stays small.
    """
    parts = []
    for _, part in history.groupby(group, sort=False):
        stride = max(1, len(part) // max_points)
        parts.append(part.iloc[::stride])
    frame = pd.concat(parts, ignore_index=True)
    return frame.assign(thousand_steps=frame["step"] / 1000)[[group, "epoch", "thousand_steps", "train_loss", "train_acc"]]
