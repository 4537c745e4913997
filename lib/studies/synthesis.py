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
built with :mod:`lib.protocols` so that the runs are exactly the chapters' own and come from the
run cache), applies both probes to every network, and joins them per (network, hidden layer).
The join answers the question neither paper asks: does a layer's polarization or cosine
similarity predict whether MASC in that layer beats the network's own test accuracy?

Every frame has a ``network`` column (an integer id, unique across both papers' networks).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from lib.studies.masc import decoding as decode
from lib.studies.theunissen2019.probes import run_layer_metrics
from lib.protocols import masc_config, theunissen_config
from lib.runs import run_best_of, run_grid
from typing import Annotated

from lib.schemas import (ChapterParams, DatasetName, Fraction, NoiseType, NonEmpty, PositiveInt, Probability,
                         Seed, schema)

LABEL_NOISE = ("label_noise", "partial_labels", "random_labels")  # randomizations that change labels, not inputs
NETWORK_COLUMNS = ["network", "architecture", "dataset", "noise", "p", "seed", "train_acc", "test_acc", "epochs", "config",
                   "key", "cached", "train_seconds"]  # the last three: the run cache's (lib.book.opening counts them)


def theunissen_networks(T: Mapping, datasets: Sequence[str], noise_types: Sequence[str], levels: Sequence[float],
                        architecture: str = "Theunissen 10x512") -> pd.DataFrame:
    """The network Theunissen et al.'s chapter analyses for every (data set, noise type, level).

    ``T`` is that chapter's parameters (``load_params("theunissen-noise", scale)``). As in the
    paper's Appendix A, each setting is trained from the initializations ``T["seeds"]`` (stopping
    at the first that fits when ``T["enough"]`` is set) and the best fit of the training set is
    kept (:func:`lib.runs.run_best_of`). One row per setting, columns :data:`NETWORK_COLUMNS`
    (without ``network``); ``p = 0`` appears once per noise type, all the same clean run.
    """
    settings = [(d, noise, float(p)) for d in datasets for noise in noise_types for p in levels]
    unique = list(dict.fromkeys(theunissen_config(T, *s) for s in settings))
    trained = run_best_of(unique, T["seeds"], enough=T["enough"])
    best = trained[trained.best].set_index("setting")
    rows = []
    for d, noise, p in settings:
        row = best.loc[unique.index(theunissen_config(T, d, noise, p))]
        rows.append(dict(architecture=architecture, dataset=d, noise=noise, p=p, seed=int(row.seed),
                         train_acc=row.final_train_acc, test_acc=row.final_test_acc, epochs=int(row.epochs),
                         config=row.config, key=row.key, cached=bool(row.cached), train_seconds=row.train_seconds))
    return pd.DataFrame(rows)


def masc_networks(M: Mapping, model: str, levels: Sequence[float], seeds: Sequence[int] | None = None,
                  architecture: str | None = None) -> pd.DataFrame:
    """The MASC chapter's runs of model entry ``model`` (e.g. ``"MLP-MNIST"``), one row per (level, seed).

    ``M`` is that chapter's parameters (``load_params("masc-decoding", scale)``); labels are
    redrawn uniformly with probability ``p`` (section 3.1), so ``noise`` is ``partial_labels``.
    """
    spec = {**M["models"], **M["extra_models"]}[model]
    seeds = list(M["seeds"] if seeds is None else seeds)
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
    torch_threads: PositiveInt | None
