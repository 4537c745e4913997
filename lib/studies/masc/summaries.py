"""The MASC chapter's grid, summarized: the model entries and their runs (Tables 2-3), the data-size panel, the
decoding jobs, and the per-layer summaries of the decodings (Figures 1-3, 5, 6, 9, 10, 16-18, 19, 37-38).

"Decoding generalization from memorization in deep neural networks" (the MASC paper). The chapter
(``book/masc-decoding.md``) trains a grid of model entries (``P.models``, ``P.extra_models``, values of
:class:`lib.studies.masc.protocol.MascModel`) × corruption degrees × seeds through
:func:`lib.studies.masc.protocol.masc_config`, decodes every run layer by layer with
:func:`lib.studies.masc.decoding.decode_grid`, and reads the frames below off the two tables that returns:

- ``accuracy``: one row per (job, subspace labels, variance, layer, set) with ``model``, ``corruption``, ``seed``,
  ``subspace`` (``"corrupted"``, ``"true"``, ``"corrupted:p"``), ``variance``, ``network`` (``"trained"`` or
  ``"random init"``), ``layer_index``, ``layer_name``, ``set`` and ``accuracy``;
- ``components``: one row per (job, subspace labels, variance, layer, class) with ``n_components``;
- ``per_model`` (:func:`model_summary`): one row per (model entry ``name``, ``corruption``) with the model's own mean
  ``train``, ``test`` and ``best_test`` accuracies, ``epochs`` and ``converged``.

Everything here is a pure function of its arguments; the chapter registers the claims and draws the figures.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

import numpy as np
import pandas as pd
import torch

from lib.verdicts import all_fitted, converged_or_reached, data_size
from lib.models import build_model, count_parameters
from lib.studies.masc import decoding as decode
from lib.studies.masc.protocol import masc_config
from lib.train import RunConfig

LAYER_KEYS = ["model", "corruption", "layer_index", "layer_name", "set"]  # one point of a per-layer figure
MODEL_SERIES = "model test accuracy, p = 0"  # the data-size panel's series of the clean model (Table 3, p = 0)


# ---------------------------------------------------------------------------------------------------------------
# Setup: the architectures against the paper's Table 1, the model entries, the grid

def parameter_table(counts: Sequence[tuple]) -> tuple[pd.DataFrame, dict[str, torch.nn.Module]]:
    """Table 1 of the paper against ours: ``counts`` holds ``(label, architecture, input shape, classes, paper's
    parameter count)``. Returns the table (our count and the probed layers by the paper's names, section 3.1) and the
    networks built (seed 0), by label."""
    rows, built = [], {}
    for label, name, shape, classes, paper_params in counts:
        model = build_model(name, shape, classes, seed=0)
        built[label] = model
        layers = decode.probed_layers(name, model)
        rows.append({"model": label, "paper parameters (Table 1)": f"{paper_params:,}",
                     "ours": f"{count_parameters(model):,}",
                     "probed layers": ", ".join(decode.display_names(model, shape, layers).values())})
    return pd.DataFrame(rows).set_index("model"), built


def layer_widths(model: torch.nn.Module, kind: type) -> list[int]:
    """The widths of ``model``'s layers of ``kind``, in order: filters of each ``Conv2d``, outputs of each
    ``Linear`` (to describe an architecture against Table 1)."""
    return [m.out_channels if kind is torch.nn.Conv2d else m.out_features for m in model.modules() if isinstance(m, kind)]


def output_bias_gap(model: torch.nn.Module, gap: int) -> bool:
    """Whether ``gap`` (our parameter count minus Table 1's) is exactly the output layer's biases: the paper's count
    apparently leaves them out."""
    last = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    return last.bias is not None and gap == last.out_features


def dataset_available(name: str) -> bool:
    """Whether data set ``name`` is on this machine (nothing is downloaded)."""
    from lib.data import DatasetNotFound, load_dataset

    try:
        load_dataset(name, download=False)
        return True
    except DatasetNotFound:
        return False


def model_entries(P, available: Callable[[str], bool] = dataset_available) -> tuple[dict, list[str]]:
    """The model entries of ``P.models`` then ``P.extra_models`` whose data set is ``available``, by name, and the
    data sets that are not (sorted)."""
    entries = {**P.models, **P.extra_models}
    missing = sorted({entry.dataset for entry in entries.values() if not available(entry.dataset)})
    return {name: entry for name, entry in entries.items() if entry.dataset not in missing}, missing


def levels_of(entry, levels: Sequence[float]) -> list[float]:
    """A model entry's corruption degrees: its own ``corruption_levels`` where it has them, else ``levels``."""
    return list(entry.corruption_levels if entry.corruption_levels is not None else levels)


def grid_configs(P, entries: Mapping) -> dict[tuple[str, float, int], RunConfig]:
    """Every run of the grid (section 3.1, appendix A.2): ``(name, p, seed)`` → :func:`masc_config`, for each model
    entry, each of its corruption degrees (:func:`levels_of`) and each of ``P.seeds``."""
    return {(name, p, seed): masc_config(P, entry, p, seed) for name, entry in entries.items()
            for p in levels_of(entry, P.corruption_levels) for seed in P.seeds}


def training_data(entry, reference):
    """What a claim about model entry ``entry`` was measured on: its training images against the paper's
    (``reference``: the paper's numbers, :func:`lib.papers.paper`, whose ``n_train.<dataset>`` is the paper's)."""
    return data_size(entry.dataset, entry.n_train, paper=reference[f"n_train.{entry.dataset}"])


def model_summary(summary: pd.DataFrame) -> pd.DataFrame:
    """The runs of :func:`lib.runs.run_grid` (with a ``name`` column: the model entry) averaged over seeds, one row
    per (``name``, ``corruption``): ``train``, ``test``, ``best_test`` accuracy (means), ``epochs`` (mean) and
    ``converged`` (every seed reached its criterion). Tables 2 and 3 are ``train`` and ``test``."""
    return (summary.groupby(["name", "corruption"])
            .agg(train=("final_train_acc", "mean"), test=("final_test_acc", "mean"), best_test=("best_test_acc", "mean"),
                 epochs=("epochs", "mean"), converged=("converged", "all"))
            .reset_index())


def runs_of(summary: pd.DataFrame, name: str, p: float) -> pd.DataFrame:
    """The runs (one per seed) of model entry ``name`` at corruption ``p``."""
    return summary[(summary.name == name) & (summary.corruption == p)]


# ---------------------------------------------------------------------------------------------------------------
# Tables 2 and 3: the models' training and test accuracy

def paper_table(reference, prefix: str) -> dict[tuple[str, ...], list[float]]:
    """The paper's Table 2 (``prefix="table2"``) or Table 3 (``"table3"``): (architecture, data set, optimizer) →
    its row, one value (%) per degree of ``reference["degrees"]``."""
    return {tuple(key.split(".")[1:]): reference[key] for key in reference.keys(prefix)}


def paper_value(table: Mapping, paper_names: Sequence[str], p: float, degrees: Sequence[float]) -> float:
    """The paper's value (%) of the row ``paper_names`` at degree ``p`` of ``table`` (:func:`paper_table`), NaN
    where the paper has no such row or degree."""
    row = table.get(tuple(paper_names))
    return np.nan if row is None or p not in degrees else row[degrees.index(p)]


def fit_threshold(stop_train_acc: float, paper_fit: float) -> float:
    """The training accuracy a memorizing model reaches: its stopping criterion, or the paper's Table 2 fit
    (``paper_fit``, %, NaN where the paper has none) where lower (the paper's CNN on Fashion-MNIST stopped at its
    500-epoch cap below the criterion at high corruption)."""
    fit = paper_fit / 100
    return stop_train_acc if np.isnan(fit) else min(stop_train_acc, fit)


def trained_as_paper(runs: pd.DataFrame, name: str, p: float, stop_train_acc: float, cap: int):
    """Precondition of a Table 2 or 3 number: every run of ``name`` at ``p`` (``runs``) reached its stopping criterion
    or trained the paper's ``cap`` epochs, i.e. was not stopped by our epoch cap before the paper's setting."""
    return converged_or_reached(
        bool(runs.converged.all()), int(runs.epochs.min()), cap,
        f"every {name} run at p = {p:g} reached its stopping criterion (training accuracy ≥ {stop_train_acc:.1%}) or "
        f"trained the paper's full {cap} epochs")


def memorized(runs: pd.DataFrame, name: str, p: float, threshold: float):
    """Precondition of a claim about what a memorizing network holds: every run of ``name`` at ``p`` (``runs``) fitted
    its corrupted training labels (training accuracy ≥ ``threshold``, :func:`fit_threshold`), like the paper's."""
    return all_fitted(runs.final_train_acc, threshold,
                      f"{name} at p = {p:g} fitted its corrupted training labels (training accuracy ≥ {threshold:.2%}: "
                      "its stopping criterion, or the paper's own Table 2 fit where lower)")


def scale_departures(entry, paper_entry, data_text: str, seeds: int, paper_seeds: int, paper_cap: int,
                     n_test: int | None) -> str:
    """Why our numbers for model entry ``entry`` may differ from the paper's: where this scale departs from the
    protocol (``paper_entry``: the same entry at the paper's scale, or None; ``data_text``: the training data against
    the paper's, :meth:`lib.book.claims.DataSize.text`)."""
    parts = [data_text, f"{seeds} seed(s) (paper: {paper_seeds})",
             f"an epoch cap of {entry.max_epochs} (paper: {paper_cap})"]
    if paper_entry is not None and paper_entry.lr != entry.lr:
        parts.append(f"learning rate {entry.lr:g} (paper: {paper_entry.lr:g})")
    if n_test:
        parts.append(f"{n_test:,} test images")
    if entry.model == "masc-cnn":
        parts.append("max pools of stride 2 (see Setup)")
    return "ours: " + "; ".join(parts)


def accuracy_rows(per_model: pd.DataFrame, entries: Mapping, levels: Sequence[float], column: str, table: Mapping,
                  degrees: Sequence[float]) -> pd.DataFrame:
    """Table 2 (``column="train"``) or Table 3 (``"test"``), long: one row per model entry and corruption degree with
    the paper's value (``paper %``, NaN where the paper has none) and ours (``ours %``, :func:`model_summary`'s
    ``column`` in %, rounded to 2 decimals)."""
    rows = []
    for name, entry in entries.items():
        ours = per_model[per_model.name == name].set_index("corruption")[column]
        for p in levels_of(entry, levels):
            rows.append({"model": name, "p": p, "paper %": paper_value(table, entry.paper, p, degrees),
                         "ours %": round(100 * ours[p], 2)})
    return pd.DataFrame(rows)


def accuracy_table(rows: pd.DataFrame, order: Sequence[str]) -> pd.DataFrame:
    """:func:`accuracy_rows` as the paper prints Tables 2 and 3: one row per model (in ``order``), paper and ours side
    by side under each degree."""
    frame = rows.pivot(index="model", columns="p")
    return frame.reindex(list(order)).swaplevel(axis=1).sort_index(axis=1, level=0, sort_remaining=False)


def falls_with_corruption(per_model: pd.DataFrame, names: Sequence[str], rise: float = 0.03) -> dict[str, bool]:
    """Per model: whether its test accuracy falls as ``p`` grows (Table 3), i.e. never rises by more than ``rise``
    from one degree to the next."""
    return {name: bool(per_model[per_model.name == name].sort_values("corruption").test.diff().dropna().le(rise).all())
            for name in names}


# ---------------------------------------------------------------------------------------------------------------
# The data-size panel: the clean model and MASC on the raw input against the number of training images

def sized_config(config: RunConfig, n: int, full: int) -> RunConfig:
    """``config`` on the first ``n`` training images (``n_train=None``: all of them, where ``n`` reaches ``full``)."""
    return replace(config, n_train=None if n >= full else n)


def input_series(p: float) -> str:
    """The data-size panel's series of MASC on the raw input at corruption ``p``."""
    return f"MASC on the input, p = {p:g}"


def data_size_panel(sizes: Sequence[int], model_test: Sequence[float], p: float, input_sizes: Sequence[int],
                    input_test: Sequence[float]) -> pd.DataFrame:
    """The panel's points (``series``, ``n_train``, ``accuracy``): the clean model's test accuracy on ``sizes``
    training images (Table 3 at p = 0) and MASC on the raw input at ``p`` on ``input_sizes``."""
    panel = [{"series": MODEL_SERIES, "n_train": n, "accuracy": float(acc)} for n, acc in zip(sizes, model_test)]
    panel += [{"series": input_series(p), "n_train": n, "accuracy": float(acc)} for n, acc in zip(input_sizes, input_test)]
    return pd.DataFrame(panel)


def data_size_references(reference, entry, model: str, p: float) -> dict[str, float]:
    """The paper's values for the panel's series (fractions): Table 3 at p = 0 for the clean model, and for MLP-MNIST
    at p = 0.8 Figure 1's MASC test accuracy in the later layers (the paper gives no raw-input value)."""
    degrees = reference["degrees"]
    references = {MODEL_SERIES: reference[f"table3.{'.'.join(entry.paper)}"][degrees.index(0.0)] / 100}
    if model == "MLP-MNIST" and p == 0.8:
        references[input_series(p)] = reference["figure1.MLP-MNIST.p0.8.best_later_layer_test"]["value"] / 100
    return references


def growth(panel: pd.DataFrame, series: str) -> tuple[int, float, int, float]:
    """A series of the panel at its fewest and its most training images: (n, accuracy, n, accuracy)."""
    rows = panel[panel.series == series].sort_values("n_train")
    return int(rows.n_train.iloc[0]), float(rows.accuracy.iloc[0]), int(rows.n_train.iloc[-1]), float(rows.accuracy.iloc[-1])


# ---------------------------------------------------------------------------------------------------------------
# The decodings: which runs are decoded with which labels

def decode_seeds(P) -> list[int]:
    """The seeds whose runs are decoded: all of ``P.seeds``, or only ``P.decode_seed_only``."""
    return list(P.seeds) if P.decode_seed_only is None else [P.decode_seed_only]


def optimizer_pairs(P, entries: Mapping) -> list[list[str]]:
    """Appendix A.10's pairs (SGD, Adam) of ``P.optimizer_pairs`` whose two entries are both in ``entries``."""
    return [pair for pair in P.optimizer_pairs if all(name in entries for name in pair)]


def decoding_jobs(P, configs: Mapping, entries: Mapping, main_models: Sequence[str],
                  extra_models: Sequence[str]) -> list[tuple[dict, RunConfig, dict]]:
    """The jobs of :func:`lib.studies.masc.decoding.decode_grid`, ``(tags, config, decode_run arguments)``, for
    ``configs`` (:func:`grid_configs`) and the seeds of :func:`decode_seeds`, in this order:

    - every main model at every degree of ``P.corruption_levels``, with corrupted and true labels (Figures 1, 2,
      5, 6, 16, 17); ``P.variance_model`` at each of ``P.variances`` (appendix A.12), the others at 99%;
    - the clean models (p = 0) with labels corrupted afterwards at every p > 0 (section 6, Figures 3 and 18; none
      when the grid has no p > 0);
    - the random initialization of every main model at each of ``P.control_levels`` (appendix A.6, Figures 9, 10);
    - the extra models of an optimizer pair at their own degrees, with corrupted labels (appendix A.10).
    """
    levels, seeds = list(P.corruption_levels), decode_seeds(P)
    pairs = optimizer_pairs(P, entries)
    main = [(dict(model=name, corruption=p, seed=seed), configs[name, p, seed],
             dict(subspaces=("corrupted", "true"), variances=tuple(P.variances) if name == P.variance_model else (0.99,)))
            for name in main_models for p in levels for seed in seeds]
    induced = [(dict(model=name, corruption=0.0, seed=seed), configs[name, 0.0, seed],
                dict(subspaces=tuple(f"corrupted:{p}" for p in levels if p > 0)))
               for name in main_models for seed in seeds if 0.0 in levels and any(p > 0 for p in levels)]
    control = [(dict(model=name, corruption=p, seed=seed), configs[name, p, seed],
                dict(subspaces=("corrupted", "true"), random_init=True))
               for name in main_models for p in P.control_levels if p in levels for seed in seeds]
    extra = [(dict(model=name, corruption=p, seed=seed), configs[name, p, seed], dict(subspaces=("corrupted",)))
             for name in extra_models if any(name in pair for pair in pairs)
             for p in levels_of(entries[name], levels) for seed in seeds]
    return main + induced + control + extra


def subspace_degree(subspaces: pd.Series) -> pd.Series:
    """The degree ``p`` of labels ``"corrupted:p"`` (corrupted after training, section 6), NaN for other labels."""
    return pd.to_numeric(subspaces.str.extract(r"^corrupted:(.*)$")[0], errors="coerce")


# ---------------------------------------------------------------------------------------------------------------
# Per-layer summaries, figure by figure

def over_seeds(frame: pd.DataFrame, keys: Sequence[str], value: str = "accuracy") -> pd.DataFrame:
    """Mean and range (``low``, ``high``) of ``value`` over seeds, per group of ``keys`` (the paper shades the range
    of its three runs)."""
    return (frame.groupby(list(keys), sort=False)[value].agg(["mean", "min", "max"]).reset_index()
            .rename(columns={"mean": value, "min": "low", "max": "high"}))


def layer_order(frame: pd.DataFrame) -> list[str]:
    """The layer names of ``frame`` in network order (by ``layer_index``, model by model), each once: a figure's
    x axis."""
    return list(frame.sort_values("layer_index").drop_duplicates(["model", "layer_index"]).layer_name.drop_duplicates())


def model_references(per_model: pd.DataFrame, names: Sequence[str], which: Mapping[str, str],
                     corruption_column: str = "corruption") -> pd.DataFrame:
    """The models' own accuracies as a figure's dashed lines: one row per model of ``names``, degree and entry of
    ``which`` (label → column of :func:`model_summary`), with ``model``, the degree, ``reference`` and ``value`` (no
    rows, same columns, when none of ``names`` is in ``per_model``)."""
    rows = []
    for _, r in per_model[per_model.name.isin(names)].iterrows():
        for label, column in which.items():
            rows.append({"model": r["name"], corruption_column: r.corruption, "reference": label, "value": r[column]})
    return pd.DataFrame(rows, columns=["model", corruption_column, "reference", "value"])


def trained_decodings(accuracy: pd.DataFrame) -> pd.DataFrame:
    """The decodings of trained networks at 99% variance (the paper's default)."""
    return accuracy[(accuracy.network == "trained") & (accuracy.variance == 0.99)]


def corrupted_subspaces(trained: pd.DataFrame, models: Sequence[str]) -> pd.DataFrame:
    """Figure 1 (and Figure 19, appendix A.10): MASC per layer with subspaces from the corrupted training labels, on
    the three sets, over seeds."""
    return over_seeds(trained[trained.model.isin(models) & (trained.subspace == "corrupted")], LAYER_KEYS)


def true_subspaces(trained: pd.DataFrame, models: Sequence[str]) -> pd.DataFrame:
    """Figure 2: MASC per layer with subspaces from the true training labels (sets ``original train (true
    subspaces)``, ``test (true subspaces)``) beside those from the corrupted labels (``corrupted train (corrupted
    subspaces)``, ``test (corrupted subspaces)``), over seeds."""
    chosen = trained[trained.model.isin(models)]
    true = chosen[(chosen.subspace == "true") & (chosen.set != "corrupted train")]
    corrupted = chosen[(chosen.subspace == "corrupted") & (chosen.set != "original train")]
    return over_seeds(pd.concat([true.assign(set=true.set + " (true subspaces)"),
                                 corrupted.assign(set=corrupted.set + " (corrupted subspaces)")]), LAYER_KEYS)


def best_against_model(frame: pd.DataFrame, per_model: pd.DataFrame, columns: Sequence[str] = ("test",)) -> pd.DataFrame:
    """Per (model, corruption): the layer of ``frame`` with the best MASC test accuracy, beside the model's own
    ``columns`` (:func:`model_summary`)."""
    model_columns = per_model.rename(columns={"name": "model"})[["model", "corruption", *columns]]
    return decode.best_layer(frame, by=["model", "corruption"]).merge(model_columns, on=["model", "corruption"])


def best_layers(figure1: pd.DataFrame, per_model: pd.DataFrame) -> pd.DataFrame:
    """Figure 1's headline: per (model, corruption) the network layer (the input excluded: it is the same for every
    network) with the best MASC test accuracy, the model's ``test`` and ``best_test`` accuracy, ``margin`` (MASC minus
    the model's test accuracy) and ``input`` (MASC test accuracy on the raw input, NaN where not decoded)."""
    best = best_against_model(figure1[figure1.layer_name != "Input"], per_model, ("test", "best_test"))
    best["margin"] = best.accuracy - best.test
    inputs = figure1[(figure1.layer_name == "Input") & (figure1.set == "test")].set_index(["model", "corruption"]).accuracy
    best["input"] = [inputs.get((m, p), np.nan) for m, p in zip(best.model, best.corruption)]
    return best


def margin_verdicts(headline: pd.DataFrame) -> tuple[dict[str, bool], dict[str, bool], dict[str, bool]]:
    """Figure 1, per model over the degrees of ``headline`` (:func:`best_layers` rows): whether a network layer's MASC
    beats the model's test accuracy at every degree; whether it does counting the input layer too (as the paper does);
    and whether a network layer decodes better than the raw input at every degree."""
    groups = list(headline.groupby("model"))
    beats = {m: bool(g.margin.gt(0).all()) for m, g in groups}
    beats_with_input = {m: bool((g[["accuracy", "input"]].max(axis=1) > g.test).all()) for m, g in groups}
    deeper = {m: bool((g.accuracy > g.input).all()) for m, g in groups}
    return beats, beats_with_input, deeper


def accuracy_at(frame: pd.DataFrame, model: str, p: float, layer: str | None, which: str = "test") -> float:
    """MASC accuracy of ``model`` at ``p`` on set ``which`` at layer ``layer`` (None: the best layer), NaN where
    ``frame`` has none."""
    rows = frame[(frame.model == model) & (frame.corruption == p) & (frame.set == which)]
    if layer is not None:
        rows = rows[rows.layer_name == layer]
    return rows.accuracy.max() if len(rows) else np.nan


def subspace_gain(figure2: pd.DataFrame, best: pd.DataFrame) -> pd.DataFrame:
    """Figure 2 against Figure 1: per (model, corruption) the best network layer's test accuracy with true-label
    subspaces (``accuracy``) beside the best with corrupted subspaces (``accuracy_corrupted``, from
    :func:`best_layers`)."""
    network = figure2[figure2.layer_name != "Input"].replace({"set": {"test (true subspaces)": "test"}})
    return (decode.best_layer(network, by=["model", "corruption"])
            .merge(best[["model", "corruption", "accuracy"]], on=["model", "corruption"], suffixes=("", "_corrupted")))


def induced_frame(accuracy: pd.DataFrame) -> pd.DataFrame:
    """Figure 3 (section 6): clean models decoded with labels corrupted afterwards, ``corruption`` being that degree,
    on the corrupted training labels and the test set, over seeds."""
    induced = accuracy[(accuracy.network == "trained") & accuracy.subspace.str.startswith("corrupted:")]
    induced = induced.assign(corruption=subspace_degree(induced.subspace).astype(float))
    return over_seeds(induced[induced.set != "original train"], LAYER_KEYS)


def clean_references(references: pd.DataFrame, levels: Sequence[float]) -> pd.DataFrame:
    """Figure 3's dashed lines: the clean models' (p = 0) rows of ``references`` (:func:`model_references`), repeated
    under each degree p > 0 of ``levels`` the labels are corrupted with afterwards; no rows (same columns) when
    ``levels`` has no p > 0."""
    clean = references[references.corruption == 0.0].drop(columns="corruption")
    repeated = [clean.assign(corruption=p) for p in levels if p > 0]
    return (pd.concat(repeated, ignore_index=True) if repeated
            else clean.iloc[0:0].assign(corruption=pd.Series(dtype=float)).reset_index(drop=True))


def induced_summary(figure3: pd.DataFrame, per_model: pd.DataFrame) -> pd.DataFrame:
    """Figure 3, per (model, degree of the labels corrupted afterwards): the best network layer's MASC accuracy on the
    corrupted training labels (``memorized``) and on the test set (``test``), and the clean model's test accuracy
    (``clean_test``)."""
    rows = []
    for (model, p), g in figure3[figure3.layer_name != "Input"].groupby(["model", "corruption"]):
        rows.append({"model": model, "corruption": p, "memorized": g[g.set == "corrupted train"].accuracy.max(),
                     "test": g[g.set == "test"].accuracy.max(),
                     "clean_test": per_model[(per_model.name == model) & (per_model.corruption == 0)].test.iloc[0]})
    return pd.DataFrame(rows, columns=["model", "corruption", "memorized", "test", "clean_test"])


def early_stopping_frame(figure1: pd.DataFrame, figure2: pd.DataFrame) -> pd.DataFrame:
    """Figures 5 and 6 (appendix A.4): MASC test accuracy per layer with corrupted subspaces (Figure 1's) and with
    true-label subspaces (Figure 2's)."""
    return pd.concat([figure1[figure1.set == "test"].assign(set="test, corrupted subspaces (Fig. 5)"),
                      figure2[figure2.set == "test (true subspaces)"].assign(set="test, true subspaces (Fig. 6)")])


def control_frame(accuracy: pd.DataFrame, models: Sequence[str], levels: Sequence[float]) -> pd.DataFrame:
    """Figures 9 and 10 (appendix A.6): MASC test accuracy per layer of the trained network and of its random
    initialization, with corrupted and true-label subspaces (``set``: "trained, true subspaces", ...), at 99% variance
    and the degrees ``levels``, over seeds."""
    control = accuracy[(accuracy.variance == 0.99) & accuracy.subspace.isin(["corrupted", "true"])
                       & accuracy.model.isin(models) & accuracy.corruption.isin(levels)]
    control = control[control.set == "test"].assign(set=lambda f: f.network + ", " + f.subspace + " subspaces")
    return over_seeds(control, LAYER_KEYS)


def trained_vs_random(control: pd.DataFrame) -> pd.DataFrame:
    """Figures 9 and 10, per (model, corruption, subspace labels): in how many of the network's layers (the input
    excluded: it is the same for both networks) the trained network decodes better than its random initialization
    (``wins`` of ``layers``), and each one's best layer (``trained_best``, ``random_best``)."""
    wide = control[control.layer_name != "Input"].pivot_table(index=["model", "corruption", "layer_name"], columns="set",
                                                              values="accuracy")
    rows = []
    for (model, p), g in wide.groupby(level=[0, 1]):
        for sub in ("corrupted", "true"):
            t, r = g[f"trained, {sub} subspaces"], g[f"random init, {sub} subspaces"]
            rows.append({"model": model, "corruption": p, "subspaces": sub, "wins": int((t > r).sum()),
                         "layers": len(g), "trained_best": t.max(), "random_best": r.max()})
    return pd.DataFrame(rows, columns=["model", "corruption", "subspaces", "wins", "layers", "trained_best",
                                       "random_best"])


COMPONENT_FIGURES = {"corrupted": "Fig. 16: corrupted subspaces", "true": "Fig. 17: true-label subspaces"}
INDUCED_FIGURE = "Fig. 18: clean model, corrupted labels"


def component_summary(components: pd.DataFrame, models: Sequence[str]) -> pd.DataFrame:
    """Figures 16-18: the number of principal components of a class subspace at 99% variance, per (figure, model,
    corruption, layer), averaged over seeds per class, then the mean (``n_components``) and range (``low``,
    ``high``) over classes. Figure 16: corrupted subspaces; 17: true-label subspaces; 18: clean models with labels
    corrupted afterwards (``corruption`` being that degree)."""
    comp = components[(components.network == "trained") & (components.variance == 0.99) & components.model.isin(models)]
    comp = comp.assign(corruption=subspace_degree(comp.subspace).fillna(comp.corruption))
    comp = comp.assign(figure=comp.subspace.map(lambda s: INDUCED_FIGURE if s.startswith("corrupted:")
                                                else COMPONENT_FIGURES[s]))
    classwise = (comp.groupby(["figure", "model", "corruption", "layer_index", "layer_name", "label"], sort=False)
                 .n_components.mean().reset_index())
    return (classwise.groupby(["figure", "model", "corruption", "layer_index", "layer_name"], sort=False).n_components
            .agg(["mean", "min", "max"]).reset_index().rename(columns={"mean": "n_components", "min": "low", "max": "high"}))


def variance_frame(accuracy: pd.DataFrame, model: str) -> pd.DataFrame:
    """Figures 37-38 (appendix A.12): MASC accuracy per layer of the trained ``model`` at each variance kept
    (``variance``: "99.0% variance", ...), with corrupted and true-label subspaces (``set``: "corrupted subspaces,
    test", ...; the true-label subspaces scored on the corrupted labels left out), over seeds."""
    frame = accuracy[(accuracy.network == "trained") & (accuracy.model == model)
                     & accuracy.subspace.isin(["corrupted", "true"])]
    frame = frame.assign(set=frame.subspace + " subspaces, " + frame.set,
                         variance=frame.variance.map("{:.1%} variance".format))
    return over_seeds(frame[~frame.set.isin(["true subspaces, corrupted train"])],
                      ["variance", "corruption", "layer_index", "layer_name", "set"])


# ---------------------------------------------------------------------------------------------------------------
# The input layer as the baseline (section 3.1, appendix A.10) and the later layers

LATER = 2  # the "later layers" of a network: its last two probed layers (the MLP's two FC (2048))


def later_layers(frame: pd.DataFrame, model: str, count: int = LATER) -> list[str]:
    """The names of ``model``'s last ``count`` probed layers in ``frame`` (by ``layer_index``): the MLP's FC (2048)
    and FC (2048) #2, the layers the paper's "over 80% in later layers" is about."""
    layers = frame[frame.model == model].drop_duplicates("layer_index").sort_values("layer_index")
    return list(layers.layer_name[layers.layer_name != "Input"].tail(count))


def against_input(figure1: pd.DataFrame, models: Sequence[str], n_test: int, which: str = "test") -> pd.DataFrame:
    """Per (model, corruption) where the input was decoded: the best of the later layers' MASC accuracy on set
    ``which`` (``later``, its layer ``layer_name``), MASC on the input (``input``), ``margin`` (later minus input) and
    ``two_se``, two standard errors of that difference on ``n_test`` images each (:func:`lib.verdicts.difference_se`)."""
    from lib.verdicts import difference_se

    rows = []
    for model in models:
        names = later_layers(figure1, model)
        frame = figure1[(figure1.model == model) & (figure1.set == which)]
        for p, g in frame.groupby("corruption"):
            inputs, later = g[g.layer_name == "Input"], g[g.layer_name.isin(names)]
            if inputs.empty or later.empty:
                continue
            best = later.loc[later.accuracy.idxmax()]
            rows.append(dict(model=model, corruption=float(p), layer_name=best.layer_name, later=float(best.accuracy),
                             input=float(inputs.accuracy.iloc[0]), margin=float(best.accuracy - inputs.accuracy.iloc[0]),
                             two_se=2 * difference_se(float(best.accuracy), n_test, float(inputs.accuracy.iloc[0]),
                                                      n_test)))
    return pd.DataFrame(rows, columns=["model", "corruption", "layer_name", "later", "input", "margin", "two_se"])
