"""The Theunissen chapter's analysis of its networks: Theunissen, Davel & Barnard, *Insights regarding overfitting
on noise in deep learning* (FAIR 2019), Figures 1-7.

The per-layer probes themselves (Eqs. 4-6) are :mod:`lib.studies.theunissen2019.probes`; the runs' protocol
(Appendix A) is :func:`lib.studies.theunissen2019.protocol.theunissen_config`. This module holds what the chapter
computes from them:

- the grid of Appendix A and the smaller runs of Figures 1 and 4 (:func:`grid_settings`, :func:`grid_configs`,
  :func:`selected_networks`, :func:`figure1_config`, :func:`figure4_config`), the precondition of every claim
  about them (:func:`fitted_all`) and how they depart from Appendix A (:func:`grid_protocol`, :func:`run_protocol_of`);
- Figure 1: the classes' separation per feature space (:func:`feature_space_name`, :func:`class_separation`) and
  what classes a feature space ignores would score (:func:`separation_chance`);
- Figure 2: the generalization gap against *P* (:func:`linear_fit`, :func:`label_noise_fits`,
  :func:`input_noise_rises`, :func:`input_noise_difference`) and the noise of a difference of gaps
  (:func:`gap_difference_se`);
- Figures 3 and 6: where high cosine similarity sets in (:func:`grid_layer_metrics`, :func:`onset_layer`,
  :func:`onset_table`, :func:`onset_trends`, :func:`mean_onset`, :func:`early_late_cosine`) and how small the early
  layers' values are (:func:`early_cosine_ratio`);
- Figure 4: how one-sided the sample sets are (:func:`share_polarized`, :func:`corrupted_share`);
- Figures 5 and 7: polarization per layer against its chance level (:func:`mixed_levels`,
  :func:`share_above_chance`, :func:`polarization_halves`, :func:`later_more_polarized`,
  :func:`lower_early_than_gaussian`).

Frames of the grid (:func:`selected_networks`, :func:`grid_layer_metrics`) name data sets and noise types as the
chapter shows them (:data:`DATASET_NAMES`, :data:`NOISE_NAMES`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from lib.data import SPLIT_SIZES
from lib.verdicts import Protocol, all_fitted, binomial_se, compare_runs
from lib.studies.theunissen2019.probes import hidden_layers, run_layer_metrics
from lib.studies.theunissen2019.protocol import theunissen_config
from lib.train import RunConfig

NOISE_NAMES = {"label_noise": "label corruption", "gaussian_input": "Gaussian input corruption",
               "structured_input": "structured input corruption"}  # Appendix B, Algorithms 1-3
DATASET_NAMES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}
INPUT_NOISES = ("gaussian_input", "structured_input")


# --- the runs ---------------------------------------------------------------------------------------------------

def grid_settings(P) -> list[tuple[str, str, float]]:
    """Every (data set, noise type, *P*) of the chapter's grid (Figures 2-3, 5-7), data set first."""
    return [(d, noise, p) for d in P.datasets for noise in P.noise_types for p in P.corruption_levels]


def grid_configs(P, settings: Sequence[tuple[str, str, float]]) -> list[RunConfig]:
    """The distinct runs of ``settings`` (Appendix A, :func:`theunissen_config`), in order of first appearance:
    *P* = 0 is one clean run for every noise type."""
    return list(dict.fromkeys(theunissen_config(P, *s) for s in settings))


def selected_networks(trained: pd.DataFrame, settings: Sequence[tuple[str, str, float]], P) -> pd.DataFrame:
    """The network the paper analyses for each setting: of the initializations tried, the best fit of the training
    set (``trained`` is :func:`lib.runs.run_best_of` of :func:`grid_configs`, whose ``setting`` indexes them).

    One row per setting (a clean run repeated under each noise type): ``dataset``, ``noise`` (as the chapter shows
    them), ``P``, ``config``, ``train_acc`` (on the noisy training set), ``eval_acc`` (clean evaluation set),
    ``epochs``, ``seed`` and ``gap`` = ``train_acc − eval_acc``, the generalization gap of Figure 2."""
    configs = grid_configs(P, settings)
    best = trained[trained.best].set_index("setting")
    rows = []
    for d, noise, p in settings:
        row = best.loc[configs.index(theunissen_config(P, d, noise, p))]
        rows.append(dict(dataset=DATASET_NAMES[d], noise=NOISE_NAMES[noise], P=p, config=row.config,
                         train_acc=row.final_train_acc, eval_acc=row.final_test_acc, epochs=row.epochs, seed=row.seed))
    return pd.DataFrame(rows).assign(gap=lambda f: f.train_acc - f.eval_acc)


def figure1_config(P) -> RunConfig:
    """Figure 1's run: a small MLP (``P.figure1``) fitting 100 random 50-dimensional vectors in 5 classes, trained as
    Appendix A trains the grid (Adam, mean squared error on one-hot targets, no regularization)."""
    f1 = P.figure1
    return RunConfig(dataset="random-vectors", preprocessing="none", model=f1.model, init=P.init,
                     optimizer="adam", lr=f1.lr, lr_decay=1.0, batch_size=P.batch_size, loss="mse",
                     max_epochs=f1.max_epochs, stop_train_acc=f1.stop_train_acc, test_every=1000)


def figure4_config(P) -> RunConfig:
    """Figure 4's run: the smaller MLP of ``P.figure4`` on its data set with structured input corruption
    (Algorithm 3), otherwise Appendix A's protocol."""
    f4 = P.figure4
    return theunissen_config(P, f4.dataset, "structured_input", f4.corruption, model=f4.model, n_train=f4.n_train,
                             max_epochs=f4.max_epochs, stop_train_acc=f4.stop_train_acc)


def fitted_all(frame: pd.DataFrame, threshold: float, what: str):
    """The precondition of every claim about a set of networks: each fitted its noisy training set (the lowest
    ``train_acc`` of ``frame`` reaches ``threshold``), as the paper's networks do. An empty ``frame`` fails it."""
    return all_fitted(frame.train_acc, threshold,
                      f"every {what} fitted its noisy training set (training accuracy ≥ {threshold:.0%})")


def _converged(frame: pd.DataFrame, stop: float | None, column: str) -> bool:
    return stop is not None and len(frame) > 0 and bool((frame[column] >= stop).all())


def grid_protocol(P, paper, results: pd.DataFrame) -> Protocol:
    """How the grid's networks (``results``, :func:`selected_networks`) were trained against Appendix A (``paper``:
    the chapter's parameters at ``paper`` scale): :func:`lib.verdicts.compare_runs` of :func:`theunissen_config` at
    both, on the 55,000 / 10,000 split. The grid *converged* when every selected network reached the stopping rule
    (Appendix A has none: it trains 400 epochs, so stopping at a fit stays a departure). Fewer initializations than
    the paper's are documented as equivalent only when every selected network fits every training label: the paper
    keeps the best fit of its initializations, and none can fit better than all labels."""
    dataset, noise = P.datasets[0], P.noise_types[0]
    ours, theirs = theunissen_config(P, dataset, noise, 0.0), theunissen_config(paper, dataset, noise, 0.0)
    equivalent = {}
    if len(P.seeds) < len(paper.seeds) and len(results) and bool((results.train_acc >= 1.0).all()):
        equivalent["seeds"] = ("every selected network fits all of its training labels, and the paper keeps the best "
                               "fit of its initializations: no other initialization could be selected")
    return compare_runs(ours, theirs, len(P.seeds), len(paper.seeds), train_total=SPLIT_SIZES["theunissen"][0],
                        test_total=SPLIT_SIZES["theunissen"][1], equivalent=equivalent,
                        converged=_converged(results, P.stop_train_acc, "train_acc"))


def run_protocol_of(ours, theirs, run: pd.Series, n_seeds: int, n_seeds_paper: int, train_total: int,
                    test_total: int) -> Protocol:
    """:func:`lib.verdicts.compare_runs` of one selected run (Figure 1's or Figure 4's: ``run`` is its row of
    :func:`lib.runs.run_best_of`, with ``final_train_acc``) of configuration ``ours`` against the paper's ``theirs``;
    it *converged* when it reached its configuration's stopping rule."""
    converged = ours.stop_train_acc is not None and float(run.final_train_acc) >= ours.stop_train_acc
    return compare_runs(ours, theirs, n_seeds, n_seeds_paper, train_total=train_total, test_total=test_total,
                        converged=converged)


# --- Figure 1 ---------------------------------------------------------------------------------------------------

def feature_space_name(layer: str) -> str:
    """How Figure 1 names a layer of :func:`~lib.studies.theunissen2019.probes.layer_projections`: ``input``,
    ``hidden 1`` … (``fc1`` …), ``output``."""
    return layer if layer in ("input", "output") else f"hidden {layer[2:]}"


def class_separation(projection: pd.DataFrame) -> pd.Series:
    """The between-class share of variance of each feature space (1 = every class collapsed onto a point), input
    first, indexed by ``feature space`` (a column of ``projection``, e.g. from :func:`feature_space_name`)."""
    return projection.groupby("feature space", sort=False).class_separation.first()


@torch.no_grad()
def separation_chance(model: torch.nn.Module, x: torch.Tensor, labels: torch.Tensor, permutations: int = 1000,
                      quantile: float = 0.99, seed: int = 0) -> pd.Series:
    """What a feature space scores when it ignores the classes: per feature space of ``model`` (input, each hidden
    layer, output; named by :func:`feature_space_name`), the ``quantile`` of the between-class share of variance
    (:func:`~lib.studies.theunissen2019.probes.between_class_variance_share`) over ``permutations`` random
    reassignments of ``labels`` to the samples (class sizes kept). A share above it is a grouping by class that a
    random partition of the samples reaches less than ``1 - quantile`` of the time."""
    y = torch.as_tensor(labels).to(torch.int64)
    classes = torch.unique(y)
    generator = torch.Generator().manual_seed(seed)
    shuffled = torch.stack([y[torch.randperm(len(y), generator=generator)] for _ in range(permutations)])
    onehot = (shuffled.unsqueeze(-1) == classes).to(torch.float64)  # [permutations, n, K]
    sizes = onehot.sum(dim=1)  # [permutations, K]: the same for every permutation
    outputs = model.eval().layer_outputs(torch.as_tensor(x).float())
    chance = {}
    for name in ["input", *hidden_layers(model), "output"]:
        features = outputs[name].flatten(1).to(torch.float64)
        centred = features - features.mean(dim=0)
        total = float((centred**2).sum())
        sums = torch.einsum("bnk,nd->bkd", onehot, centred)  # per permutation, each class's sum of centred features
        between = ((sums**2).sum(dim=-1) / sizes).sum(dim=-1)
        share = between / total if total > 0 else torch.full((permutations,), math.nan, dtype=torch.float64)
        chance[feature_space_name(name)] = float(torch.quantile(share, quantile))
    return pd.Series(chance, name="chance", dtype=float)


# --- Figure 2 ---------------------------------------------------------------------------------------------------

def linear_fit(frame: pd.DataFrame) -> tuple[float, float]:
    """Least-squares line of ``gap`` against ``P`` (columns of ``frame``): its slope and R², the share of the gap's
    variance the line explains (Figure 2: "almost linear" in the amount of label noise)."""
    slope, intercept = np.polyfit(frame.P, frame.gap, 1)
    residual = frame.gap - (slope * frame.P + intercept)
    r2 = 1 - (residual**2).sum() / ((frame.gap - frame.gap.mean()) ** 2).sum()
    return slope, r2


def label_noise_fits(results: pd.DataFrame) -> pd.DataFrame:
    """Per data set (in order of appearance), the label-noise curve of Figure 2: ``slope`` and ``r2`` of
    :func:`linear_fit`, the gap at the first (``gap_first``) and last (``gap_last``) level and that level (``P_last``).
    ``results`` is :func:`selected_networks`. A data set without label-noise networks has no row (a grid without label
    noise gives an empty frame with these columns)."""
    rows = []
    for dataset, part in results.groupby("dataset", sort=False):
        label = part[part.noise == NOISE_NAMES["label_noise"]]
        if label.empty:
            continue
        slope, r2 = linear_fit(label)
        rows.append(dict(dataset=dataset, slope=slope, r2=r2, gap_first=label.gap.iloc[0],
                         gap_last=label.gap.iloc[-1], P_last=label.P.iloc[-1]))
    columns = ["dataset", "slope", "r2", "gap_first", "gap_last", "P_last"]
    return pd.DataFrame(rows, columns=columns).set_index("dataset")


def input_noise_rises(results: pd.DataFrame, tolerance: float = 0.05, low: float = 0.5) -> pd.DataFrame:
    """Per (data set, input noise), how far Figure 2's gap rises over its value at *P* = 0.

    Columns: ``harmless_until``, the largest *P* up to which the gap stays within ``tolerance`` of *P* = 0 at every
    level; ``below_one``, the largest level 0 < *P* < 1 (the largest level where there is none); ``rise_below_one``
    there, and label noise's rise at the same level (``label_rise_below_one``); ``rise_at_one`` (NaN without a level
    *P* = 1); ``max_low_rise``, the largest rise over 0 < *P* ≤ ``low`` (NaN without such a level).

    Only the (data set, input noise) curves ``results`` holds have a row (a grid without input noise gives an empty
    frame with these columns); ``label_rise_below_one`` is NaN where the data set has no label-noise curve, or none at
    that level."""
    rows = []
    for dataset, part in results.groupby("dataset", sort=False):
        label = part[part.noise == NOISE_NAMES["label_noise"]].set_index("P").gap
        label_rise = label - label.iloc[0] if not label.empty else label
        for noise in INPUT_NOISES:
            curve = part[part.noise == NOISE_NAMES[noise]].set_index("P").gap
            if curve.empty:
                continue
            rise = curve - curve.iloc[0]
            harmless = [p for p in curve.index if (rise.loc[:p] <= tolerance).all()]
            below_one = max([p for p in curve.index if 0 < p < 1], default=curve.index.max())
            rows.append(dict(dataset=dataset, noise=NOISE_NAMES[noise], harmless_until=max(harmless),
                             below_one=below_one, rise_below_one=rise.loc[below_one],
                             label_rise_below_one=float(label_rise.get(below_one, float("nan"))),
                             rise_at_one=rise.loc[1.0] if 1.0 in rise.index else float("nan"),
                             max_low_rise=float(rise[(rise.index > 0) & (rise.index <= low)].max())))
    columns = ["dataset", "noise", "harmless_until", "below_one", "rise_below_one", "label_rise_below_one",
               "rise_at_one", "max_low_rise"]
    return pd.DataFrame(rows, columns=columns).set_index(["dataset", "noise"])


def input_noise_difference(results: pd.DataFrame) -> pd.Series:
    """Per data set, the mean |difference| between the Gaussian and the structured input-noise gaps over *P* > 0
    (Figure 2: the two affect generalization alike; at *P* = 0 both are the same clean run). NaN for a data set
    without both input-noise curves (or without a level *P* > 0); an empty Series for empty ``results``."""
    differences = {}
    for dataset, part in results.groupby("dataset", sort=False):
        gauss = part[part.noise == NOISE_NAMES["gaussian_input"]].set_index("P").gap
        struct = part[part.noise == NOISE_NAMES["structured_input"]].set_index("P").gap
        difference = (gauss - struct).abs()[lambda d: d.index > 0]
        differences[dataset] = float(difference.mean())
    return pd.Series(differences, name="difference", dtype=float)


def gap_difference_se(frame: pd.DataFrame, n_eval: int) -> float:
    """The standard error of the difference of two generalization gaps among the networks of ``frame`` (rows of
    :func:`selected_networks`), at its largest: a gap's training accuracy is exact (measured on the very training set
    the network fitted), its evaluation accuracy binomial on ``n_eval`` images, so the difference of two gaps has the
    standard error of the difference of two evaluation accuracies, taken at the evaluation accuracy of ``frame``
    nearest 50% for both (NaN for an empty ``frame``)."""
    if frame.empty:
        return float("nan")
    return math.sqrt(2) * max(binomial_se(float(a), n_eval) for a in frame.eval_acc)


# --- Figures 3 and 6 --------------------------------------------------------------------------------------------

def grid_layer_metrics(results: pd.DataFrame, chunk_size: int) -> pd.DataFrame:
    """:func:`~lib.studies.theunissen2019.probes.run_layer_metrics` (Eqs. 4-6) of every network of ``results``
    (:func:`selected_networks`) over its training set, one row per (network, hidden layer), with the network's
    ``dataset``, ``noise`` and ``P``."""
    frames = [run_layer_metrics(row.config, chunk_size=chunk_size).assign(dataset=row.dataset, noise=row.noise, P=row.P)
              for _, row in results.iterrows()]
    return pd.concat(frames, ignore_index=True)


def onset_layer(layers: pd.DataFrame) -> int:
    """The *onset* of high cosine similarity in one network (Figures 3 and 6): the first hidden layer (1 …) whose
    mean cosine (Eq. 4) reaches half of the way from the network's smallest to its largest layer value."""
    values = layers.sort_values("depth").mean_cosine.to_numpy()
    threshold = values.min() + 0.5 * (values.max() - values.min())
    return int(np.argmax(values >= threshold)) + 1


def onset_table(layers: pd.DataFrame) -> pd.DataFrame:
    """:func:`onset_layer` of every network of :func:`grid_layer_metrics`: rows (data set, noise), columns *P*."""
    onsets = layers.groupby(["dataset", "noise", "P"], sort=False).apply(onset_layer, include_groups=False)
    return onsets.rename("onset").unstack("P")


def onset_trends(onsets: pd.DataFrame) -> pd.DataFrame:
    """Per row of :func:`onset_table`: the onset at *P* = 0 (``clean``), the mean onset over *P* > 0
    (``noisy_mean``), whether that is deeper (``deeper``, the paper's "deeper into the network" with noise), and the
    rank correlation of the onset with *P* (``rho``; NaN where the onset is the same layer at every *P*)."""
    rows = []
    for (dataset, noise), row in onsets.iterrows():
        noisy = row[[p for p in row.index if p > 0]]
        rho = (pd.Series(row.values).corr(pd.Series(row.index), method="spearman") if row.nunique() > 1
               else float("nan"))
        rows.append(dict(dataset=dataset, noise=noise, clean=row.loc[0.0], noisy_mean=noisy.mean(),
                         deeper=bool(noisy.mean() > row.loc[0.0]), rho=rho))
    return pd.DataFrame(rows).set_index(["dataset", "noise"])


def mean_onset(onsets: pd.DataFrame) -> pd.Series:
    """Per data set, the mean over its noise types of the mean onset over *P* (Figure 6: later on Fashion-MNIST).
    Only the data sets of ``onsets`` have a value: read a data set the grid may lack with ``.get(name, nan)``."""
    datasets = list(dict.fromkeys(onsets.index.get_level_values("dataset")))
    return pd.Series({d: onsets.loc[d].mean(axis=1).mean() for d in datasets}, dtype=float)


def early_late_cosine(layers: pd.DataFrame, early: int = 3, late: int = 4) -> tuple[pd.Series, pd.Series]:
    """Per data set, the mean cosine similarity (Eq. 4) of the first ``early`` and of the last ``late`` hidden layers
    over every network of :func:`grid_layer_metrics` (Figures 3 and 6: "very small" in early layers)."""
    first = layers[layers.depth <= early].groupby("dataset").mean_cosine.mean()
    last = layers[layers.depth >= layers.depth.max() - (late - 1)].groupby("dataset").mean_cosine.mean()
    return first, last


def early_cosine_ratio(layers: pd.DataFrame, early: int = 3,
                       network: Sequence[str] = ("dataset", "noise", "P")) -> pd.Series:
    """Per network of :func:`grid_layer_metrics` (the columns ``network`` name one), the largest mean cosine
    similarity (Eq. 4) of its first ``early`` hidden layers over its largest layer value: how small the early layers'
    values are on the scale of that network's own (Figures 3 and 6: "very small cosine similarities ... in the
    earlier layers of all models under any noise conditions"). 1 when an early layer is the network's largest."""
    def ratio(part: pd.DataFrame) -> float:
        return float(part[part.depth <= early].mean_cosine.max() / part.mean_cosine.max())

    return layers.groupby(list(network), sort=False).apply(ratio, include_groups=False).rename("early_ratio")


# --- Figure 4 ---------------------------------------------------------------------------------------------------

def share_polarized(polarization: torch.Tensor, threshold: float = 0.6) -> float:
    """The share of defined (node, class) polarizations (Eq. 5, NaN = empty sample set left out) at least
    ``threshold``: 0.6 is a sample set at least 80% true or at least 80% corrupted."""
    return float((polarization[~polarization.isnan()] >= threshold).float().mean())


def corrupted_share(composition: pd.DataFrame) -> pd.Series:
    """The corrupted share of each (node, class) sample set of
    :func:`~lib.studies.theunissen2019.probes.sample_set_composition` (Figure 4's red part of a bar; NaN where empty)."""
    return composition.n_corrupted / (composition.n_true + composition.n_corrupted)


# --- Figures 5 and 7 --------------------------------------------------------------------------------------------

def mixed_levels(layers: pd.DataFrame) -> pd.DataFrame:
    """The layers of :func:`grid_layer_metrics` whose networks saw true and corrupted samples (0 < *P* < 1: at
    *P* = 0, and at *P* = 1 for input noise, every sample set is pure and polarization is 1 by definition), with
    ``above chance`` = mean polarization − its chance level."""
    interior = layers[(layers.P > 0) & (layers.P < 1)].copy()
    interior["above chance"] = interior.mean_polarization - interior.chance_polarization
    return interior


def share_above_chance(layers: pd.DataFrame) -> float:
    """The share of (layer, setting) rows whose mean polarization (Eq. 6) is above its chance level."""
    return float((layers.mean_polarization > layers.chance_polarization).mean())


def polarization_halves(layers: pd.DataFrame, index: Sequence[str] = ("dataset", "noise"),
                        parts: tuple[str, str] = ("early layers", "late layers")) -> pd.DataFrame:
    """Mean and chance polarization (Eq. 6) over the earlier and the later half of the hidden layers (depth up to
    half of the deepest, and the rest), one row per ``index``: columns ``mean (early layers)``,
    ``chance (late layers)``, … (named by ``parts``), as Figures 5 and 7 are read."""
    half = layers.depth.max() // 2
    summary = layers.assign(part=np.where(layers.depth <= half, *parts)).pivot_table(
        index=list(index), columns="part", values=["mean_polarization", "chance_polarization"])
    summary.columns = [f"{what.replace('_polarization', '')} ({part})" for what, part in summary.columns]
    return summary


def later_more_polarized(summary: pd.DataFrame, parts: tuple[str, str] = ("early layers", "late layers")) -> pd.Series:
    """Per row of :func:`polarization_halves`, whether the later half is more polarized than the earlier half."""
    early, late = (f"mean ({part})" for part in parts)
    return (summary[late] > summary[early]).rename("later")


def lower_early_than_gaussian(summary: pd.DataFrame, noises: Mapping[str, str] = NOISE_NAMES) -> pd.Series:
    """Per (data set, label or structured corruption), whether its earlier half of the layers is less polarized than
    under Gaussian input corruption (Section 4.3: class-related input structure lowers early polarization).
    ``summary`` is :func:`polarization_halves` with the chapter's names of the noises (``noises``). Only the pairs
    whose data set has both that noise and Gaussian input corruption have a row (a grid without Gaussian input
    corruption gives an empty Series)."""
    early = summary["mean (early layers)"]
    rows = {}
    for dataset in summary.index.get_level_values(0).unique():
        gaussian = (dataset, noises["gaussian_input"])
        for noise in ("label_noise", "structured_input"):
            if gaussian not in early.index or (dataset, noises[noise]) not in early.index:
                continue
            rows[(dataset, noises[noise])] = bool(early.loc[(dataset, noises[noise])] < early.loc[gaussian])
    return pd.Series(rows, name="lower", dtype=bool)
