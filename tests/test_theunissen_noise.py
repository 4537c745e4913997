"""lib.studies.theunissen2019.noise: the Theunissen chapter's analysis (the grid, Figures 1-7), on small
hand-made tables whose answers are computed here another way."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from lib.params import load_params
from lib.runs import run_key
from lib.studies.theunissen2019 import noise
from lib.studies.theunissen2019.noise import NOISE_NAMES
from lib.studies.theunissen2019.protocol import theunissen_config

LABEL, GAUSS, STRUCT = (NOISE_NAMES[k] for k in ("label_noise", "gaussian_input", "structured_input"))


@pytest.fixture(scope="module")
def P():
    return load_params("theunissen-noise", "smoke")


# --- the runs ---------------------------------------------------------------------------------------------------

def test_the_grid_has_one_clean_run_per_data_set(P):
    settings = noise.grid_settings(P)
    levels = P.corruption_levels
    assert len(settings) == len(P.datasets) * len(P.noise_types) * len(levels)
    assert settings[0] == (P.datasets[0], P.noise_types[0], levels[0])
    configs = noise.grid_configs(P, settings)
    noisy = [p for p in levels if p > 0]
    assert len(configs) == len(P.datasets) * (1 + len(P.noise_types) * len(noisy))  # P = 0 shared by the noise types
    assert len({run_key(c) for c in configs}) == len(configs)
    assert set(configs) == {theunissen_config(P, *s) for s in settings}


def test_selected_networks_keep_the_best_seed_of_each_setting(P):
    settings = noise.grid_settings(P)
    configs = noise.grid_configs(P, settings)
    rows = []
    for index, config in enumerate(configs):  # two seeds per run: seed 1 fits better at odd indices
        for seed in (0, 1):
            better = (index % 2 == 1) == (seed == 1)
            rows.append(dict(setting=index, seed=seed, best=better, config=config, epochs=3 + seed,
                             final_train_acc=0.9 + 0.05 * better + 0.001 * index, final_test_acc=0.5 + 0.01 * index))
    results = noise.selected_networks(pd.DataFrame(rows), settings, P)
    assert len(results) == len(settings)
    for (d, kind, p), row in zip(settings, results.itertuples()):
        index = configs.index(theunissen_config(P, d, kind, p))
        assert (row.dataset, row.noise, row.P) == (noise.DATASET_NAMES[d], NOISE_NAMES[kind], p)
        assert row.seed == (1 if index % 2 else 0) and row.config == configs[index]
        assert row.train_acc == pytest.approx(0.95 + 0.001 * index)
        assert row.gap == pytest.approx(row.train_acc - (0.5 + 0.01 * index))
    clean = results[(results.P == 0) & (results.dataset == noise.DATASET_NAMES[P.datasets[0]])]
    assert len(clean) == len(P.noise_types) and clean.config.nunique() == 1


def test_figure_runs_change_only_their_own_settings(P):
    f1, f4 = P.figure1, P.figure4
    one = noise.figure1_config(P)
    assert (one.dataset, one.model, one.lr, one.max_epochs, one.stop_train_acc) == (
        "random-vectors", f1.model, f1.lr, f1.max_epochs, f1.stop_train_acc)
    assert (one.loss, one.optimizer, one.init, one.batch_size, one.randomization) == (
        "mse", "adam", P.init, P.batch_size, "none")
    four = noise.figure4_config(P)
    grid_run = theunissen_config(P, f4.dataset, "structured_input", f4.corruption).to_dict()
    own = {"model": f4.model, "n_train": f4.n_train, "max_epochs": f4.max_epochs, "stop_train_acc": f4.stop_train_acc}
    assert {k: v for k, v in four.to_dict().items() if k not in own} == {k: v for k, v in grid_run.items() if k not in own}
    assert {k: four.to_dict()[k] for k in own} == own
    assert (four.randomization, four.corruption) == ("structured_input", f4.corruption)


def test_fitted_all_requires_every_network_to_fit():
    what, criterion = noise.fitted_all(pd.DataFrame(dict(train_acc=[1.0, 0.995])), 0.99, "network of the grid")
    assert criterion.holds() and what.startswith("every network of the grid fitted") and "99%" in what
    assert not noise.fitted_all(pd.DataFrame(dict(train_acc=[1.0, 0.98])), 0.99, "net")[1].holds()
    assert not noise.fitted_all(pd.DataFrame(dict(train_acc=[])), 0.99, "net")[1].holds()  # no network: not tested


def test_grid_protocol_lists_each_departure_from_appendix_a(P):
    paper = load_params("theunissen-noise", "paper")
    unfitted = pd.DataFrame(dict(train_acc=[0.5, 1.0]))
    distance = noise.grid_protocol(P, paper, unfitted)
    assert [d.split(":")[0] for d in distance.departures()] == ["training images", "test images", "epochs", "seeds"]
    assert distance.paper["training images"] == "all 55,000" and distance.paper["test images"] == "all 10,000"
    assert distance.ours["training images"] == f"{P.n_train:,}" and distance.paper["epochs"].endswith("400 epochs")
    # a grid that fitted every label reached its stopping rule: still a departure (Appendix A trains 400 epochs), and
    # one initialization is then what the paper's "keep the best fit" would have kept
    fitted = noise.grid_protocol(P, paper, pd.DataFrame(dict(train_acc=[1.0, 1.0])))
    assert "reached" in fitted.ours["epochs"] and any(d.startswith("epochs:") for d in fitted.departures())
    assert not any(d.startswith("seeds:") for d in fitted.departures()) and fitted.equivalences()[0].startswith("seeds")
    assert noise.grid_protocol(paper, paper, pd.DataFrame(dict(train_acc=[0.995]))).at_protocol


# --- Figure 1 ---------------------------------------------------------------------------------------------------

def test_feature_spaces_are_named_and_their_separation_read_in_order():
    assert [noise.feature_space_name(n) for n in ("input", "fc1", "fc10", "output")] == [
        "input", "hidden 1", "hidden 10", "output"]
    projection = pd.DataFrame(dict(layer=["input"] * 2 + ["fc1"] * 2 + ["output"] * 2,
                                   class_separation=[0.1, 0.1, 0.4, 0.4, 0.9, 0.9]))
    projection["feature space"] = projection.layer.map(noise.feature_space_name)
    separation = noise.class_separation(projection)
    assert list(separation.index) == ["input", "hidden 1", "output"]
    assert separation.tolist() == [0.1, 0.4, 0.9]


def test_separation_chance_is_the_quantile_of_the_share_over_random_classes():
    from lib.models import build_model
    from lib.studies.theunissen2019.probes import between_class_variance_share

    torch.manual_seed(0)
    model = build_model("mlp4x100-firstbias", (50,), 5, 0)
    x, y = torch.randn(100, 50), torch.arange(100) % 5
    chance = noise.separation_chance(model, x, y, permutations=300, quantile=0.9, seed=3)
    assert list(chance.index) == ["input", "hidden 1", "hidden 2", "hidden 3", "hidden 4", "output"]
    generator = torch.Generator().manual_seed(3)  # the same reassignments, one share at a time
    shares = [between_class_variance_share(x, y[torch.randperm(100, generator=generator)]) for _ in range(300)]
    assert chance["input"] == pytest.approx(float(np.quantile(shares, 0.9)))
    # random classes of 100 points score about (K - 1) / (n - 1) of the variance; true groups score far more
    assert 4 / 99 < chance["input"] < 0.1
    grouped = x + 5 * torch.nn.functional.one_hot(y, 50).float()
    assert between_class_variance_share(grouped, y) > noise.separation_chance(model, grouped, y, 300)["input"]


# --- Figure 2 ---------------------------------------------------------------------------------------------------

def test_linear_fit_is_the_least_squares_line_and_its_r2():
    exact = pd.DataFrame(dict(P=[0.0, 0.5, 1.0], gap=[0.1, 0.25, 0.4]))
    slope, r2 = noise.linear_fit(exact)
    assert slope == pytest.approx(0.3) and r2 == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    noisy = pd.DataFrame(dict(P=np.linspace(0, 1, 11), gap=rng.random(11)))
    slope, r2 = noise.linear_fit(noisy)
    x, y = noisy.P.to_numpy(), noisy.gap.to_numpy()
    assert slope == pytest.approx(np.cov(x, y, bias=True)[0, 1] / x.var())
    assert r2 == pytest.approx(np.corrcoef(x, y)[0, 1] ** 2)  # a simple regression's R² is the squared correlation


LEVELS = [0.0, 0.25, 0.5, 0.75, 1.0]


def gap_results(structured_offset: float = 0.0) -> pd.DataFrame:
    """Two data sets; label gap 0.8 P (+0.1 on Fashion-MNIST); Gaussian flat to P = 0.5 then rising; structured the
    Gaussian gap plus ``structured_offset`` where P > 0."""
    rows = []
    for dataset, base in (("MNIST", 0.0), ("Fashion-MNIST", 0.1)):
        for p in LEVELS:
            gauss = base + (0.02 * p if p <= 0.5 else 0.3 * p)
            rows += [dict(dataset=dataset, noise=LABEL, P=p, gap=base + 0.8 * p),
                     dict(dataset=dataset, noise=GAUSS, P=p, gap=gauss),
                     dict(dataset=dataset, noise=STRUCT, P=p, gap=gauss + (structured_offset if p > 0 else 0.0))]
    return pd.DataFrame(rows)


def test_label_noise_fits_per_data_set():
    fits = noise.label_noise_fits(gap_results())
    assert list(fits.index) == ["MNIST", "Fashion-MNIST"]
    assert fits.slope.tolist() == pytest.approx([0.8, 0.8]) and fits.r2.tolist() == pytest.approx([1.0, 1.0])
    assert fits.gap_first.tolist() == pytest.approx([0.0, 0.1]) and fits.gap_last.tolist() == pytest.approx([0.8, 0.9])
    assert fits.P_last.tolist() == [1.0, 1.0]


def test_input_noise_rises_over_the_clean_gap():
    rises = noise.input_noise_rises(gap_results(structured_offset=0.03))
    assert list(rises.index) == [(d, n) for d in ("MNIST", "Fashion-MNIST") for n in (GAUSS, STRUCT)]
    gauss = rises.loc[("MNIST", GAUSS)]
    assert gauss.harmless_until == 0.5  # 0.02 P stays within 5 points up to 0.5; 0.3 · 0.75 does not
    assert gauss.below_one == 0.75 and gauss.rise_below_one == pytest.approx(0.3 * 0.75)
    assert gauss.label_rise_below_one == pytest.approx(0.8 * 0.75) and gauss.rise_at_one == pytest.approx(0.3)
    assert gauss.max_low_rise == pytest.approx(0.02 * 0.5)
    structured = rises.loc[("Fashion-MNIST", STRUCT)]
    assert structured.harmless_until == 0.5 and structured.max_low_rise == pytest.approx(0.01 + 0.03)
    assert math.isnan(noise.input_noise_rises(gap_results()[lambda f: f.P < 1]).rise_at_one.iloc[0])


def test_input_noise_difference_leaves_out_the_shared_clean_run():
    assert noise.input_noise_difference(gap_results(0.03)).tolist() == pytest.approx([0.03, 0.03])
    assert noise.input_noise_difference(gap_results(0.0)).tolist() == [0.0, 0.0]


def test_figure2_helpers_on_a_grid_without_some_noise_types():
    """A smaller grid (the `full` scale's: label noise only) gives empty frames or NaN, never an error."""
    label_only = gap_results()[lambda f: f.noise == LABEL]
    rises = noise.input_noise_rises(label_only)
    assert rises.empty and list(rises.index.names) == ["dataset", "noise"] and "max_low_rise" in rises.columns
    assert math.isnan(rises.max_low_rise.max())
    assert noise.input_noise_difference(label_only).isna().all()
    no_label = gap_results()[lambda f: f.noise != LABEL]
    fits = noise.label_noise_fits(no_label)
    assert fits.empty and {"r2", "slope", "gap_first"} <= set(fits.columns) and math.isnan(fits.r2.min())
    # Gaussian alone: its rows only; label noise's rise where the data set has it, NaN where it does not
    gaussian_and_label = gap_results()[lambda f: f.noise != STRUCT]
    rises = noise.input_noise_rises(gaussian_and_label)
    assert list(rises.index) == [("MNIST", GAUSS), ("Fashion-MNIST", GAUSS)]
    assert rises.label_rise_below_one.tolist() == pytest.approx([0.8 * 0.75] * 2)
    assert noise.input_noise_rises(no_label[lambda f: f.noise == GAUSS]).label_rise_below_one.isna().all()
    assert noise.input_noise_difference(gaussian_and_label).isna().all()


def test_gap_difference_se_is_that_of_two_evaluation_accuracies_nearest_half():
    frame = pd.DataFrame(dict(eval_acc=[0.9, 0.6, 0.97]))
    assert noise.gap_difference_se(frame, 2000) == pytest.approx(math.sqrt(2 * 0.6 * 0.4 / 2000))
    assert math.isnan(noise.gap_difference_se(frame.iloc[:0], 2000))


# --- Figures 3 and 6 --------------------------------------------------------------------------------------------

def cosine_layers(onsets: dict) -> pd.DataFrame:
    """A grid's layer table: per (data set, noise, P) ten layers whose mean cosine steps from 0.1 to 0.9 at the
    given onset layer (rows shuffled, so that order must come from ``depth``)."""
    rows = [dict(dataset=d, noise=n, P=p, depth=k, mean_cosine=0.9 if k >= onset else 0.1 + 0.01 * k)
            for (d, n, p), onset in onsets.items() for k in range(1, 11)]
    return pd.DataFrame(rows).sample(frac=1.0, random_state=0).reset_index(drop=True)


def test_onset_is_the_first_layer_halfway_to_the_largest_cosine():
    values = pd.DataFrame(dict(depth=[4, 1, 3, 2], mean_cosine=[0.9, 0.1, 0.6, 0.2]))
    assert noise.onset_layer(values) == 3  # halfway is 0.5: layer 3 (0.6) is the first to reach it
    assert noise.onset_layer(pd.DataFrame(dict(depth=[1, 2], mean_cosine=[0.5, 0.5]))) == 1


def test_onset_table_trends_and_means():
    onsets = {("MNIST", LABEL, 0.0): 2, ("MNIST", LABEL, 0.5): 4, ("MNIST", LABEL, 1.0): 6,
              ("MNIST", GAUSS, 0.0): 2, ("MNIST", GAUSS, 0.5): 2, ("MNIST", GAUSS, 1.0): 2,
              ("Fashion-MNIST", LABEL, 0.0): 3, ("Fashion-MNIST", LABEL, 0.5): 5, ("Fashion-MNIST", LABEL, 1.0): 4,
              ("Fashion-MNIST", GAUSS, 0.0): 5, ("Fashion-MNIST", GAUSS, 0.5): 4, ("Fashion-MNIST", GAUSS, 1.0): 3}
    table = noise.onset_table(cosine_layers(onsets))
    assert sorted(table.columns) == [0.0, 0.5, 1.0]
    assert all(table.loc[(d, n), p] == onset for (d, n, p), onset in onsets.items())
    trends = noise.onset_trends(table)
    assert trends.loc[("MNIST", LABEL)].tolist() == [2, 5.0, True, pytest.approx(1.0)]
    constant = trends.loc[("MNIST", GAUSS)]
    assert (constant.clean, constant.noisy_mean, constant.deeper) == (2, 2.0, False) and math.isnan(constant.rho)
    assert trends.loc[("Fashion-MNIST", GAUSS)].rho == pytest.approx(-1.0)
    assert trends.deeper.to_dict() == {("MNIST", LABEL): True, ("MNIST", GAUSS): False, ("Fashion-MNIST", LABEL): True,
                                       ("Fashion-MNIST", GAUSS): False}
    means = noise.mean_onset(table)
    assert means["MNIST"] == pytest.approx(np.mean([4, 2])) and means["Fashion-MNIST"] == pytest.approx(np.mean([4, 4]))


def test_early_and_late_cosine_per_data_set():
    layers = pd.DataFrame([dict(dataset=d, depth=k, mean_cosine=scale * k) for d, scale in (("A", 1.0), ("B", 2.0))
                           for k in range(1, 11)])
    early, late = noise.early_late_cosine(layers)
    assert early.to_dict() == pytest.approx({"A": 2.0, "B": 4.0})  # layers 1-3
    assert late.to_dict() == pytest.approx({"A": 8.5, "B": 17.0})  # layers 7-10


def test_early_cosine_ratio_is_per_network_on_its_own_scale():
    rows = [dict(dataset="MNIST", noise=LABEL, P=p, depth=k, mean_cosine=value)
            for p, values in ((0.0, [0.01, 0.02, 0.05, 0.1, 0.2]), (0.5, [0.3, 0.1, 0.1, 0.2, 0.4]))
            for k, value in enumerate(values, start=1)]
    ratio = noise.early_cosine_ratio(pd.DataFrame(rows))
    assert ratio.to_dict() == pytest.approx({("MNIST", LABEL, 0.0): 0.25, ("MNIST", LABEL, 0.5): 0.75})


# --- Figure 4 ---------------------------------------------------------------------------------------------------

def test_share_polarized_leaves_out_empty_sample_sets():
    polarization = torch.tensor([[0.6, 0.2, math.nan], [1.0, 0.59, math.nan]], dtype=torch.float64)
    assert noise.share_polarized(polarization) == pytest.approx(2 / 4)
    assert noise.share_polarized(polarization, threshold=0.1) == 1.0


def test_corrupted_share_of_each_sample_set():
    composition = pd.DataFrame(dict(n_true=[3, 0, 1], n_corrupted=[1, 2, 0]))
    assert noise.corrupted_share(composition).tolist() == [0.25, 1.0, 0.0]


# --- Figures 5 and 7 --------------------------------------------------------------------------------------------

def polarization_layers() -> pd.DataFrame:
    """Ten layers per (data set, noise, P): polarization rising with depth under label and Gaussian noise, falling
    under structured noise; Gaussian's early layers the most polarized; chance 0.3 everywhere."""
    rows = []
    for dataset, lift in (("MNIST", 0.0), ("Fashion-MNIST", 0.05)):
        for kind, (start, step) in {LABEL: (0.3, 0.04), GAUSS: (0.6, 0.02), STRUCT: (0.5, -0.01)}.items():
            for p in (0.0, 0.5, 1.0):
                for k in range(1, 11):
                    rows.append(dict(dataset=dataset, noise=kind, P=p, depth=k, chance_polarization=0.3,
                                     mean_polarization=1.0 if p in (0.0, 1.0) else lift + start + step * k))
    return pd.DataFrame(rows)


def test_mixed_levels_keep_only_networks_with_true_and_corrupted_samples():
    interior = noise.mixed_levels(polarization_layers())
    assert set(interior.P) == {0.5} and len(interior) == 2 * 3 * 10
    assert np.allclose(interior["above chance"], interior.mean_polarization - 0.3)
    assert noise.share_above_chance(interior) == 1.0  # every interior row of this fixture is above chance (0.3)
    below = interior.copy()
    below.loc[below.index[:15], "mean_polarization"] = 0.1  # 15 of the 60 rows fall below chance
    below.loc[below.index[15], "mean_polarization"] = 0.3  # at chance is not above it
    assert noise.share_above_chance(below) == pytest.approx(44 / 60)


def test_polarization_halves_and_what_is_read_from_them():
    interior = noise.mixed_levels(polarization_layers())
    summary = noise.polarization_halves(interior)
    assert set(summary.columns) == {"mean (early layers)", "mean (late layers)", "chance (early layers)",
                                    "chance (late layers)"}
    label = interior[(interior.dataset == "MNIST") & (interior.noise == LABEL)]
    assert summary.loc[("MNIST", LABEL), "mean (early layers)"] == pytest.approx(label[label.depth <= 5].mean_polarization.mean())
    assert summary.loc[("MNIST", LABEL), "mean (late layers)"] == pytest.approx(label[label.depth > 5].mean_polarization.mean())
    later = noise.later_more_polarized(summary)
    assert later.to_dict() == {(d, n): n != STRUCT for d in ("Fashion-MNIST", "MNIST") for n in (GAUSS, LABEL, STRUCT)}
    lower = noise.lower_early_than_gaussian(summary)
    assert list(lower.index) == [(d, n) for d in summary.index.get_level_values(0).unique() for n in (LABEL, STRUCT)]
    assert lower.all()  # Gaussian's early half (0.6 + 0.02 k) is above label's (0.3 + 0.04 k) and structured's
    other = noise.polarization_halves(interior, parts=("early half", "late half"))
    assert other["mean (early half)"].tolist() == summary["mean (early layers)"].tolist()
    # a grid without Gaussian input corruption has nothing to compare against; without structured, label only
    assert noise.lower_early_than_gaussian(summary.drop(index=GAUSS, level="noise")).empty
    assert list(noise.lower_early_than_gaussian(summary.drop(index=STRUCT, level="noise")).index) == [
        (d, LABEL) for d in summary.index.get_level_values(0).unique()]


def test_grid_layer_metrics_probe_every_selected_network(monkeypatch):
    probed = []

    def fake_metrics(config, chunk_size):
        probed.append((config, chunk_size))
        return pd.DataFrame(dict(layer=["fc1", "fc2"], depth=[1, 2], mean_cosine=[0.1 * config, 0.2 * config]))

    monkeypatch.setattr(noise, "run_layer_metrics", fake_metrics)
    results = pd.DataFrame(dict(dataset=["MNIST", "MNIST"], noise=[LABEL, GAUSS], P=[0.0, 0.5], config=[1, 2]))
    layers = noise.grid_layer_metrics(results, chunk_size=7)
    assert probed == [(1, 7), (2, 7)]
    assert layers[["noise", "P", "depth"]].values.tolist() == [[LABEL, 0.0, 1], [LABEL, 0.0, 2], [GAUSS, 0.5, 1],
                                                                [GAUSS, 0.5, 2]]
    assert layers.mean_cosine.tolist() == pytest.approx([0.1, 0.2, 0.2, 0.4]) and list(layers.index) == [0, 1, 2, 3]
