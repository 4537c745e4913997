"""lib.protocols and lib.studies.synthesis: the papers' run configurations and the cross-paper joins."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from lib.studies import synthesis
from lib.params import load_params
from lib.protocols import masc_config, theunissen_config
from lib.runs import run_key


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
        decoded = synthesis.decode_networks(networks)
        metrics = synthesis.network_layer_metrics(networks)
    return networks, decoded, metrics


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
