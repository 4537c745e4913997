"""Tests for lib.studies.masc.summaries: the MASC chapter's grid, tables and per-layer summaries, on small synthetic
frames shaped like lib.studies.masc.decoding's and on the chapter's real parameters and paper numbers."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import write_mnist_like
from lib.papers import paper
from lib.params import load_params
from lib.studies.masc import summaries
from lib.studies.masc.protocol import masc_config

LAYERS = ["Input", "FC (8)", "FC (16)"]
SETS = ["corrupted train", "original train", "test"]


@pytest.fixture(scope="module")
def masc():
    return paper("masc")


def decodings(seed: int = 0) -> pd.DataFrame:
    """A decode_grid-like accuracy frame: models M1, M2 at p = 0, 0.5, 1 and seeds 0, 1, with corrupted and true
    subspaces (M1 also at 90% variance), labels corrupted afterwards on the clean models, and a random-init control
    at p = 0.5. Accuracies are random."""
    rng = np.random.default_rng(seed)
    rows = []

    def add(model, p, s, subspace, variance, network):
        for index, layer in enumerate(LAYERS):
            for name in SETS:
                rows.append(dict(model=model, corruption=p, seed=s, subspace=subspace, variance=variance, network=network,
                                 layer=layer, layer_index=index, layer_name=layer, set=name, accuracy=float(rng.random())))

    for model, p, s in itertools.product(["M1", "M2"], [0.0, 0.5, 1.0], [0, 1]):
        for subspace in ("corrupted", "true"):
            add(model, p, s, subspace, 0.99, "trained")
            if model == "M1":
                add(model, p, s, subspace, 0.9, "trained")
            if p == 0.5:
                add(model, p, s, subspace, 0.99, "random init")
        if p == 0.0:
            for q in (0.5, 1.0):
                add(model, p, s, f"corrupted:{q}", 0.99, "trained")
    return pd.DataFrame(rows)


def mean_of(frame: pd.DataFrame, **where) -> float:
    """The plain mean of ``accuracy`` over the rows matching ``where`` (computed without groupby)."""
    values = [r["accuracy"] for r in frame.to_dict("records") if all(r[k] == v for k, v in where.items())]
    return sum(values) / len(values)


def per_model_frame() -> pd.DataFrame:
    rows = []
    for name, (train, test) in {"M1": ([1.0, 0.99, 0.98], [0.9, 0.6, 0.1]), "M2": ([1.0, 1.0, 1.0], [0.8, 0.5, 0.1])}.items():
        for p, tr, te in zip([0.0, 0.5, 1.0], train, test):
            rows.append(dict(name=name, corruption=p, train=tr, test=te, best_test=te + 0.05, epochs=10.0, converged=True))
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------------------------
# Setup: architectures, entries, grid

def test_parameter_table_counts_and_names_the_probed_layers():
    table, built = summaries.parameter_table([("MLP", "mlp-128-512-2048-2048", (1, 28, 28), 10, 5_433_994),
                                              ("CNN", "masc-cnn", (1, 28, 28), 10, 344_042)])
    assert list(table.index) == ["MLP", "CNN"] and set(built) == {"MLP", "CNN"}
    assert table.loc["MLP", "ours"] == "5,433,994" and table.loc["MLP", "paper parameters (Table 1)"] == "5,433,994"
    assert table.loc["CNN", "ours"] == f"{sum(p.numel() for p in built['CNN'].parameters()):,}" == "344,052"
    assert table.loc["MLP", "probed layers"] == "Input, FC (128), FC (512), FC (2048), FC (2048) #2"
    assert table.loc["CNN", "probed layers"] == "Input, Flat (576), FC (250), FC (250) #2, FC (250) #3"


def test_layer_widths_and_the_output_bias_gap():
    _, built = summaries.parameter_table([("CNN", "masc-cnn", (1, 28, 28), 10, 344_042)])
    cnn = built["CNN"]
    assert summaries.layer_widths(cnn, torch.nn.Conv2d) == [16, 16, 32, 32, 64, 64]
    assert summaries.layer_widths(cnn, torch.nn.Linear) == [250, 250, 250, 10]
    assert summaries.output_bias_gap(cnn, 344_052 - 344_042)  # the paper's count leaves out the 10 output biases
    assert not summaries.output_bias_gap(cnn, 9)
    assert not summaries.output_bias_gap(torch.nn.Sequential(torch.nn.Linear(4, 3, bias=False)), 3)


def test_dataset_available(tmp_path, monkeypatch):
    write_mnist_like(tmp_path / "mnist", n_train=20, n_test=10)
    monkeypatch.setenv("LIB_DATA_DIR", str(tmp_path))
    assert summaries.dataset_available("mnist")
    import lib.data

    def missing(name, download=False):
        raise lib.data.DatasetNotFound(name)

    monkeypatch.setattr(lib.data, "load_dataset", missing)
    assert not summaries.dataset_available("mnist")


def test_model_entries_leave_out_missing_data_sets_and_levels_of_an_entry():
    P = load_params("masc-decoding", "cpu")
    entries, missing = summaries.model_entries(P, available=lambda name: name != "fashion-mnist")
    assert missing == ["fashion-mnist"]
    assert list(entries) == [n for n in [*P.models, *P.extra_models] if n != "CNN-Fashion-MNIST"]
    everything, none = summaries.model_entries(P, available=lambda name: True)
    assert none == [] and list(everything) == [*P.models, *P.extra_models]
    assert summaries.levels_of(everything["MLP-MNIST"], P.corruption_levels) == list(P.corruption_levels)
    assert summaries.levels_of(everything["MLP-MNIST-Adam"], P.corruption_levels) == [0.4, 0.8]  # its own degrees


def test_grid_configs_are_the_protocols_runs():
    P = load_params("masc-decoding", "cpu")
    entries, _ = summaries.model_entries(P, available=lambda name: True)
    configs = summaries.grid_configs(P, entries)
    expected = [(name, p, seed) for name, entry in entries.items() for p in summaries.levels_of(entry, P.corruption_levels)
                for seed in P.seeds]
    assert list(configs) == expected
    assert not [k for k in configs if k[0] == "MLP-MNIST-Adam" and k[1] == 0.0]
    for (name, p, seed), config in configs.items():
        assert config == masc_config(P, entries[name], p, seed)
        assert config.corruption == p and config.seed == seed and config.dataset == entries[name].dataset


def test_training_data_against_the_papers(masc):
    P = load_params("masc-decoding", "smoke")
    size = summaries.training_data(P.models["MLP-MNIST"], masc)
    assert (size.ours, size.paper) == (150, 60_000) and size.text() == "150 of 60,000 training images"
    full = summaries.training_data(load_params("masc-decoding", "paper").models["MLP-MNIST"], masc)
    assert full.at_paper_size and (full.ours, full.paper) == (60_000, 60_000)


def test_model_summary_and_runs_of():
    summary = pd.DataFrame([
        dict(name="A", corruption=0.5, seed=0, final_train_acc=0.9, final_test_acc=0.4, best_test_acc=0.5, epochs=10, converged=True),
        dict(name="A", corruption=0.5, seed=1, final_train_acc=0.7, final_test_acc=0.2, best_test_acc=0.3, epochs=20, converged=False),
        dict(name="A", corruption=0.0, seed=0, final_train_acc=1.0, final_test_acc=0.8, best_test_acc=0.8, epochs=5, converged=True),
        dict(name="B", corruption=0.5, seed=0, final_train_acc=0.6, final_test_acc=0.1, best_test_acc=0.2, epochs=3, converged=True)])
    per_model = summaries.model_summary(summary)
    a = per_model[(per_model.name == "A") & (per_model.corruption == 0.5)].iloc[0]
    assert a.train == pytest.approx(0.8) and a.test == pytest.approx(0.3) and a.best_test == pytest.approx(0.4)
    assert a.epochs == 15 and not a.converged
    assert bool(per_model[(per_model.name == "A") & (per_model.corruption == 0.0)].converged.iloc[0])
    assert len(per_model) == 3
    runs = summaries.runs_of(summary, "A", 0.5)
    assert list(runs.seed) == [0, 1] and set(runs.name) == {"A"}


# ---------------------------------------------------------------------------------------------------------------
# Tables 2 and 3

def test_paper_table_and_value(masc):
    table2 = summaries.paper_table(masc, "table2")
    degrees = masc["degrees"]
    row = masc["table2.MLP.MNIST.SGD"]
    assert table2[("MLP", "MNIST", "SGD")] == row and len(row) == len(degrees)
    assert all(key[0] in ("MLP", "CNN", "AlexNet") for key in table2)
    assert summaries.paper_value(table2, ["MLP", "MNIST", "SGD"], degrees[2], degrees) == row[2]
    assert math.isnan(summaries.paper_value(table2, ["MLP", "MNIST", "SGD"], 0.3, degrees))  # no such degree
    assert math.isnan(summaries.paper_value(table2, ["MLP", "SVHN", "SGD"], 0.0, degrees))  # no such row


def test_fit_threshold_is_the_criterion_or_the_papers_lower_fit():
    assert summaries.fit_threshold(0.991, 91.65) == pytest.approx(0.9165)
    assert summaries.fit_threshold(0.991, 99.99) == 0.991
    assert summaries.fit_threshold(0.999, float("nan")) == 0.999


def test_trained_as_paper_is_converged_or_reached():
    def runs(converged, epochs):
        return pd.DataFrame({"converged": converged, "epochs": epochs})

    what, rule = summaries.trained_as_paper(runs([True, False], [2, 600]), "MLP-MNIST", 0.8, 0.999, 500)
    assert rule.expr == "converged == 1 or epochs >= needed"
    assert rule.values == {"converged": 0, "epochs": 2, "needed": 500} and not rule.holds()
    assert what == ("every MLP-MNIST run at p = 0.8 reached its stopping criterion (training accuracy ≥ 99.9%) or "
                    "trained the paper's full 500 epochs")
    assert summaries.trained_as_paper(runs([True, True], [2, 3]), "M", 0.0, 0.999, 500)[1].holds()
    assert summaries.trained_as_paper(runs([False, False], [500, 510]), "M", 0.0, 0.999, 500)[1].holds()
    assert not summaries.trained_as_paper(runs([False, True], [499, 510]), "M", 0.0, 0.999, 500)[1].holds()


def test_memorized_needs_every_seed_to_fit():
    runs = pd.DataFrame({"final_train_acc": [0.995, 0.93]})
    what, rule = summaries.memorized(runs, "CNN", 0.8, 0.9165)
    assert rule.values["train_acc"] == pytest.approx(0.93) and rule.values["threshold"] == pytest.approx(0.9165)
    assert rule.holds() and "CNN at p = 0.8 fitted its corrupted training labels (training accuracy ≥ 91.65%" in what
    assert not summaries.memorized(runs, "CNN", 0.8, 0.95)[1].holds()


def test_scale_departures_name_what_differs_from_the_protocol():
    cpu, full = load_params("masc-decoding", "cpu"), load_params("masc-decoding", "paper")
    mlp = summaries.scale_departures(cpu.models["MLP-MNIST"], full.models["MLP-MNIST"], "500 of 60,000 training images",
                                     len(cpu.seeds), len(full.seeds), 500, cpu.n_test)
    assert mlp == ("ours: 500 of 60,000 training images; 1 seed(s) (paper: 3); an epoch cap of 60 (paper: 500); "
                   "learning rate 0.01 (paper: 0.001); 1,000 test images")
    cnn = summaries.scale_departures(full.models["CNN-Fashion-MNIST"], None, "all 60,000 training images", 3, 3, 500, None)
    assert cnn == ("ours: all 60,000 training images; 3 seed(s) (paper: 3); an epoch cap of 500 (paper: 500); "
                   "max pools of stride 2 (see Setup)")


def test_accuracy_rows_and_table(masc):
    P = load_params("masc-decoding", "smoke")
    entries = {name: P.models[name] for name in ("MLP-MNIST", "CNN-Fashion-MNIST")}
    per_model = pd.DataFrame([dict(name=name, corruption=p, test=t) for name, p, t in
                              [("MLP-MNIST", 0.0, 0.91234), ("MLP-MNIST", 0.8, 0.25), ("CNN-Fashion-MNIST", 0.0, 0.8),
                               ("CNN-Fashion-MNIST", 0.8, 0.333333)]])
    table3, degrees = summaries.paper_table(masc, "table3"), masc["degrees"]
    rows = summaries.accuracy_rows(per_model, entries, P.corruption_levels, "test", table3, degrees)
    assert list(zip(rows.model, rows.p)) == [("MLP-MNIST", 0.0), ("MLP-MNIST", 0.8), ("CNN-Fashion-MNIST", 0.0),
                                             ("CNN-Fashion-MNIST", 0.8)]
    assert list(rows["ours %"]) == [91.23, 25.0, 80.0, 33.33]
    assert rows["paper %"].iloc[1] == masc["table3.MLP.MNIST.SGD"][degrees.index(0.8)]
    assert rows["paper %"].iloc[3] == masc["table3.CNN.Fashion-MNIST.WOD"][degrees.index(0.8)]
    table = summaries.accuracy_table(rows, ["CNN-Fashion-MNIST", "MLP-MNIST"])
    assert list(table.index) == ["CNN-Fashion-MNIST", "MLP-MNIST"]
    assert list(table.columns.get_level_values(0).unique()) == [0.0, 0.8]
    assert set(table.columns.get_level_values(1)) == {"paper %", "ours %"}
    assert table.loc["MLP-MNIST", (0.8, "ours %")] == 25.0


def test_falls_with_corruption_allows_a_rise_of_at_most_the_tolerance():
    per_model = pd.DataFrame([dict(name=n, corruption=p, test=t) for n, p, t in
                              [("A", 0.8, 0.52), ("A", 0.0, 0.9), ("A", 0.4, 0.5), ("B", 0.0, 0.5), ("B", 0.4, 0.6)]])
    assert summaries.falls_with_corruption(per_model, ["A", "B"]) == {"A": True, "B": False}
    assert summaries.falls_with_corruption(per_model, ["A"], rise=0.01) == {"A": False}


# ---------------------------------------------------------------------------------------------------------------
# The data-size panel

def test_sized_config():
    P = load_params("masc-decoding", "smoke")
    config = masc_config(P, P.models["MLP-MNIST"], 0.8, 0)
    assert summaries.sized_config(config, 2000, 60_000).n_train == 2000
    whole = summaries.sized_config(config, 60_000, 60_000)
    assert whole.n_train is None and whole.corruption == 0.8 and whole.model == config.model


def test_data_size_panel_references_and_growth(masc):
    panel = summaries.data_size_panel([300, 150], [np.float64(0.7), 0.5], 0.8, [1000, 150], [0.6, 0.4])
    assert list(panel.series) == [summaries.MODEL_SERIES] * 2 + ["MASC on the input, p = 0.8"] * 2
    assert summaries.input_series(0.8) == "MASC on the input, p = 0.8"
    assert all(isinstance(a, float) for a in panel.accuracy)
    assert summaries.growth(panel, summaries.MODEL_SERIES) == (150, 0.5, 300, 0.7)  # sorted by n_train
    assert summaries.growth(panel, summaries.input_series(0.8)) == (150, 0.4, 1000, 0.6)
    mlp = load_params("masc-decoding", "paper").models["MLP-MNIST"]
    refs = summaries.data_size_references(masc, mlp, "MLP-MNIST", 0.8)
    assert refs[summaries.MODEL_SERIES] == pytest.approx(masc["table3.MLP.MNIST.SGD"][0] / 100)
    assert refs[summaries.input_series(0.8)] == pytest.approx(
        masc["figure1.MLP-MNIST.p0.8.best_later_layer_test"]["value"] / 100)
    assert list(summaries.data_size_references(masc, mlp, "MLP-MNIST", 0.4)) == [summaries.MODEL_SERIES]


# ---------------------------------------------------------------------------------------------------------------
# Decoding jobs

def test_decode_seeds_and_optimizer_pairs():
    P = load_params("masc-decoding", "paper")
    assert summaries.decode_seeds(P) == [0, 1, 2]
    assert summaries.decode_seeds(load_params("masc-decoding", "paper", {"decode_seed_only": 1})) == [1]
    entries, _ = summaries.model_entries(P, available=lambda name: True)
    assert summaries.optimizer_pairs(P, entries) == [list(pair) for pair in P.optimizer_pairs]
    without_cifar, _ = summaries.model_entries(P, available=lambda name: name != "cifar10")
    assert summaries.optimizer_pairs(P, without_cifar) == [["MLP-MNIST", "MLP-MNIST-Adam"]]


@pytest.mark.parametrize("scale", ["smoke", "cpu"])
def test_decoding_jobs(scale):
    P = load_params("masc-decoding", scale)
    entries, _ = summaries.model_entries(P, available=lambda name: True)
    configs = summaries.grid_configs(P, entries)
    main, extra = list(P.models), list(P.extra_models)
    jobs = summaries.decoding_jobs(P, configs, entries, main, extra)
    for tags, config, _ in jobs:
        assert config is configs[tags["model"], tags["corruption"], tags["seed"]]
    levels = list(P.corruption_levels)
    plain = [(t, k) for t, _, k in jobs if k.get("subspaces") == ("corrupted", "true") and not k.get("random_init")]
    assert len(plain) == len(main) * len(levels) * len(P.seeds)
    assert all(k["variances"] == (tuple(P.variances) if t["model"] == P.variance_model else (0.99,)) for t, k in plain)
    induced = [(t, k) for t, _, k in jobs if k["subspaces"][0].startswith("corrupted:")]
    assert len(induced) == len(main) * len(P.seeds) and all(t["corruption"] == 0.0 for t, _ in induced)
    assert all(k["subspaces"] == tuple(f"corrupted:{p}" for p in levels if p > 0) for _, k in induced)
    control = [t for t, _, k in jobs if k.get("random_init")]
    assert sorted({t["corruption"] for t in control}) == sorted(p for p in P.control_levels if p in levels)
    assert {t["model"] for t in control} == set(main)
    extras = [t for t, _, k in jobs if k == {"subspaces": ("corrupted",)}]
    paired = {n for pair in P.optimizer_pairs for n in pair}
    assert {t["model"] for t in extras} == {n for n in extra if n in paired}
    assert {(t["model"], t["corruption"]) for t in extras} == {
        (n, p) for n in extra if n in paired for p in summaries.levels_of(entries[n], levels)}
    assert len(jobs) == len(plain) + len(induced) + len(control) + len(extras)


def test_subspace_degree():
    degrees = summaries.subspace_degree(pd.Series(["corrupted", "true", "corrupted:0.4", "corrupted:1.0"]))
    assert degrees.isna().tolist() == [True, True, False, False] and degrees.iloc[2:].tolist() == [0.4, 1.0]


# ---------------------------------------------------------------------------------------------------------------
# Per-layer summaries

def test_over_seeds_mean_and_range():
    accuracy = decodings()
    chosen = accuracy[(accuracy.subspace == "true") & (accuracy.variance == 0.99) & (accuracy.network == "trained")]
    frame = summaries.over_seeds(chosen, summaries.LAYER_KEYS)
    assert len(frame) == 2 * 3 * len(LAYERS) * len(SETS)
    row = frame[(frame.model == "M2") & (frame.corruption == 0.5) & (frame.layer_name == "FC (8)") & (frame.set == "test")].iloc[0]
    values = chosen[(chosen.model == "M2") & (chosen.corruption == 0.5) & (chosen.layer_name == "FC (8)")
                    & (chosen.set == "test")].accuracy.tolist()
    assert len(values) == 2 and row.accuracy == pytest.approx(sum(values) / 2)
    assert (row.low, row.high) == (min(values), max(values))
    assert (frame.low <= frame.accuracy).all() and (frame.accuracy <= frame.high).all()


def test_layer_order_follows_the_layer_index():
    frame = pd.DataFrame({"model": ["A", "A", "A", "B", "B"], "layer_index": [2, 0, 1, 1, 0],
                          "layer_name": ["FC (16)", "Input", "FC (8)", "FC (8)", "Input"]})
    assert summaries.layer_order(frame) == ["Input", "FC (8)", "FC (16)"]


def test_model_references():
    per_model = per_model_frame()
    refs = summaries.model_references(per_model, ["M2"], {"model test": "test", "early": "best_test"})
    assert len(refs) == 3 * 2 and set(refs.model) == {"M2"} and set(refs.reference) == {"model test", "early"}
    early = refs[(refs.reference == "early") & (refs.corruption == 0.5)].value.iloc[0]
    assert early == pytest.approx(0.55)
    other = summaries.model_references(per_model, ["M1"], {"t": "test"}, corruption_column="p")
    assert list(other.columns) == ["model", "p", "reference", "value"]


def test_figure_1_and_2_frames():
    accuracy = decodings()
    trained = summaries.trained_decodings(accuracy)
    assert set(trained.network) == {"trained"} and set(trained.variance) == {0.99}
    fig1 = summaries.corrupted_subspaces(trained, ["M1"])
    assert set(fig1.model) == {"M1"} and set(fig1.set) == set(SETS) and set(fig1.corruption) == {0.0, 0.5, 1.0}
    assert fig1[(fig1.corruption == 1.0) & (fig1.layer_name == "Input") & (fig1.set == "test")].accuracy.iloc[0] == \
        pytest.approx(mean_of(accuracy, model="M1", corruption=1.0, subspace="corrupted", variance=0.99, network="trained",
                              layer_name="Input", set="test"))
    fig2 = summaries.true_subspaces(trained, ["M1", "M2"])
    assert set(fig2.set) == {"original train (true subspaces)", "test (true subspaces)",
                             "corrupted train (corrupted subspaces)", "test (corrupted subspaces)"}
    got = fig2[(fig2.model == "M2") & (fig2.corruption == 0.5) & (fig2.layer_name == "FC (16)")
               & (fig2.set == "test (true subspaces)")].accuracy.iloc[0]
    assert got == pytest.approx(mean_of(accuracy, model="M2", corruption=0.5, subspace="true", variance=0.99,
                                        network="trained", layer_name="FC (16)", set="test"))


def _figure1() -> pd.DataFrame:
    """Figure 1 for one model at p = 0.5 and p = 0.8: the input decodes best on the test set at p = 0.5."""
    rows = []
    for p, accs in {0.5: [0.9, 0.6, 0.7], 0.8: [0.3, 0.5, 0.4]}.items():
        for layer, index, acc in zip(LAYERS, range(3), accs):
            rows.append(dict(model="M1", corruption=p, layer_index=index, layer_name=layer, set="test", accuracy=acc))
            rows.append(dict(model="M1", corruption=p, layer_index=index, layer_name=layer, set="corrupted train",
                             accuracy=1.0))
    return pd.DataFrame(rows)


def test_best_layers_excludes_the_input_and_measures_the_margin():
    per_model = pd.DataFrame([dict(name="M1", corruption=0.5, test=0.65, best_test=0.8),
                              dict(name="M1", corruption=0.8, test=0.45, best_test=0.6)])
    best = summaries.best_layers(_figure1(), per_model)
    assert list(best.layer_name) == ["FC (16)", "FC (8)"]  # the input's 0.9 is not a network layer
    assert best.accuracy.tolist() == [0.7, 0.5] and best.margin.tolist() == pytest.approx([0.05, 0.05])
    assert best.input.tolist() == [0.9, 0.3] and best.best_test.tolist() == [0.8, 0.6]
    plain = summaries.best_against_model(_figure1(), per_model)
    assert plain.layer_name.tolist() == ["Input", "FC (8)"] and "best_test" not in plain


def test_margin_verdicts():
    headline = pd.DataFrame([dict(model="A", margin=0.1, accuracy=0.6, input=0.5, test=0.5),
                             dict(model="A", margin=0.2, accuracy=0.7, input=0.8, test=0.5),
                             dict(model="B", margin=-0.1, accuracy=0.4, input=0.6, test=0.5),
                             dict(model="B", margin=0.1, accuracy=0.6, input=0.5, test=0.5)])
    beats, beats_with_input, deeper = summaries.margin_verdicts(headline)
    assert beats == {"A": True, "B": False}
    assert beats_with_input == {"A": True, "B": True}
    assert deeper == {"A": False, "B": False}


def test_accuracy_at():
    fig1 = _figure1()
    assert summaries.accuracy_at(fig1, "M1", 0.5, None) == 0.9
    assert summaries.accuracy_at(fig1, "M1", 0.8, "FC (16)") == 0.4
    assert summaries.accuracy_at(fig1, "M1", 0.8, None, "corrupted train") == 1.0
    assert math.isnan(summaries.accuracy_at(fig1, "M1", 0.4, None))
    assert math.isnan(summaries.accuracy_at(fig1, "M2", 0.5, "FC (8)"))


def test_subspace_gain():
    fig1 = _figure1()
    fig2 = fig1[fig1.set == "test"].assign(set="test (true subspaces)", accuracy=lambda f: f.accuracy + 0.2)
    per_model = pd.DataFrame([dict(name="M1", corruption=p, test=0.1, best_test=0.2) for p in (0.5, 0.8)])
    gain = summaries.subspace_gain(fig2, summaries.best_layers(fig1, per_model))
    assert gain.accuracy.tolist() == pytest.approx([0.9, 0.7]) and gain.accuracy_corrupted.tolist() == [0.7, 0.5]
    assert gain.layer_name.tolist() == ["FC (16)", "FC (8)"]


def test_figure_3_induced_memorization():
    accuracy, per_model = decodings(), per_model_frame()
    fig3 = summaries.induced_frame(accuracy)
    assert set(fig3.corruption) == {0.5, 1.0} and set(fig3.set) == {"corrupted train", "test"}
    got = fig3[(fig3.model == "M1") & (fig3.corruption == 1.0) & (fig3.layer_name == "FC (8)")
               & (fig3.set == "corrupted train")].accuracy.iloc[0]
    assert got == pytest.approx(mean_of(accuracy, model="M1", subspace="corrupted:1.0", layer_name="FC (8)",
                                        set="corrupted train"))
    summary = summaries.induced_summary(fig3, per_model)
    assert len(summary) == 4 and set(summary.clean_test) == {0.9, 0.8}
    row = summary[(summary.model == "M2") & (summary.corruption == 0.5)].iloc[0]
    network = fig3[(fig3.model == "M2") & (fig3.corruption == 0.5) & (fig3.layer_name != "Input")]
    assert row.memorized == network[network.set == "corrupted train"].accuracy.max()
    assert row.test == network[network.set == "test"].accuracy.max() and row.clean_test == 0.8
    refs = summaries.model_references(per_model, ["M1"], {"model test accuracy": "test"})
    clean = summaries.clean_references(refs, [0.0, 0.5, 1.0])
    assert sorted(clean.corruption) == [0.5, 1.0] and set(clean.value) == {0.9}  # the clean model's, at every p > 0



def test_a_clean_only_grid_has_no_induced_jobs_figure_3_or_references():
    # a grid of degree 0 only (the full scale's, with its degrees overridden): nothing to corrupt the clean models'
    # labels with afterwards
    P = load_params("masc-decoding", "full", {"corruption_levels": [0.0], "control_levels": [0.0]})
    assert [p for p in P.corruption_levels if p > 0] == []
    entries, _ = summaries.model_entries(P, available=lambda name: True)
    configs = summaries.grid_configs(P, entries)
    jobs = summaries.decoding_jobs(P, configs, entries, list(P.models), list(P.extra_models))
    assert jobs and not [k for _, _, k in jobs if k["subspaces"][0].startswith("corrupted:")]
    # what decode_grid and model_summary give on such a grid: the decodings() frame and per_model at p = 0 alone
    accuracy = decodings()
    accuracy = accuracy[(accuracy.corruption == 0.0) & ~accuracy.subspace.str.startswith("corrupted:")]
    per_model = per_model_frame()
    per_model = per_model[per_model.corruption == 0.0]
    fig3 = summaries.induced_frame(accuracy)
    assert fig3.empty
    summary = summaries.induced_summary(fig3, per_model)
    assert summary.empty and list(summary.columns) == ["model", "corruption", "memorized", "test", "clean_test"]
    refs = summaries.model_references(per_model, ["M1", "M2"], {"model test accuracy": "test"})
    assert len(refs) == 2
    clean = summaries.clean_references(refs, list(P.corruption_levels))
    assert clean.empty and set(clean.columns) == set(refs.columns)
    none = summaries.model_references(per_model, ["not in the grid"], {"model test accuracy": "test"})
    assert none.empty and list(none.columns) == ["model", "corruption", "reference", "value"]

def test_early_stopping_frame():
    fig1 = _figure1()
    fig2 = fig1.assign(set=fig1.set.map({"test": "test (true subspaces)", "corrupted train": "x"}))
    frame = summaries.early_stopping_frame(fig1, fig2)
    assert frame.set.value_counts().to_dict() == {"test, corrupted subspaces (Fig. 5)": 6, "test, true subspaces (Fig. 6)": 6}


def test_control_frame_and_trained_vs_random():
    accuracy = decodings()
    control = summaries.control_frame(accuracy, ["M1", "M2"], [0.5])
    assert set(control.corruption) == {0.5}
    assert set(control.set) == {f"{n}, {s} subspaces" for n in ("trained", "random init") for s in ("corrupted", "true")}
    compared = summaries.trained_vs_random(control)
    assert len(compared) == 2 * 2 and set(compared.layers) == {len(LAYERS) - 1}  # the input is left out
    for r in compared.itertuples():
        trained = [mean_of(accuracy, model=r.model, corruption=0.5, subspace=r.subspaces, variance=0.99, network="trained",
                           layer_name=layer, set="test") for layer in LAYERS[1:]]
        random = [mean_of(accuracy, model=r.model, corruption=0.5, subspace=r.subspaces, variance=0.99,
                          network="random init", layer_name=layer, set="test") for layer in LAYERS[1:]]
        assert r.wins == sum(t > q for t, q in zip(trained, random))
        assert r.trained_best == pytest.approx(max(trained)) and r.random_best == pytest.approx(max(random))


def test_component_summary():
    rows = []
    for (subspace, p), seed, label in itertools.product([("corrupted", 0.5), ("true", 0.5), ("corrupted:0.5", 0.0)],
                                                        [0, 1], [0, 1, 2]):
        for network, variance in (("trained", 0.99), ("trained", 0.9), ("random init", 0.99)):
            n = 10 * label + seed + (100 if network != "trained" or variance != 0.99 else 0)
            rows.append(dict(model="M1", corruption=p, seed=seed, subspace=subspace, variance=variance, network=network,
                             layer_index=1, layer_name="FC (8)", label=label, n_components=n))
    frame = summaries.component_summary(pd.DataFrame(rows), ["M1"])
    assert set(frame.figure) == {"Fig. 16: corrupted subspaces", "Fig. 17: true-label subspaces",
                                 "Fig. 18: clean model, corrupted labels"}
    assert set(frame.corruption) == {0.5}  # Figure 18's degree is that of the labels corrupted afterwards
    # per class the mean over seeds 0, 1 is 10·label + 0.5: classes 0.5, 10.5, 20.5
    assert frame.n_components.tolist() == [10.5] * 3 and frame.low.tolist() == [0.5] * 3 and frame.high.tolist() == [20.5] * 3


def test_variance_frame():
    accuracy = decodings()
    frame = summaries.variance_frame(accuracy, "M1")
    assert set(frame.variance) == {"99.0% variance", "90.0% variance"}
    assert "true subspaces, corrupted train" not in set(frame.set)
    assert set(frame.set) == {"corrupted subspaces, corrupted train", "corrupted subspaces, original train",
                              "corrupted subspaces, test", "true subspaces, original train", "true subspaces, test"}
    got = frame[(frame.variance == "90.0% variance") & (frame.corruption == 1.0) & (frame.layer_name == "Input")
                & (frame.set == "true subspaces, test")].accuracy.iloc[0]
    assert got == pytest.approx(mean_of(accuracy, model="M1", corruption=1.0, subspace="true", variance=0.9,
                                        layer_name="Input", set="test"))
    assert summaries.variance_frame(accuracy, "M2").variance.unique().tolist() == ["99.0% variance"]
