"""Zhang et al. 2017, Section 3 (``book/zhang-regularization.md``): Table 1 in full, Figure 2b, Table 4, and Table 2's
numbers (ImageNet, not run here).

The runs of each row (:func:`row_config`, built on :func:`lib.studies.protocols.zhang_row_config` with this chapter's epoch
caps), the epochs the paper's protocol allows a row (:func:`paper_epochs`), and pure functions that turn the runs'
summaries and histories into the paper's tables and comparisons: a regularizer's gain (:func:`regularizer_gain`),
BatchNorm's effect (:func:`batchnorm_effect`), early stopping's potential gain (:func:`early_stopping_gain`).
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from lib.runs import run_key
from lib.studies.zhang2017.protocol import zhang_row_config
from lib.train import RunConfig

MODEL_NAMES = {"inception": "Inception", "inception_nobn": "Inception w/o BatchNorm", "alexnet": "AlexNet",
               "mlp3x512": "MLP 3x512", "mlp1x512": "MLP 1x512"}
TABLE1_REGULARIZERS = {  # Table 1 row -> (random crop, weight decay), as the paper's columns say them
    "crop_wd": ("yes", "yes"), "crop": ("yes", "no"), "wd": ("no", "yes"), "none": ("no", "no"),
    "random_labels": ("no", "no")}
TABLE4_SETTINGS = {"wd": "weight decay", "crop": "random cropping", "augmentation": "augmentation (flips, rotations)"}
TABLE2_SETTINGS = {  # Table 2 setting -> (data augmentation, dropout, weight decay)
    "aug_dropout_wd": ("yes", "yes", "yes"), "aug": ("yes", "no", "no"), "wd": ("no", "no", "yes"),
    "none": ("no", "no", "no"), "dropout_wd": ("no", "yes", "yes")}
BATCHNORM_MODELS = ("inception", "inception_nobn")  # Figure 2b: Inception with and without BatchNorm


# --- the runs ---------------------------------------------------------------------------------------------------

def row_config(P, model: str, row: str, table: str = "table1") -> RunConfig:
    """The run of one row of Table 1 (``table="table1"``) or Table 4 (``"table4"``) for ``model`` at the scale of
    ``P`` (``zhang-regularization``'s parameters). :func:`lib.studies.protocols.zhang_row_config` builds it; the rest is this
    chapter's: a model's ``regularized_max_epochs`` caps every run the randomization chapter does not share (Table 1's
    ``none`` and ``random_labels`` rows are shared), its ``augmented_max_epochs`` caps Table 1's random-crop runs,
    Table 4's augmented runs decay the learning rate more slowly and train longer (``table4_augmented_lr_decay``,
    ``table4_augmented_max_epochs``, the paper's Table 4 text), and the Inceptions' unregularized runs are tested every
    ``figure2b_test_every`` epochs (Figure 2b's learning curves)."""
    config = zhang_row_config(P, model, row, table)
    entry = P.models[model]
    shared = table == "table1" and row in ("none", "random_labels")  # the randomization chapter's runs
    if not shared and entry.regularized_max_epochs:
        config = replace(config, max_epochs=entry.regularized_max_epochs)
    if table == "table1" and config.augmented and entry.augmented_max_epochs:
        config = replace(config, max_epochs=entry.augmented_max_epochs)
    if table == "table4" and config.augmented:
        config = replace(config, lr_decay=P.table4_augmented_lr_decay, max_epochs=P.table4_augmented_max_epochs)
    if model.startswith("inception") and table == "table1" and row == "none":
        config = replace(config, test_every=P.figure2b_test_every)
    return config


def paper_rows(paper, table: str, models) -> list[tuple[str, str]]:
    """(model, row) of every row of the paper's Table 1 (``table="table1"``) or Table 4 (``"table4"``) whose model is
    among ``models``, in the paper's order, read from its numbers (``paper``: :func:`lib.papers.paper`'s
    ``zhang2017``): Table 1's rows are the keys ``table1.<model>.<row>.train``, Table 4's ``table4.<model>.<row>``."""
    rows = []
    for key in paper.keys(table):
        parts = key.split(".")
        if table == "table1" and len(parts) == 4 and parts[3] == "train":
            rows.append((parts[1], parts[2]))
        if table == "table4" and len(parts) == 3:
            rows.append((parts[1], parts[2]))
    return [r for r in dict.fromkeys(rows) if r[0] in models]


def row_configs(P, table1_rows, table4_rows) -> dict[tuple[str, str, str], RunConfig]:
    """(table, model, row) -> :func:`row_config` for the rows of Table 1 and of Table 4, in that order."""
    configs = {("table1", m, r): row_config(P, m, r) for m, r in table1_rows}
    configs.update({("table4", m, r): row_config(P, m, r, "table4") for m, r in table4_rows})
    return configs


def row_results(summary: pd.DataFrame, configs: dict) -> dict:
    """Each configuration's row of ``summary`` (:func:`lib.runs.run_grid`'s frame; rows may share a run), with
    ``paper_train_acc``, the paper's "training accuracy": of an augmented run the online accuracy on its augmented
    batches (Table 4, footnote 5), else the accuracy on the whole training set."""
    by_key = summary.drop_duplicates("key").set_index("key")
    results = {}
    for name, config in configs.items():
        out = by_key.loc[run_key(config)].copy()
        out["paper_train_acc"] = out.final_train_acc_online if config.augmented else out.final_train_acc
        results[name] = out
    return results


def paper_epochs(paper_params, model: str, row: str, table: str = "table1") -> int:
    """The epochs the paper's protocol allows the same row (``paper_params``: the chapter's ``paper``-scale
    parameters; Table 4's augmented runs train ``table4_augmented_max_epochs``): a run of ours that stops at a lower
    cap without converging has not reached the paper's setting."""
    config = zhang_row_config(paper_params, model, row, table)
    if table == "table4" and config.augmented:
        return int(paper_params.table4_augmented_max_epochs)
    return int(config.max_epochs)


def stopped_by_cap(result: pd.Series, paper_epochs: int) -> bool:
    """The run stopped at its epoch cap unconverged, short of the ``paper_epochs`` the paper's protocol allows."""
    return not result.converged and int(result.epochs) < paper_epochs


def run_state(result: pd.Series, paper_epochs: int) -> str:
    """How the run ended, in words: converged at an epoch, or stopped by its epoch cap (where its training accuracy
    stood, and the ``paper_epochs`` the paper's protocol would have allowed)."""
    if result.converged:
        return f"converged at epoch {int(result.converged_epoch)}"
    return (f"stopped at its epoch cap ({int(result.epochs)}) at {result.paper_train_acc:.1%} training accuracy "
            f"(`paper` scale: up to {paper_epochs})")


# --- Table 1 ----------------------------------------------------------------------------------------------------

def unregularized_accuracy_at(history: pd.DataFrame, model: str, epoch: int) -> tuple[float, int]:
    """Test accuracy of ``model``'s run in ``history`` (the unregularized runs' :func:`lib.runs.grid_history`) at its
    last tested epoch ≤ ``epoch``, and that epoch: what a regularized run stopped at an epoch cap is compared with."""
    h = history[(history.model == model) & (history.epoch <= epoch)]
    h = h.dropna(subset=["test_acc"])
    return float(h.test_acc.iloc[-1]), int(h.epoch.iloc[-1])


def table1_frame(rows, results: dict, paper, n_train: dict) -> pd.DataFrame:
    """Table 1 in full: for each (model, row) of ``rows``, the paper's train and test accuracy beside ours (percent,
    two decimals; our "train" is ``paper_train_acc`` of :func:`row_results`), our epochs and whether the run converged,
    and ``n_train[model]`` training images. ``_model`` and ``_row`` keep the keys."""
    table = []
    for model, row in rows:
        ours = results[("table1", model, row)]
        crop, wd = TABLE1_REGULARIZERS[row]
        table.append({"model": MODEL_NAMES[model], "row": "random labels" if row == "random_labels" else "true labels",
                      "random crop": crop, "weight decay": wd,
                      "paper train %": paper[f"table1.{model}.{row}.train"],
                      "ours train %": round(100 * ours.paper_train_acc, 2),
                      "paper test %": paper[f"table1.{model}.{row}.test"],
                      "ours test %": round(100 * ours.final_test_acc, 2),
                      "epochs": int(ours.epochs), "converged": bool(ours.converged),
                      "training images": n_train[model], "_model": model, "_row": row})
    return pd.DataFrame(table)


def regularized_row(model: str, rows) -> str:
    """The row of Table 1 with every regularizer the paper toggles for ``model`` on: random crop and weight decay
    (``crop_wd``) where the paper has that row, else weight decay (``wd``)."""
    return "crop_wd" if (model, "crop_wd") in rows else "wd"


def accuracy_of(table1: pd.DataFrame, model: str, row: str, source: str) -> float:
    """Table 1's test accuracy (percent) of ``model``'s ``row``, the paper's (``source="paper"``) or ours (``"ours"``)."""
    line = table1[(table1._model == model) & (table1._row == row)].iloc[0]
    return float(line[f"{source} test %"])


def regularizer_gain(regularized: pd.Series, unregularized: pd.Series, history: pd.DataFrame) -> tuple[float, str]:
    """Table 1: points of test accuracy the regularized run gains over the unregularized one of the same model
    (:func:`row_results`' rows), and how they were compared. Both at convergence (the unregularized accuracy as Table 1
    shows it, to two decimals); where either stopped at its epoch cap, the regularized run's final accuracy against
    the unregularized run's at the same epoch (:func:`unregularized_accuracy_at` in ``history``)."""
    if regularized.converged and unregularized.converged:
        return 100 * regularized.final_test_acc - round(100 * unregularized.final_test_acc, 2), "both converged"
    reference, epoch = unregularized_accuracy_at(history, regularized.model, int(regularized.epochs))
    return 100 * (regularized.final_test_acc - reference), f"at epoch {epoch}, a cap"


def gains_frame(table1: pd.DataFrame, gains: dict, chance: float) -> pd.DataFrame:
    """Table 1's regularizers, model by model: the paper's gain of the regularized row (``gains[model]``: (row,
    our gain, how compared)) over the unregularized one beside ours, and each unregularized test accuracy above
    ``chance``, in points to two decimals."""
    return pd.DataFrame([
        {"model": MODEL_NAMES[m], "regularized row": row,
         "paper: gain of the regularizers (points)": round(accuracy_of(table1, m, row, "paper")
                                                           - accuracy_of(table1, m, "none", "paper"), 2),
         "ours (points)": round(gain, 2), "ours compared": compared,
         "paper: all off, above chance (points)": round(accuracy_of(table1, m, "none", "paper") - 100 * chance, 2),
         "ours: all off, above chance (points)": round(accuracy_of(table1, m, "none", "ours") - 100 * chance, 2),
         "_model": m}
        for m, (row, gain, compared) in gains.items()])


def table1_bars(table1: pd.DataFrame, regularized_rows: dict) -> pd.DataFrame:
    """Table 1 at a glance: each model's test accuracy (a fraction) with every regularizer off (``none``) and on
    (``regularized_rows[model]``), the paper's and ours, one row per bar."""
    bars = []
    for model, on in regularized_rows.items():
        for setting, row in (("all off", "none"), ("on", on)):
            line = table1[(table1._model == model) & (table1._row == row)].iloc[0]
            for source in ("paper", "ours"):
                bars.append({"model": MODEL_NAMES[model], "source": source, "regularizers": setting,
                             "test accuracy": line[f"{source} test %"] / 100, "row": row})
    return pd.DataFrame(bars)


# --- Figure 2b --------------------------------------------------------------------------------------------------

def figure2b_curves(history: pd.DataFrame, models=BATCHNORM_MODELS) -> tuple[pd.DataFrame, dict[str, int]]:
    """Figure 2b's learning curves of ``models``' runs in ``history``: the tested epochs of each network, its online
    training accuracy (``train``), test accuracy (``test``) and the test accuracy's cumulative best; and the number
    of epochs each network was tested at."""
    curves = history[history.model.isin(models)].copy()
    curves["network"] = curves.model.map(MODEL_NAMES)
    curves = curves.dropna(subset=["test_acc"]).sort_values(["network", "epoch"])
    curves["best test so far"] = curves.groupby("network").test_acc.cummax()
    n_tested = {m: int((curves.model == m).sum()) for m in models}
    curves = curves.rename(columns={"train_acc_online": "train", "test_acc": "test"})[
        ["network", "epoch", "train", "test", "best test so far"]]
    return curves, n_tested


def batchnorm_effect(with_bn: pd.Series, without_bn: pd.Series, history: pd.DataFrame) -> tuple[float, str]:
    """Figure 2b: points of test accuracy Inception with BatchNorm has over Inception without (their unregularized
    runs, :func:`row_results`' rows), and how they were compared: each at convergence, the paper's comparison, or,
    where either stopped unconverged, both at the last tested epoch both runs reached (in ``history``)."""
    if with_bn.converged and without_bn.converged:
        return 100 * (with_bn.final_test_acc - without_bn.final_test_acc), "each network at convergence"
    epoch = min(int(with_bn.epochs), int(without_bn.epochs))
    with_then, epoch = unregularized_accuracy_at(history, with_bn.model, epoch)
    without_then = unregularized_accuracy_at(history, without_bn.model, epoch)[0]
    return 100 * (with_then - without_then), f"both networks at epoch {epoch}, not both converged"


def early_stopping_gain(result: pd.Series) -> float:
    """Figure 2b: the points of test accuracy early stopping could have gained, the best test accuracy during
    training minus the final one."""
    return 100 * (result.best_test_acc - result.final_test_acc)


# --- Table 4 and Table 2 ----------------------------------------------------------------------------------------

def table4_frame(rows, results: dict, paper) -> pd.DataFrame:
    """Table 4 (random labels under a regularizer): for each (model, setting) of ``rows``, the paper's training
    accuracy beside ours (``paper_train_acc``), whether ours converged, its epochs and test accuracy. ``_model``,
    ``_setting``, ``_fit`` (our training accuracy, a fraction) and ``_converged`` keep the values."""
    table = []
    for model, setting in rows:
        ours = results[("table4", model, setting)]
        table.append({"model": MODEL_NAMES[model], "regularizer": TABLE4_SETTINGS[setting],
                      "paper: train accuracy": paper[f"table4.{model}.{setting}"],
                      "ours: train accuracy": f"{ours.paper_train_acc:.2%}", "ours: converged": bool(ours.converged),
                      "ours: epochs": int(ours.epochs), "ours: test accuracy": f"{ours.final_test_acc:.2%}",
                      "_model": model, "_setting": setting, "_fit": float(ours.paper_train_acc),
                      "_converged": bool(ours.converged)})
    return pd.DataFrame(table)


def table2_frame(paper) -> pd.DataFrame:
    """Table 2 (Inception v3 on ImageNet) as the paper gives it: top-1 and top-5 train and test accuracy of each
    setting of :data:`TABLE2_SETTINGS` on true and random labels (the best test accuracy during training in
    parentheses, where the paper gives it); a setting the paper did not run is left out."""
    table = []
    for labels in ("true", "random"):
        for setting, (aug, dropout, wd) in TABLE2_SETTINGS.items():
            prefix = f"table2.{labels}.{setting}"
            if f"{prefix}.top1_train" not in paper:
                continue

            def best(k: str) -> str:
                return f" ({paper[f'{prefix}.{k}_best']:.2f})" if f"{prefix}.{k}_best" in paper else ""

            table.append({"labels": labels, "data aug": aug, "dropout": dropout, "weight decay": wd,
                          "top-1 train": paper[f"{prefix}.top1_train"], "top-5 train": paper[f"{prefix}.top5_train"],
                          "top-1 test (best)": f"{paper[f'{prefix}.top1_test']:.2f}{best('top1_test')}",
                          "top-5 test (best)": f"{paper[f'{prefix}.top5_test']:.2f}{best('top5_test')}"})
    return pd.DataFrame(table)


def table2_compute(paper) -> dict:
    """The arithmetic of one Table 2 run: training images × epochs × FLOP per image (a forward and backward pass,
    about three forward passes of 2 FLOP per multiply-add of Inception v3), from the paper's numbers."""
    images, epochs = paper["table2.setup.images_train"], paper["table2.cost.epochs_assumed"]
    flops_per_image = 3 * 2 * paper["table2.cost.inception_v3_multiply_adds"]
    return dict(images=images, epochs=epochs, flops_per_image=flops_per_image, total=flops_per_image * images * epochs)
