"""Cross-paper analyses: each paper's probe applied to the other paper's networks.

Two papers look inside networks that fit noisy training sets, with different instruments:

- Theunissen, Davel & Barnard, "Insights regarding overfitting on noise in deep learning"
  (FAIR 2019): per hidden layer, the mean cosine similarity between a node's weights and the
  activations of its sample set (Eq. 4) and the polarization of sample sets between true and
  corrupted samples (Eqs. 5-6), in :mod:`lib.studies.theunissen2019.probes`;
- "Decoding generalization from memorization in deep neural networks" (the MASC paper): per
  layer, the test accuracy of the Minimum Angle Subspace Classifier (appendix A.7, Algorithms
  1 and 3) fitted on the layer's outputs for the training set (sections 4-5), in :mod:`lib.studies.masc.decoding`.

This module collects the networks of both chapters in one frame (one row per trained network,
built with :mod:`lib.studies.protocols` so that the runs are exactly the chapters' own and come from the
run cache), applies both probes to every network, and joins them per (network, hidden layer).
The join answers the question neither paper asks: does a layer's polarization or cosine
similarity predict whether MASC in that layer beats the network's own test accuracy?

Every frame has a ``network`` column (an integer id, unique across both papers' networks).

The chapter's questions, each computed here: (1) MASC on Theunissen et al.'s networks (:func:`decode_both`,
:func:`masc_gaps`, :func:`best_hidden_layer`, :func:`accuracy_curves`, :func:`true_at_least_training`);
(2) Theunissen et al.'s metrics on the MASC paper's MLP (:func:`network_layer_metrics`,
:func:`metrics_with_networks`, :func:`mean_over_seeds`, :func:`halves_by_degree`, :func:`first_last_cosine`,
:func:`most_polarized_layer`, :func:`label_noise_depth_curves`); (3) whether a layer metric predicts where MASC
beats the network (:func:`join_layers`, :func:`rank_correlation`, :func:`correlations`,
:func:`most_polarized_is_best`). Its claims are our extensions: they compare MASC margins beyond noise
(:func:`beyond_noise`) and say how the networks were trained against each paper's protocol
(:func:`theunissen_protocol`, :func:`masc_protocol`). The chapter's parameter schema is at the end of the file.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated

import numpy as np
import pandas as pd
from scipy import stats

from lib.studies.protocols import masc_config, theunissen_config
from lib.runs import run_best_of, run_grid
from lib.schemas import (ChapterParams, DatasetName, Fraction, NoiseType, NonEmpty, PositiveInt, Probability,
                         Seed, Threads, schema)
from lib.data import SIZES
from lib.studies.masc import decoding as decode
from lib.studies.theunissen2019.noise import grid_protocol
from lib.studies.theunissen2019.probes import run_layer_metrics
from lib.verdicts import Protocol, compare_runs, difference_se

LABEL_NOISE = ("label_noise", "partial_labels", "random_labels")  # randomizations that change labels, not inputs
NETWORK_COLUMNS = ["network", "architecture", "dataset", "noise", "p", "seed", "train_acc", "test_acc", "epochs", "config",
                   "key", "cached", "train_seconds"]  # the last three: the run cache's (lib.book.opening counts them)


def theunissen_networks(T: ChapterParams, datasets: Sequence[str], noise_types: Sequence[str], levels: Sequence[float],
                        architecture: str = "Theunissen 10x512") -> pd.DataFrame:
    """The network Theunissen et al.'s chapter analyses for every (data set, noise type, level).

    ``T`` is that chapter's parameters (``load_params("theunissen-noise", scale)``). As in the
    paper's Appendix A, each setting is trained from the initializations ``T.seeds`` (stopping
    at the first that fits when ``T.enough`` is set) and the best fit of the training set is
    kept (:func:`lib.runs.run_best_of`). One row per setting, columns :data:`NETWORK_COLUMNS`
    (without ``network``); ``p = 0`` appears once per noise type, all the same clean run.
    """
    settings = [(d, noise, float(p)) for d in datasets for noise in noise_types for p in levels]
    unique = list(dict.fromkeys(theunissen_config(T, *s) for s in settings))
    trained = run_best_of(unique, T.seeds, enough=T.enough)
    best = trained[trained.best].set_index("setting")
    rows = []
    for d, noise, p in settings:
        row = best.loc[unique.index(theunissen_config(T, d, noise, p))]
        rows.append(dict(architecture=architecture, dataset=d, noise=noise, p=p, seed=int(row.seed),
                         train_acc=row.final_train_acc, test_acc=row.final_test_acc, epochs=int(row.epochs),
                         config=row.config, key=row.key, cached=bool(row.cached), train_seconds=row.train_seconds))
    return pd.DataFrame(rows)


def masc_networks(M: ChapterParams, model: str, levels: Sequence[float], seeds: Sequence[int] | None = None,
                  architecture: str | None = None) -> pd.DataFrame:
    """The MASC chapter's runs of model entry ``model`` (e.g. ``"MLP-MNIST"``), one row per (level, seed).

    ``M`` is that chapter's parameters (``load_params("masc-decoding", scale)``); labels are
    redrawn uniformly with probability ``p`` (section 3.1), so ``noise`` is ``partial_labels``.
    """
    spec = {**M.models, **M.extra_models}[model]
    seeds = list(M.seeds if seeds is None else seeds)
    keys = [(float(p), seed) for p in levels for seed in seeds]
    configs = [masc_config(M, spec, p, seed) for p, seed in keys]
    summary = run_grid(configs)
    return pd.DataFrame([dict(architecture=architecture or model, dataset=spec["dataset"], noise="partial_labels", p=p,
                              seed=seed, train_acc=row.final_train_acc, test_acc=row.final_test_acc,
                              epochs=int(row.epochs), config=config, key=row.key, cached=bool(row.cached),
                              train_seconds=row.train_seconds)
                         for (p, seed), config, (_, row) in zip(keys, configs, summary.iterrows())])


def combine(*frames: pd.DataFrame) -> pd.DataFrame:
    """Networks of several papers in one frame, numbered ``network`` = 0, 1, …"""
    frame = pd.concat(frames, ignore_index=True)
    frame.insert(0, "network", np.arange(len(frame)))
    return frame[NETWORK_COLUMNS]


def labels_corrupted(noise: str, p: float) -> bool:
    """Whether the network was trained on labels that differ from the true ones (label noise with p > 0)."""
    return noise in LABEL_NOISE and p > 0


def polarization_defined(noise: str, p: float) -> bool:
    """Whether a training set corrupted by ``noise`` at level ``p`` holds both true and corrupted samples.

    Theunissen et al.'s polarization (Eq. 5) compares the two within sample sets, so it means
    something only then: ``0 < p < 1``, and also ``p = 1`` for labels redrawn uniformly over all
    classes (``partial_labels``, the MASC paper's corruption), which leave about 1/K unchanged.
    """
    return 0 < p < 1 or (noise == "partial_labels" and p == 1)


def decode_networks(networks: pd.DataFrame, variances: Sequence[float] = (0.99,), variance: float = 0.99) -> pd.DataFrame:
    """MASC per probed layer of every network (MASC paper, sections 4-5), at explained variance ``variance``.

    Subspaces are fitted with the labels each network was trained on (``subspace = "corrupted"``)
    and, where those differ from the true labels (label noise), also with the true labels
    (``"true"``). ``variances`` are the variances decoded (and cached) at once; pass the MASC
    chapter's list for its variance model so its cached decoding is reused. Returns one row per
    (network, layer, subspace, set) with the columns of :func:`lib.studies.masc.decoding.decode_run` and ``network``.
    """
    if variance not in variances:
        raise ValueError(f"variance {variance} is not among the decoded variances {tuple(variances)}")
    jobs = [(dict(network=int(r.network)), r.config,
             dict(subspaces=("corrupted", "true") if labels_corrupted(r.noise, r.p) else ("corrupted",),
                  variances=tuple(variances)))
            for r in networks.itertuples()]
    accuracy, _ = decode.decode_grid(jobs)  # the id replaces decode's "network" column, "trained" in every row
    return accuracy[accuracy.variance == variance].reset_index(drop=True)


def masc_gaps(decoded: pd.DataFrame, networks: pd.DataFrame) -> pd.DataFrame:
    """MASC test accuracy per (network, layer, subspace) beside the network's own test accuracy.

    ``gap`` = MASC test accuracy in the layer − the network's test accuracy: positive where the
    layer holds a better classifier than the network's output (the MASC paper's Figures 1-2).
    """
    test = decoded[decoded.set == "test"][["network", "layer", "layer_name", "layer_index", "subspace", "accuracy"]]
    frame = test.merge(networks.drop(columns="config"), on="network", validate="many_to_one")
    return frame.rename(columns={"accuracy": "masc_test_acc"}).assign(gap=lambda f: f.masc_test_acc - f.test_acc)


def best_hidden_layer(gaps: pd.DataFrame, subspace: str = "corrupted") -> pd.DataFrame:
    """Per network, the hidden layer (input excluded) where MASC tests best, with ``input_acc`` (MASC on the input).

    One row per network that has ``subspace`` decodings; ``beats_network`` is ``gap > 0``.
    """
    part = gaps[gaps.subspace == subspace]
    hidden = part[part.layer != "input"]
    best = hidden.loc[hidden.groupby("network").masc_test_acc.idxmax()].reset_index(drop=True)
    inputs = part[part.layer == "input"].set_index("network").masc_test_acc.rename("input_acc")
    return best.join(inputs, on="network").assign(beats_network=lambda f: f.gap > 0)


def network_layer_metrics(networks: pd.DataFrame, chunk_size: int = 4096) -> pd.DataFrame:
    """Theunissen et al.'s per-layer metrics (Eqs. 4-6, :func:`lib.studies.theunissen2019.probes.layer_metrics`) of every network.

    Computed over each network's own training set, classes by true label; polarization is only
    defined when the training set holds both true and corrupted samples, so for networks with
    none (``p = 0``, or ``p = 1`` with input noise) it comes out as 1 and should be left out.
    One row per (network, hidden layer) with ``above_chance`` = polarization − chance polarization.
    """
    frames = [run_layer_metrics(r.config, chunk_size=chunk_size).assign(network=int(r.network))
              for r in networks.itertuples()]
    frame = pd.concat(frames, ignore_index=True)
    return frame.assign(above_chance=frame.mean_polarization - frame.chance_polarization)


def join_layers(gaps: pd.DataFrame, metrics: pd.DataFrame, subspace: str = "corrupted") -> pd.DataFrame:
    """One row per (network, hidden layer): the MASC gap (with ``subspace`` labels) beside the layer's metrics.

    ``relative_depth`` is the hidden layer's depth / the network's number of hidden layers (0-1],
    so that networks of different depths share an axis.
    """
    part = gaps[(gaps.subspace == subspace) & (gaps.layer != "input")]
    frame = part.merge(metrics, on=["network", "layer"], validate="one_to_one")
    n_hidden = frame.groupby("network").depth.transform("max")
    return frame.assign(relative_depth=frame.depth / n_hidden)


def rank_correlation(frame: pd.DataFrame, x: str, y: str, within: str | None = None) -> dict:
    """Spearman's rank correlation of ``y`` with ``x``, pooled or within groups.

    Pooled (``within=None``): ``rho`` over all rows, its two-sided ``p_value`` (which treats the
    rows as independent, which layers of one network are not) and ``n`` rows. Within groups
    (e.g. ``within="network"``: across the layers of each network, the question "does the metric
    say *which layer* decodes best?"): ``rho`` is the median of the groups' correlations,
    ``n_groups``, ``positive`` and ``negative`` (how many groups have rho > 0, rho < 0) and ``p_value`` of a
    two-sided sign test of positive against negative groups. Groups (or data) with a constant column give no
    correlation and are left out. NaN rows are dropped.
    """
    data = frame[[x, y] + ([within] if within else [])].dropna()
    if within is None:
        if len(data) < 3 or data[x].nunique() < 2 or data[y].nunique() < 2:
            return dict(rho=math.nan, p_value=math.nan, n=len(data))
        result = stats.spearmanr(data[x], data[y])
        return dict(rho=float(result.statistic), p_value=float(result.pvalue), n=len(data))
    rhos = []
    for _, group in data.groupby(within):
        if len(group) >= 3 and group[x].nunique() > 1 and group[y].nunique() > 1:
            rhos.append(float(stats.spearmanr(group[x], group[y]).statistic))
    rhos = np.array(rhos)
    positive, negative = int((rhos > 0).sum()), int((rhos < 0).sum())
    p_value = float(stats.binomtest(positive, positive + negative).pvalue) if positive + negative else math.nan
    return dict(rho=float(np.median(rhos)) if len(rhos) else math.nan, p_value=p_value, n=int(len(data)),
                n_groups=int(len(rhos)), positive=positive, negative=negative)


def subset(chosen: Sequence | None, available: Sequence, what: str, scale: str) -> list:
    """``chosen`` (``None``: all of ``available``), which must be a subset of what the source chapter trains at
    ``scale``: the networks analysed here are that chapter's own, from the run cache, never new ones."""
    chosen = list(available if chosen is None else chosen)
    extra = sorted(set(chosen) - set(available))
    if extra:
        raise ValueError(f"{what} {extra} are not trained by the source chapter at scale {scale!r} ({list(available)})")
    return chosen


def mixed(frame: pd.DataFrame) -> pd.Series:
    """Per row (a network, or a layer of one), whether its training set holds true and corrupted samples
    (:func:`polarization_defined` of its ``noise`` and ``p``): the rows on which polarization means something."""
    return pd.Series([polarization_defined(n, p) for n, p in zip(frame.noise, frame.p)], index=frame.index,
                     dtype=bool)


def theunissen_protocol(T: ChapterParams, paper: ChapterParams, networks: pd.DataFrame) -> Protocol:
    """How Theunissen et al.'s networks of ``networks`` (the rows of :func:`theunissen_networks`) were trained against
    Appendix A (``paper``: that chapter's parameters at ``paper`` scale): that chapter's own
    :func:`lib.studies.theunissen2019.noise.grid_protocol`."""
    return grid_protocol(T, paper, networks)


def masc_protocol(M: ChapterParams, paper: ChapterParams, model: str, seeds: Sequence[int],
                  networks: pd.DataFrame) -> Protocol:
    """How the MASC chapter's runs of model entry ``model`` (``networks``: the rows of :func:`masc_networks`, from
    ``seeds``) were trained against the MASC paper's (``paper``: that chapter's parameters at ``paper`` scale, with its
    seeds): :func:`lib.verdicts.compare_runs` of :func:`lib.studies.protocols.masc_config` at both, on the data set's
    whole training and test sets; *converged* when every run reached its stopping rule."""
    spec, paper_spec = ({**P.models, **P.extra_models}[model] for P in (M, paper))
    stop = spec["stop_train_acc"]
    converged = stop is not None and len(networks) > 0 and bool((networks.train_acc >= stop).all())
    totals = SIZES[spec["dataset"]]
    return compare_runs(masc_config(M, spec, 0.0, seeds[0]), masc_config(paper, paper_spec, 0.0, paper.seeds[0]),
                        len(seeds), len(paper.seeds), train_total=totals[0], test_total=totals[1], converged=converged)


def beyond_noise(better: pd.Series, worse: pd.Series, n_test: int) -> pd.Series:
    """Whether each accuracy of ``better`` exceeds its counterpart in ``worse`` (aligned Series of fractions, both
    measured on the same ``n_test`` test images) by more than 2 standard errors of the difference (binomial, taken as
    independent: on one test set the two are positively correlated, so this is the side of caution)."""
    margins = [b - w > 2 * difference_se(b, n_test, w, n_test) for b, w in zip(better, worse)]
    return pd.Series(margins, index=better.index, dtype=bool)


def unfitted(networks: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """The distinct trained networks (one per run ``key``: *P* = 0 is one run for every noise type) whose training
    accuracy stayed below ``threshold``: the claims on them are not tested."""
    return networks.drop_duplicates("key")[lambda f: f.train_acc < threshold]


# --- Question 1: MASC on Theunissen et al.'s networks -----------------------------------------------------------

def masc_variances(M: ChapterParams, model: str, variance: float) -> tuple[float, ...]:
    """The explained variances to decode the MASC chapter's ``model`` at: that chapter's whole list where ``model``
    is its variance model (so that its cached decodings are reused), else ``variance`` alone."""
    return tuple(M.variances) if model == M.variance_model else (variance,)


def decode_both(networks: pd.DataFrame, masc_architecture: str, variance: float,
                masc_decoded: Sequence[float]) -> pd.DataFrame:
    """:func:`decode_networks` of Theunissen et al.'s networks and of the MASC paper's MLP (the rows whose
    ``architecture`` is ``masc_architecture``, decoded at ``masc_decoded`` variances), at ``variance``, in one frame."""
    theirs = networks[networks.architecture != masc_architecture]
    masc = networks[networks.architecture == masc_architecture]
    return pd.concat([decode_networks(theirs, variance=variance),
                      decode_networks(masc, variances=masc_decoded, variance=variance)], ignore_index=True)


def accuracy_curves(best: pd.DataFrame, best_true: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """Figure S1's series, one row per (``keys``, series): the network's own test accuracy (``network``) and MASC's
    in its best hidden layer and on the input, with training-label and with true-label subspaces (the MASC paper's
    Figures 1-2). ``best`` and ``best_true`` are :func:`best_hidden_layer` with ``"corrupted"`` and ``"true"``; at
    *p* = 0 the training labels are the true labels, so the true-label series start from the same points."""
    keys = list(keys)
    true_curve = pd.concat([best[(best.p == 0) & best.noise.isin(best_true.noise.unique())], best_true])
    series = [(best, "test_acc", "network"), (best, "masc_test_acc", "MASC best layer, training labels"),
              (best, "input_acc", "MASC input, training labels"),
              (true_curve, "masc_test_acc", "MASC best layer, true labels"),
              (true_curve, "input_acc", "MASC input, true labels")]
    return pd.concat([frame[keys + [column]].rename(columns={column: "accuracy"}).assign(series=name)
                      for frame, column, name in series], ignore_index=True)


def true_at_least_training(best_true: pd.DataFrame, best: pd.DataFrame) -> pd.Series:
    """Per network with true-label decodings, whether MASC with true-label subspaces in its best hidden layer tests
    at least as well as with the training labels (the MASC paper's section 5), indexed by ``network``."""
    training = best.set_index("network").masc_test_acc.reindex(best_true.network)
    return best_true.set_index("network").masc_test_acc >= training


# --- Question 2: Theunissen et al.'s metrics on the MASC paper's MLP ---------------------------------------------

def metrics_with_networks(metrics: pd.DataFrame, gaps: pd.DataFrame, networks: pd.DataFrame) -> pd.DataFrame:
    """:func:`network_layer_metrics` with each layer's name (from :func:`masc_gaps`), its network's columns
    (:data:`NETWORK_COLUMNS` but ``config``) and ``mixed`` (:func:`mixed`)."""
    names = gaps[["network", "layer", "layer_name"]].drop_duplicates()
    frame = metrics.merge(names, on=["network", "layer"]).merge(networks.drop(columns="config"), on="network")
    frame["mixed"] = mixed(frame).to_numpy()
    return frame


def mean_over_seeds(metrics: pd.DataFrame) -> pd.DataFrame:
    """Mean, chance polarization and mean cosine per (``p``, layer) over the networks (seeds) of ``metrics``:
    Figure S3's values for the MASC paper's MLP."""
    columns = ["mean_polarization", "chance_polarization", "mean_cosine"]
    return metrics.groupby(["p", "depth", "layer_name"])[columns].mean().reset_index()


def halves_by_degree(by_layer: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Per degree ``p``, the mean polarization of the earlier and of the later half of the hidden layers (depth up
    to half of the deepest, and the rest) of :func:`mean_over_seeds` (Theunissen et al.: highest in later layers)."""
    half = by_layer.depth.max() // 2
    early = by_layer[by_layer.depth <= half].groupby("p").mean_polarization.mean()
    late = by_layer[by_layer.depth > half].groupby("p").mean_polarization.mean()
    return early, late


def first_last_cosine(by_layer: pd.DataFrame) -> tuple[float, float]:
    """The mean cosine similarity (Eq. 4) of the first and of the last hidden layer, over the rows (degrees) of
    :func:`mean_over_seeds` (Theunissen et al.: very small in early layers)."""
    return (by_layer[by_layer.depth == 1].mean_cosine.mean(),
            by_layer[by_layer.depth == by_layer.depth.max()].mean_cosine.mean())


def most_polarized_layer(by_layer: pd.DataFrame) -> pd.Series:
    """Per degree ``p``, the name of the layer of :func:`mean_over_seeds` with the highest mean polarization."""
    return by_layer.loc[by_layer.groupby("p").mean_polarization.idxmax()].set_index("p").layer_name


def label_noise_depth_curves(metrics: pd.DataFrame) -> pd.DataFrame:
    """Figure S4's curves: under label noise, polarization above chance (``above_chance``) by relative depth (layer /
    the network's hidden layers), mean over networks per ``model`` (architecture, data set) and ``degree``
    (``p = …``). ``metrics`` is :func:`metrics_with_networks` (with ``data set`` named for the page)."""
    nets = metrics[metrics.mixed & metrics.noise.map(lambda n: labels_corrupted(n, 1.0))]
    nets = nets.assign(relative_depth=nets.depth / nets.groupby("network").depth.transform("max"),
                       model=nets.architecture + ", " + nets["data set"], degree=nets.p.map("p = {:g}".format))
    return nets.groupby(["model", "degree", "relative_depth"]).above_chance.mean().reset_index()


# --- Question 3: does a layer metric predict where MASC beats the network? --------------------------------------

def correlations(joined: pd.DataFrame, predictors: Sequence[str], group: str = "group",
                 everything: str = "all networks") -> tuple[dict, dict, dict]:
    """:func:`rank_correlation` of MASC's margin (``gap``) with each of ``predictors`` (columns of :func:`join_layers`),
    for all rows (under the name ``everything``) and per value of ``group``: ``pooled[g][predictor]`` over the rows,
    ``within[g][predictor]`` within networks, and ``depth[g]``, polarization against relative depth within networks."""
    groups = [(everything, joined)] + list(joined.groupby(group))
    pooled, within, depth = {}, {}, {}
    for name, part in groups:
        pooled[name] = {column: rank_correlation(part, column, "gap") for column in predictors}
        within[name] = {column: rank_correlation(part, column, "gap", within="network") for column in predictors}
        depth[name] = rank_correlation(part, "mean_polarization", "relative_depth", within="network")
    return pooled, within, depth


def most_polarized_is_best(joined: pd.DataFrame) -> pd.Series:
    """Per network of :func:`join_layers`, whether its most polarized hidden layer is the one where MASC's margin over
    the network is largest."""
    most_polarized = joined.loc[joined.groupby("network").mean_polarization.idxmax()].set_index("network").layer
    best = joined.loc[joined.groupby("network").gap.idxmax()].set_index("network").layer
    return most_polarized == best


# --- the chapter's parameter schema -----------------------------------------------------------------------------

@schema("synthesis")
class Synthesis(ChapterParams):
    """Cross-paper synthesis: MASC on Theunissen et al.'s networks and their layer metrics on MASC's MLP."""

    theunissen_datasets: Annotated[list[DatasetName], NonEmpty]
    theunissen_noise_types: Annotated[list[NoiseType], NonEmpty]
    theunissen_levels: Annotated[list[Probability], NonEmpty] | None
    masc_model: str
    masc_levels: Annotated[list[Probability], NonEmpty] | None
    masc_seeds: Annotated[list[Seed], NonEmpty] | None
    variance: Fraction
    probe_chunk: PositiveInt
    torch_threads: Threads | None
