"""The double-descent chapter's curves and measures (lib.studies.weng2019.risk_curves): the curve with reuse joined
from the chain and the fresh sweep, seeds averaged, Figure 4's peak ratios and Figure 2's peak, on synthetic curves
and on a tiny real sweep."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from lib.papers import paper
from lib.params import load_params
from lib.studies.weng2019 import double_descent as dd
from lib.studies.weng2019 import risk_curves


def curve(widths, **values) -> dict:
    """A synthetic network curve: every field of CURVE_FIELDS, each quantity given or derived from the width."""
    out = {"width": list(widths), "params": [dd.n_params(w) for w in widths]}
    for k in risk_curves.CURVE_FIELDS[2:]:
        out[k] = list(values.get(k, [float(w) for w in widths]))
    return out


def test_the_curve_with_reuse_is_the_chain_then_the_fresh_widths_at_or_above_the_threshold():
    fresh = curve([2, 4, 8, 16], test_loss=[1.0, 2.0, 3.0, 4.0])
    chain = curve([2, 4], test_loss=[10.0, 20.0])
    joined = risk_curves.join_reuse(chain, fresh, limit=8)
    assert joined["width"] == [2, 4, 8, 16]
    assert joined["test_loss"] == [10.0, 20.0, 3.0, 4.0]  # the chain below, the fresh networks from the limit on
    assert set(joined) == set(risk_curves.CURVE_FIELDS)
    alone = risk_curves.join_reuse(None, fresh, limit=5)  # no width below the threshold: the fresh sweep above it
    assert alone["width"] == [8, 16] and alone["test_loss"] == [3.0, 4.0]


def test_seeds_are_averaged_width_by_width():
    a = curve([3, 7], test_loss=[0.5, 0.9], train_error=[0.1, 0.0])
    b = curve([3, 7], test_loss=[0.7, 0.3], train_error=[0.3, 0.0])
    mean = risk_curves.average_seeds([a, b]).set_index("width")
    assert list(mean.index) == [3, 7] and list(mean.params) == [dd.n_params(3), dd.n_params(7)]
    assert mean.loc[3, "test_loss"] == pytest.approx((0.5 + 0.7) / 2)
    assert mean.loc[7, "test_loss"] == pytest.approx((0.9 + 0.3) / 2)
    assert mean.loc[3, "train_error"] == pytest.approx(0.2)


def frame(params, test_loss, train_error=None) -> pd.DataFrame:
    return pd.DataFrame({"params": params, "test_loss": test_loss,
                         "train_error": train_error if train_error is not None else [0.0] * len(params)})


def test_peak_ratios_take_the_largest_loss_near_the_threshold_over_the_smallest_below_it():
    threshold = 1000
    # under n K / 1.25 = 800: 100, 200, 500; within a factor 1.25: 900, 1100; beyond: 5000
    f = frame([100, 200, 500, 900, 1100, 5000], [0.9, 0.4, 0.6, 1.5, 1.2, 0.3],
              train_error=[0.5, 0.2, 0.1, 0.02, 0.01, 0.0])
    r = risk_curves.peak_ratios(f, threshold)
    assert (r["n_under"], r["n_near"]) == (3, 2)
    assert (r["under_min"], r["under_min_params"]) == (0.4, 200)
    assert (r["peak"], r["peak_params"]) == (1.5, 900)
    assert (r["widest"], r["widest_params"]) == (0.3, 5000)
    assert r["peak_ratio"] == pytest.approx(1.5 / 0.4) and r["widest_ratio"] == pytest.approx(0.3 / 0.4)
    assert r["near_train_error"] == 0.02  # the worst-fitted net in the window
    assert r["train_error_at_peak"] == 0.02 and r["widest_train_error"] == 0.0


def test_peak_ratios_fall_back_to_the_width_closest_to_the_threshold_and_count_the_empty_windows():
    # nothing below n K / 1.25 = 800; 850 is within a factor 1.25 of n K = 1000
    f = frame([850, 2000, 9000], [0.5, 0.8, 0.2])
    r = risk_curves.peak_ratios(f, 1000)
    assert (r["n_under"], r["n_near"]) == (0, 1)
    assert r["under_min_params"] == 850  # no under-parameterized width: the smallest stands in
    g = frame([100, 300, 2000, 9000], [0.5, 0.4, 0.8, 0.2])
    r = risk_curves.peak_ratios(g, 1000)
    assert r["n_near"] == 0 and np.isnan(r["near_train_error"])
    closest = min([100, 300, 2000, 9000], key=lambda p: abs(np.log(p) - np.log(1000)))
    assert r["peak_params"] == closest == 2000


def test_the_ratio_table_sets_our_curves_beside_belkin_et_als_figure_4():
    belkin = paper("belkin2019")
    ratios = {"with reuse (Belkin)": {"under_min": 0.2, "peak": 0.5, "widest": 0.1, "peak_ratio": 2.5,
                                      "widest_ratio": 0.5}}
    table = risk_curves.ratio_table(ratios, belkin)
    assert list(table.index[:1]) == ["with reuse (Belkin)"] and len(table) == 3
    assert table.loc["with reuse (Belkin)", "peak / minimum"] == 2.5
    reuse = table.loc["Belkin et al., Figure 4, with reuse (read off the figure)"]
    loss = "fig4.reuse.test_loss"
    assert reuse["near n·K"] == belkin[f"{loss}.threshold"]
    assert belkin[f"{loss}.threshold"] == 0.55 and belkin[f"{loss}.minimum"] == 0.28  # read off Belkin's Figure 4
    assert reuse["peak / minimum"] == 1.96  # 0.55 / 0.28
    assert risk_curves.belkin_ratios(belkin)["widest_ratio"] == pytest.approx(0.19 / 0.28)
    noreuse = table.loc["Belkin et al., Figure 4, without reuse (read off the figure)"]
    under = belkin["fig4.noreuse.test_loss.under"]
    assert noreuse["test loss, under-param. minimum"] == pytest.approx(sum(under) / len(under))
    assert noreuse["peak / minimum"] > 1  # Belkin et al.'s curve without reuse still bumps at n K


def test_weng_trained_for_the_epochs_her_text_quotes():
    assert risk_curves.quoted_epochs("SGD, step 0.1, for 1,500 epochs, then 20 epochs of fine-tuning") == 20
    assert risk_curves.quoted_epochs("up to 6,000 epochs") == 6000
    her = risk_curves.quoted_epochs(paper("weng2019")["risk_curve.optimizer"])
    assert her == load_params("weng-double-descent", "paper").weng.training.epochs  # the paper scale runs her 500


def test_the_random_feature_peak_is_where_the_test_loss_is_largest():
    rff = risk_curves.rff_table({"features": [50, 100, 200, 400], "train_loss": [1, 0.5, 0, 0],
                                 "train_error": [0.2, 0.1, 0, 0], "test_loss": [0.8, 0.6, 9.0, 0.4],
                                 "test_error": [0.3, 0.25, 0.5, 0.2], "norm": [1, 2, 50, 3],
                                 "seconds": 1.0, "settings": {}, "cached": True})
    assert list(rff.columns) == list(risk_curves.RFF_FIELDS)
    summary = risk_curves.rff_peak(rff, n=200)
    assert summary["peak"].features == 200 and summary["peak"].norm == 50
    assert summary["largest"].features == 400 and summary["minimum"] == 0.4
    assert summary["under_best"] == 0.6  # the best N < n


@pytest.fixture
def one_thread():
    """Small products on a shared 2-core machine run many times faster on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_network_curves_train_the_four_curves_once_and_join_reuse_to_the_fresh_sweep(isolated_cache, one_thread):
    training = {"epochs": 1, "lr": 0.001, "optimizer": "adam", "batch_size": 100, "lr_decay": 0.9,
                "lr_decay_every": 1, "stop_at_zero_error": True}
    params = load_params("weng-double-descent", "smoke", {
        "n_train": 200, "n_test": 100, "widths": [1, 2, 6], "training": training, "chain_epochs": 2,
        "weng": {"widths": [1, 3], "training": {**training, "loss_on": "softmax"}}})
    limit = dd.threshold_width(200)
    assert 2 < limit < 6  # widths 1 and 2 are below the threshold: the reuse chain
    runs = risk_curves.network_curves(params)
    assert set(runs) == set(risk_curves.SETTINGS) and all(len(c) == 1 for c in runs.values())
    fresh, reuse = runs["without reuse"][0], runs["with reuse (Belkin)"][0]
    assert reuse["width"] == [1, 2, 6] and runs["Weng's setting"][0]["width"] == [1, 3]
    assert reuse["test_loss"][2] == fresh["test_loss"][2]  # above the threshold: the very same fresh network
    assert reuse["epochs"][:2] == [2, 2] and fresh["epochs"][:2] == [1, 1]  # the chain has its own budget
    entries = [p for p in (isolated_cache / "double-descent").iterdir() if (p / "manifest.json").is_file()]
    stored = [json.loads((p / "manifest.json").read_text())["settings"] for p in entries]
    assert sorted(s["reuse"] for s in stored) == ["chain", "chain", "none", "none"]  # fresh, chain, noise, Weng
    # each curve is keyed on its training as the parameter file wrote it, a plain mapping
    assert {json.dumps(s["spec"], sort_keys=True) for s in stored} == {json.dumps(spec, sort_keys=True) for spec in (
        training, {**training, "epochs": 2}, {**training, "loss_on": "softmax"})}
    again = risk_curves.network_curves(params)
    assert all(c["cached"] for name, cs in again.items() if name != "with reuse (Belkin)" for c in cs)
    assert again["label noise"][0]["test_loss"] == runs["label noise"][0]["test_loss"]
