"""lib.studies.protocols and lib.studies.synthesis: the papers' run configurations and the cross-paper joins."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from lib.studies import synthesis
from lib.params import load_params
from lib.studies.protocols import masc_config, theunissen_config
from lib.runs import run_key
from scipy import stats


def test_theunissen_config_is_appendix_a_and_shares_the_clean_run():
    T = load_params("theunissen-noise", "paper")
    clean = {theunissen_config(T, "mnist", noise, 0.0) for noise in T.noise_types}
    assert len(clean) == 1  # P = 0 is one run, whatever the noise type
    (c,) = clean
    assert (c.randomization, c.corruption, c.split, c.loss, c.optimizer, c.init) == (
        "none", 0.0, "theunissen", "mse", "adam", "glorot_uniform")
    noisy = theunissen_config(T, "fashion-mnist", "structured_input", 0.3)
    assert (noisy.dataset, noisy.randomization, noisy.corruption, noisy.max_epochs) == (
        "fashion-mnist", "structured_input", 0.3, 400)
    assert noisy.n_train is None and noisy.stop_train_acc is None  # the paper: all 55,000 images, 400 epochs
    smaller = theunissen_config(T, "mnist", "structured_input", 0.5, model="mlp3x100-firstbias")
    assert smaller.model == "mlp3x100-firstbias" and run_key(smaller) != run_key(theunissen_config(T, "mnist", "structured_input", 0.5))


def test_masc_config_follows_the_model_entry():
    M = load_params("masc-decoding", "paper")
    c = masc_config(M, M.models["MLP-MNIST"], 0.4, seed=2)
    assert (c.model, c.optimizer, c.lr, c.momentum, c.batch_size, c.stop_train_acc) == (
        "mlp-128-512-2048-2048", "sgd", 0.001, 0.9, 32, 0.999)
    assert (c.randomization, c.corruption, c.seed, c.n_train, c.n_test) == ("partial_labels", 0.4, 2, None, None)
    cnn = masc_config(M, M.models["CNN-Fashion-MNIST"], 0.0, seed=0)
    assert (cnn.dataset, cnn.preprocessing, cnn.optimizer) == ("fashion-mnist", "standardize", "adam")


def test_polarization_is_defined_only_with_true_and_corrupted_samples():
    assert synthesis.polarization_defined("label_noise", 0.5)
    assert not synthesis.polarization_defined("label_noise", 0.0)
    assert not synthesis.polarization_defined("label_noise", 1.0)  # Alg. 1 changes every selected label
    assert not synthesis.polarization_defined("gaussian_input", 1.0)
    assert synthesis.polarization_defined("partial_labels", 1.0)  # a uniform redraw keeps about 1/K


def test_rank_correlation_pooled_and_within_groups_can_disagree():
    # Simpson's paradox: within each group y falls with x, but the groups' levels rise together
    rows = [dict(group=g, x=10 * g + i, y=10 * g - i) for g in range(5) for i in range(4)]
    frame = pd.DataFrame(rows)
    pooled = synthesis.rank_correlation(frame, "x", "y")
    within = synthesis.rank_correlation(frame, "x", "y", within="group")
    assert pooled["rho"] > 0.8 and pooled["n"] == 20 and pooled["p_value"] < 0.01
    assert within["rho"] == pytest.approx(-1.0) and within["positive"] == 0 and within["n_groups"] == 5
    assert within["p_value"] == pytest.approx(2 * 0.5**5)  # two-sided sign test, 0 of 5 positive


def test_rank_correlation_leaves_out_constant_groups_and_nans():
    frame = pd.DataFrame(dict(group=[0, 0, 0, 1, 1, 1, 2, 2], x=[1, 2, 3, 1, 1, 1, 1, np.nan],
                              y=[1, 2, 3, 3, 2, 1, 5, 6]))
    within = synthesis.rank_correlation(frame, "x", "y", within="group")
    assert within["n_groups"] == 1 and within["rho"] == pytest.approx(1.0) and within["n"] == 7
    assert math.isnan(synthesis.rank_correlation(frame.head(2), "x", "y")["rho"])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Both papers' networks at a tiny size on real MNIST, both probes applied, in a fresh cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LIB_CACHE_DIR", str(tmp_path_factory.mktemp("runs")))
        T = load_params("theunissen-noise", "smoke", {"n_train": 80, "n_test": 100, "max_epochs": 1})
        M = load_params("masc-decoding", "smoke", {"n_test": 100})
        networks = synthesis.combine(synthesis.theunissen_networks(T, ["mnist"], ["label_noise", "gaussian_input"], [0.0, 0.5]),
                                     synthesis.masc_networks(M, "MLP-MNIST", [0.8], architecture="MASC MLP"))
        decoded = synthesis.decode_both(networks, "MASC MLP", 0.99, (0.9, 0.99))  # the MASC MLP at two variances
        metrics = synthesis.network_layer_metrics(networks)
    return networks, decoded, metrics
@pytest.mark.slow
def test_networks_of_both_papers_in_one_frame(tiny):
    networks, _, _ = tiny
    assert list(networks.network) == list(range(5)) and list(networks.columns) == synthesis.NETWORK_COLUMNS
    assert list(networks.architecture) == ["Theunissen 10x512"] * 4 + ["MASC MLP"]
    assert networks.config[0] == networks.config[2]  # P = 0: the same clean run for both noise types
    assert networks.config[4].model == "mlp-128-512-2048-2048" and networks.noise[4] == "partial_labels"
    assert networks.test_acc.between(0, 1).all()


def test_masc_is_fitted_with_true_labels_only_where_they_differ(tiny):
    networks, decoded, _ = tiny
    subspaces = decoded.groupby("network").subspace.unique().map(sorted).to_dict()
    assert subspaces == {0: ["corrupted"], 1: ["corrupted", "true"], 2: ["corrupted"], 3: ["corrupted"],
                         4: ["corrupted", "true"]}
    assert (decoded.variance == 0.99).all()
    layers = decoded[decoded.network == 1].drop_duplicates("layer").layer.tolist()
    assert layers == ["input"] + [f"fc{k}" for k in range(1, 11)]


def test_gaps_best_layers_and_the_join(tiny):
    networks, decoded, metrics = tiny
    gaps = synthesis.masc_gaps(decoded, networks)
    assert len(gaps) == len(decoded[decoded.set == "test"])
    row = gaps.iloc[7]
    expected = decoded[(decoded.network == row.network) & (decoded.layer == row.layer) & (decoded.subspace == row.subspace)
                       & (decoded.set == "test")].accuracy.item()
    assert row.masc_test_acc == expected
    assert row.gap == pytest.approx(expected - networks.test_acc[row.network])
    best = synthesis.best_hidden_layer(gaps)
    assert len(best) == 5 and "input" not in set(best.layer)
    for r in best.itertuples():
        hidden = gaps[(gaps.network == r.network) & (gaps.subspace == "corrupted") & (gaps.layer != "input")]
        assert r.masc_test_acc == hidden.masc_test_acc.max()
        assert r.beats_network == (r.masc_test_acc > networks.test_acc[r.network])
    assert len(synthesis.best_hidden_layer(gaps, "true")) == 2

    assert len(metrics) == 4 * 10 + 4  # every hidden layer of every network
    assert metrics[metrics.network == 0].mean_polarization.eq(1).all()  # no corrupted sample: trivially pure
    joined = synthesis.join_layers(gaps, metrics)
    assert len(joined) == len(metrics)
    assert joined.relative_depth.between(0, 1, inclusive="right").all()
    assert set(joined[joined.network == 4].relative_depth) == {0.25, 0.5, 0.75, 1.0}
    assert np.allclose(joined.above_chance, joined.mean_polarization - joined.chance_polarization, equal_nan=True)
@pytest.mark.slow
def test_decoding_both_papers_at_once_keeps_each_networks_rows(tiny):
    networks, decoded, _ = tiny
    alone = synthesis.decode_networks(networks)  # every network at 0.99 only
    pd.testing.assert_frame_equal(decoded, alone)  # decoding the MASC MLP at more variances keeps the 0.99 rows
    M = load_params("masc-decoding", "smoke")
    assert synthesis.masc_variances(M, M.variance_model, 0.99) == tuple(M.variances)  # the MASC chapter's decodings
    assert synthesis.masc_variances(M, "not-the-variance-model", 0.95) == (0.95,)


def test_layer_metrics_with_their_networks(tiny):
    networks, decoded, metrics = tiny
    gaps = synthesis.masc_gaps(decoded, networks)
    frame = synthesis.metrics_with_networks(metrics, gaps, networks)
    assert len(frame) == len(metrics) and "config" not in frame
    assert set(frame.columns) >= set(metrics.columns) | {"layer_name", "architecture", "train_acc", "mixed"}
    expected = {int(r.network): synthesis.polarization_defined(r.noise, r.p) for r in networks.itertuples()}
    assert frame.mixed.tolist() == [expected[n] for n in frame.network]
    assert frame.groupby("network").mixed.first().to_dict() == {0: False, 1: True, 2: False, 3: True, 4: True}


def test_subset_of_what_the_source_chapter_trains():
    assert synthesis.subset(None, [0.0, 0.5], "levels", "smoke") == [0.0, 0.5]
    assert synthesis.subset([0.5], [0.0, 0.5], "levels", "smoke") == [0.5]
    with pytest.raises(ValueError, match=r"levels \[0.3\] are not trained .* scale 'smoke'"):
        synthesis.subset([0.3, 0.5], [0.0, 0.5], "levels", "smoke")


def test_mixed_rows_and_unfitted_networks():
    networks = pd.DataFrame(dict(key=["a", "a", "b", "c", "d"], noise=["label_noise", "gaussian_input", "gaussian_input",
                                                                       "partial_labels", "label_noise"],
                                 p=[0.0, 0.0, 1.0, 1.0, 0.5], train_acc=[0.5, 0.5, 1.0, 0.2, 0.995]),
                            index=[10, 11, 12, 13, 14])
    assert synthesis.mixed(networks).to_dict() == {10: False, 11: False, 12: False, 13: True, 14: True}
    unfit = synthesis.unfitted(networks, 0.99)
    assert unfit.key.tolist() == ["a", "c"]  # the clean run "a" once, though two noise types share it


def best_layers() -> tuple[pd.DataFrame, pd.DataFrame]:
    """best_hidden_layer-like rows: three networks with training labels (one clean), two with true labels."""
    best = pd.DataFrame(dict(network=[0, 1, 2], noise=["label_noise"] * 3, p=[0.0, 0.5, 1.0],
                             dataset=["MNIST"] * 3, test_acc=[0.9, 0.6, 0.1], masc_test_acc=[0.92, 0.7, 0.3],
                             input_acc=[0.8, 0.75, 0.2]))
    true = pd.DataFrame(dict(network=[1, 2], noise=["label_noise"] * 2, p=[0.5, 1.0], dataset=["MNIST"] * 2,
                             test_acc=[0.6, 0.1], masc_test_acc=[0.65, 0.5], input_acc=[0.85, 0.82]))
    return best, true


def test_accuracy_curves_of_figure_s1():
    best, true = best_layers()
    curves = synthesis.accuracy_curves(best, true, ["dataset", "p"])
    assert list(curves.columns) == ["dataset", "p", "accuracy", "series"]
    by_series = {name: part.set_index("p").accuracy.to_dict() for name, part in curves.groupby("series")}
    assert by_series["network"] == {0.0: 0.9, 0.5: 0.6, 1.0: 0.1}
    assert by_series["MASC best layer, training labels"] == {0.0: 0.92, 0.5: 0.7, 1.0: 0.3}
    assert by_series["MASC input, training labels"] == {0.0: 0.8, 0.5: 0.75, 1.0: 0.2}
    # the true-label curves start at the clean network, where training and true labels are the same
    assert by_series["MASC best layer, true labels"] == {0.0: 0.92, 0.5: 0.65, 1.0: 0.5}
    assert by_series["MASC input, true labels"] == {0.0: 0.8, 0.5: 0.85, 1.0: 0.82}


def test_true_labels_against_training_labels():
    best, true = best_layers()
    assert synthesis.true_at_least_training(true, best).to_dict() == {1: False, 2: True}


def masc_layers() -> pd.DataFrame:
    """mean_over_seeds-like rows of a 4-layer MLP at p = 0.4 and 0.8: polarization peaks at layer 3 at p = 0.4
    and at layer 1 at p = 0.8; cosine rises with depth."""
    polarization = {0.4: [0.2, 0.3, 0.6, 0.5], 0.8: [0.7, 0.4, 0.3, 0.2]}
    return pd.DataFrame([dict(p=p, depth=k, layer_name=f"L{k}", mean_polarization=values[k - 1],
                              chance_polarization=0.25, mean_cosine=0.1 * k + p / 10)
                         for p, values in polarization.items() for k in range(1, 5)])


def test_polarization_and_cosine_of_the_masc_mlp_by_degree():
    layers = masc_layers()
    seeds = pd.concat([layers.assign(mean_polarization=layers.mean_polarization + d, network=n)
                       for n, d in ((0, -0.1), (1, 0.1))])
    pd.testing.assert_frame_equal(synthesis.mean_over_seeds(seeds)[layers.columns], layers, check_exact=False)
    early, late = synthesis.halves_by_degree(layers)
    assert early.to_dict() == pytest.approx({0.4: 0.25, 0.8: 0.55})  # layers 1-2
    assert late.to_dict() == pytest.approx({0.4: 0.55, 0.8: 0.25})  # layers 3-4
    first, last = synthesis.first_last_cosine(layers)
    assert first == pytest.approx(np.mean([0.1 + 0.04, 0.1 + 0.08])) and last == pytest.approx(np.mean([0.44, 0.48]))
    assert synthesis.most_polarized_layer(layers).to_dict() == {0.4: "L3", 0.8: "L1"}


def test_label_noise_depth_curves_of_figure_s4():
    rows = [dict(network=n, architecture=arch, noise=noise, p=p, mixed=mixed, depth=k, above_chance=0.1 * k + n,
                 **{"data set": "MNIST"})
            for n, arch, noise, p, mixed, depths in ((0, "A", "label_noise", 0.5, True, 2), (1, "A", "label_noise", 0.5, True, 2),
                                                     (2, "B", "partial_labels", 0.8, True, 4),
                                                     (3, "A", "gaussian_input", 0.5, True, 2),
                                                     (4, "A", "label_noise", 0.0, False, 2))
            for k in range(1, depths + 1)]
    curves = synthesis.label_noise_depth_curves(pd.DataFrame(rows))
    assert set(curves.model) == {"A, MNIST", "B, MNIST"}  # input noise and the clean network are left out
    a = curves[curves.model == "A, MNIST"]
    assert a.degree.unique().tolist() == ["p = 0.5"]
    assert a.set_index("relative_depth").above_chance.to_dict() == pytest.approx({0.5: 0.6, 1.0: 0.7})  # networks 0, 1
    b = curves[curves.model == "B, MNIST"]
    assert b.relative_depth.tolist() == [0.25, 0.5, 0.75, 1.0] and b.degree.unique().tolist() == ["p = 0.8"]


def joined_layers() -> pd.DataFrame:
    """join_layers-like rows: in group "up" (networks 0, 1) the gap rises with polarization, in "down" (network 2)
    it falls; depth order is polarization's in "up" and the reverse in "down"."""
    rows = []
    for network, group, sign in ((0, "up", 1), (1, "up", 1), (2, "down", -1)):
        for k in range(1, 5):
            rows.append(dict(network=network, group=group, layer=f"fc{k}", relative_depth=k / 4,
                             mean_polarization=0.1 * k * sign + network, gap=0.01 * k + 0.1 * network))
    return pd.DataFrame(rows)


def test_correlations_pooled_within_and_against_depth():
    joined = joined_layers()
    pooled, within, depth = synthesis.correlations(joined, ["mean_polarization", "relative_depth"])
    assert list(pooled) == ["all networks", "down", "up"]
    assert pooled["all networks"]["mean_polarization"]["rho"] == pytest.approx(
        stats.spearmanr(joined.mean_polarization, joined.gap).statistic)
    assert within["up"]["mean_polarization"]["rho"] == pytest.approx(1.0)
    assert within["down"]["mean_polarization"]["rho"] == pytest.approx(-1.0)
    overall = within["all networks"]["mean_polarization"]
    assert (overall["positive"], overall["negative"], overall["n_groups"]) == (2, 1, 3)
    assert within["all networks"]["relative_depth"]["rho"] == pytest.approx(1.0)
    assert depth["up"]["rho"] == pytest.approx(1.0) and depth["down"]["rho"] == pytest.approx(-1.0)


def test_most_polarized_layer_against_the_best_decoding_layer():
    agree = synthesis.most_polarized_is_best(joined_layers())
    assert agree.to_dict() == {0: True, 1: True, 2: False}  # network 2: most polarized fc1, largest gap fc4


def test_a_masc_margin_counts_only_beyond_two_standard_errors():
    better = pd.Series([0.60, 0.56, 0.90, 0.50], index=[3, 4, 5, 6])
    worse = pd.Series([0.50, 0.50, 0.89, 0.55], index=[3, 4, 5, 6])
    # on 1,000 test images 2 SE of a difference near 50% is about 4.4 points, near 90% about 2.7
    beyond = synthesis.beyond_noise(better, worse, 1000)
    assert beyond.to_dict() == {3: True, 4: True, 5: False, 6: False}
    assert synthesis.beyond_noise(better, worse, 100).to_dict() == {3: False, 4: False, 5: False, 6: False}


def test_protocols_of_both_papers_networks_against_the_papers():
    T, M = load_params("theunissen-noise", "smoke"), load_params("masc-decoding", "smoke")
    theunissen = synthesis.theunissen_protocol(T, load_params("theunissen-noise", "paper"),
                                               pd.DataFrame(dict(train_acc=[0.3, 1.0])))
    assert theunissen.paper["epochs"] == "no stopping rule or 400 epochs"
    assert {d.split(":")[0] for d in theunissen.departures()} == {"training images", "test images", "epochs", "seeds"}
    paper = load_params("masc-decoding", "paper")
    spec = M.models["MLP-MNIST"]
    unfit = synthesis.masc_protocol(M, paper, "MLP-MNIST", [0], pd.DataFrame(dict(train_acc=[0.5])))
    assert unfit.paper["epochs"] == "to 99.9% training accuracy or 500 epochs" and unfit.paper["seeds"] == "3"
    assert f"epochs: to 99.9% training accuracy or {spec['max_epochs']} epochs (paper: to 99.9% training accuracy " \
           "or 500 epochs)" in unfit.departures()
    # every run reached the paper's stopping rule: its own cap did not bind, so the epochs are the paper's
    fitted = synthesis.masc_protocol(M, paper, "MLP-MNIST", [0], pd.DataFrame(dict(train_acc=[0.9995])))
    assert not any(d.startswith("epochs:") for d in fitted.departures())
    assert synthesis.masc_protocol(paper, paper, "MLP-MNIST", paper.seeds, pd.DataFrame(dict(train_acc=[1.0]))).at_protocol
