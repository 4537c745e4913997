"""Zhang et al. 2017, Figure 1 and the unregularized rows of Table 1 (``book/zhang-randomization.md``): the runs of
the label-corruption grid and the pixel randomizations, and pure functions that turn their summaries and histories
into the paper's plotted and tabulated quantities."""

from __future__ import annotations

import pandas as pd

from lib.runs import grid
from lib.studies.zhang2017.protocol import zhang_config
from lib.train import RunConfig

#: Figure 1a's settings: ``"<randomization>:<corruption>"`` of a run -> the paper's name for it.
SETTINGS = {"partial_labels:0.0": "true labels", "partial_labels:1.0": "random labels",
            "shuffled_pixels:1.0": "shuffled pixels", "random_pixels:1.0": "random pixels", "gaussian:1.0": "gaussian"}
PIXEL_RANDOMIZATIONS = ("shuffled_pixels", "random_pixels", "gaussian")  # Figure 1a, every pixel replaced
#: The networks each panel of the paper's Figure 1 plots: a claim about a panel is the paper's when it is measured on
#: one of them, and our extension on any other network.
FIGURE1_NETWORKS = {"Figure 1a": ("inception",), "Figure 1b": ("inception", "alexnet", "mlp1x512"),
                    "Figure 1c": ("inception", "alexnet", "mlp1x512")}


def figure1_runs(P, curve_model: str) -> tuple[list[RunConfig], list[RunConfig]]:
    """Zhang et al., Figure 1: the label-corruption grid (each model of ``P.models`` at each of its
    ``corruption_levels``) and, for ``curve_model``, the three pixel randomizations on random labels."""
    corruption_runs = [c for model, m in P.models.items()
                       for c in grid(zhang_config(P, model), corruption=m.corruption_levels)]
    pixel_runs = [zhang_config(P, curve_model, randomization=kind, corruption=1.0) for kind in PIXEL_RANDOMIZATIONS]
    return corruption_runs, pixel_runs


def setting_of(frame: pd.DataFrame, settings: dict = SETTINGS) -> pd.Series:
    """Figure 1a: the setting of each row of a run summary or history (NaN for a run that is not one of them)."""
    return (frame["randomization"] + ":" + frame["corruption"].astype(str)).map(settings)


def settings_fit(summary: pd.DataFrame, model: str, settings: dict = SETTINGS) -> pd.DataFrame:
    """Figure 1a: the summary of ``model``'s run of each setting, indexed by the setting, in the order of ``settings``."""
    fit = summary[summary["model"] == model].copy()
    fit["setting"] = setting_of(fit, settings)
    return fit.dropna(subset=["setting"]).set_index("setting").loc[list(settings.values())]


def faster_than_random_labels(fit: pd.DataFrame, candidates=("random pixels", "gaussian"),
                              steps: str = "converged_step") -> list[str]:
    """Figure 1a: the settings among ``candidates`` that reached the convergence threshold in fewer SGD steps than
    random labels (a run that did not converge, NaN steps, is never faster). ``steps``: the column of steps to
    count (:func:`with_fit_steps`' ``fit_step`` for each network's own fit threshold)."""
    counts = fit[steps]
    return [s for s in candidates if counts[s] < counts["random labels"]]


def fit_threshold(paper, model: str, stop: float) -> float:
    """The training accuracy (a fraction) at which a run of ``model`` has fitted its labels in Figure 1: the lower of
    our stopping rule ``stop`` and the network's own fit on random labels in the paper's Table 1 (``paper``: the
    numbers of :mod:`lib.papers`; the 1x512 MLP ended at 99.34%), so that the paper's own run of the network
    satisfies the rule."""
    return min(float(stop), paper[f"table1.{model}.random_labels.train"] / 100)


def with_fit_steps(summary: pd.DataFrame, history: pd.DataFrame, thresholds: dict[str, float]) -> pd.DataFrame:
    """``summary`` (:func:`lib.runs.run_grid`'s rows) with, per run, its model's ``fit_threshold``
    (``thresholds[model]``), the step and epoch at which its training accuracy over the whole training set first
    reached it (``fit_step``, ``fit_epoch``; NaN if never) and ``fitted``. ``history``: the runs' per-epoch histories
    (:func:`lib.runs.grid_history`), matched on model, randomization and corruption; an epoch whose training accuracy
    was not evaluated (NaN) never counts."""
    keys = ["model", "randomization", "corruption"]
    evaluated = history.dropna(subset=["train_acc"])
    reached = evaluated[evaluated["train_acc"] >= evaluated["model"].map(thresholds) - 1e-12]
    first = reached.sort_values("epoch").groupby(keys, sort=False)[["step", "epoch"]].first()
    out = summary.join(first.rename(columns={"step": "fit_step", "epoch": "fit_epoch"}), on=keys)
    out["fit_threshold"] = out["model"].map(thresholds)
    out["fitted"] = out["fit_step"].notna()
    return out


def relative_convergence_time(summary: pd.DataFrame, by: str = "model", level: str = "corruption",
                              steps: str = "converged_step", reached: str = "converged") -> pd.DataFrame:
    """Zhang et al., Figure 1b: steps to convergence divided by the same model's steps at zero corruption.

    ``summary`` is :func:`lib.runs.run_grid`'s frame; ``steps`` names its column of steps to convergence and
    ``reached`` whether the run got there (default: our stopping rule's; :func:`with_fit_steps`' ``fit_step`` and
    ``fitted`` for each network's own fit); runs that never got there get NaN. Adds the column
    ``relative_convergence``.
    """
    frame = summary.copy()
    frame_steps = frame[steps].where(frame[reached].astype(bool))
    baseline = frame_steps[frame[level] == 0].groupby(frame[by]).first()
    frame["relative_convergence"] = frame_steps / frame[by].map(baseline)
    return frame


def slowdown_table(relative: pd.DataFrame) -> pd.DataFrame:
    """Figure 1b as a table: the relative convergence time (:func:`relative_convergence_time`), corruption levels by
    models, to two decimals."""
    return relative.pivot(index="corruption", columns="model", values="relative_convergence").round(2)


def slowdown_rank_correlation(slowdown: pd.DataFrame) -> dict[str, float]:
    """Figure 1b's trend per model: Spearman's rank correlation between the corruption level and the slowdown over
    the levels that converged (1 = strictly increasing), to two decimals."""
    return {m: round(float(slowdown[m].dropna().reset_index().corr(method="spearman").iloc[0, 1]), 2)
            for m in slowdown}


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


def figure1c_curve(errors: pd.DataFrame, model: str) -> dict:
    """Zhang et al., Figure 1c for ``model``: over its corruption levels (``errors``: the partial-label runs with a
    ``test_error`` column), the number of levels, the rise of the test error from p = 0 to p = 1, the largest drop
    between neighbouring levels (0 if none; NaN with a single level), the lowest training accuracy, the number of
    runs that converged, and the test accuracy on the true labels. A missing end point gives NaN."""
    nan = float("nan")
    part = errors[errors["model"] == model].sort_values("corruption").set_index("corruption")
    drops = -part["test_error"].diff().dropna()
    return dict(levels=len(part), rise=float(part["test_error"].get(1.0, nan) - part["test_error"].get(0.0, nan)),
                max_drop=float(max(0.0, drops.max())) if len(drops) else nan,
                lowest_train=float(part["final_train_acc"].min()), n_converged=int(part["converged"].sum()),
                clean_test=float(part["final_test_acc"].get(0.0, nan)))


def table1_rows(errors: pd.DataFrame, models, paper) -> list[dict]:
    """Zhang et al., Table 1's unregularized rows (true labels, ``none``; random labels, ``random_labels``) for each
    of ``models`` that has runs at p = 0 or p = 1 in ``errors``: the paper's train and test accuracy (``paper``, the
    numbers of :mod:`lib.papers`) beside ours, in percent to two decimals."""
    rows = []
    for model in models:
        ours = errors[errors["model"] == model].set_index("corruption")
        for p, label, row in ((0.0, "true labels", "none"), (1.0, "random labels", "random_labels")):
            if p not in ours.index:
                continue
            rows.append({"model": model, "labels": label,
                         "paper train %": paper[f"table1.{model}.{row}.train"],
                         "ours train %": round(100 * ours.loc[p, "final_train_acc"], 2),
                         "paper test %": paper[f"table1.{model}.{row}.test"],
                         "ours test %": round(100 * ours.loc[p, "final_test_acc"], 2)})
    return rows


def data_size_config(P, model: str, n: int, full: int) -> RunConfig:
    """The true-label run of ``model`` on ``n`` of the ``full`` training images (``n >= full``: all of them), the
    chapter's other settings unchanged. The learning-rate decay per epoch is the model's own at its own subset size,
    and elsewhere 0.95 per ``full`` images (the paper's 0.95 per epoch of all of CIFAR-10, kept per step), rounded to
    four decimals."""
    m = P.models[model]
    decay = m.lr_decay if n == (m.n_train or full) else round(0.95 ** (n / full), 4)
    return zhang_config(P, model, corruption=0.0, n_train=None if n >= full else n, lr_decay=decay)


def data_size_runs(P, full: int) -> dict[tuple[str, int], RunConfig]:
    """The training-set-size panel: (model, n) -> :func:`data_size_config` for each of ``P.data_sizes``' models and
    sizes."""
    return {(model, n): data_size_config(P, model, n, full) for model in P.data_sizes.models for n in P.data_sizes.sizes}


def accuracy_by_size(runs: dict[tuple[str, int], RunConfig], summary: pd.DataFrame) -> pd.DataFrame:
    """The panel's test accuracies: one row per (model, n_train) of ``runs``, read from ``summary``, the
    :func:`lib.runs.run_grid` frame of ``runs``' configurations in the same order."""
    return pd.DataFrame([{"model": model, "n_train": n, "test accuracy": float(summary["final_test_acc"].iloc[i])}
                         for i, (model, n) in enumerate(runs)])
