"""lib.studies.zhang2017.randomization: Figure 1's runs and quantities and Table 1's unregularized rows, on small
synthetic run summaries and histories (no training)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from lib import runs
from lib.data import SIZES
from lib.params import load_params
from lib.studies.protocols import zhang_config
from lib.studies.zhang2017 import randomization as rz

NAN = float("nan")


@pytest.fixture(scope="module")
def smoke():
    return load_params("zhang-randomization", "smoke")


def test_figure1_runs_are_the_protocols_corruption_grid_and_three_pixel_randomizations(smoke):
    corruption_runs, pixel_runs = rz.figure1_runs(smoke, "mlp1x512")
    expected = [zhang_config(smoke, model, corruption=p) for model, m in smoke.models.items()
                for p in m.corruption_levels]
    assert [runs.run_key(c) for c in corruption_runs] == [runs.run_key(c) for c in expected]
    assert {c.randomization for c in corruption_runs} == {"partial_labels"}
    assert [c.randomization for c in pixel_runs] == ["shuffled_pixels", "random_pixels", "gaussian"]
    assert {(c.model, c.corruption) for c in pixel_runs} == {("mlp1x512", 1.0)}
    assert {c.model for c in rz.figure1_runs(smoke, "alexnet")[1]} == {"alexnet"}


def _summary(rows) -> pd.DataFrame:
    columns = ["model", "randomization", "corruption", "converged", "converged_step", "final_train_acc",
               "final_test_acc"]
    return pd.DataFrame(rows, columns=columns)


def test_settings_fit_orders_figure_1as_settings_and_drops_other_runs():
    summary = _summary([
        ("mlp", "gaussian", 1.0, True, 40, 1.0, 0.1), ("mlp", "partial_labels", 0.0, True, 10, 1.0, 0.5),
        ("mlp", "partial_labels", 0.5, True, 20, 1.0, 0.3),  # not a setting of Figure 1a
        ("mlp", "random_pixels", 1.0, False, NAN, 0.7, 0.1), ("mlp", "shuffled_pixels", 1.0, True, 30, 1.0, 0.1),
        ("mlp", "partial_labels", 1.0, True, 50, 1.0, 0.1), ("cnn", "partial_labels", 0.0, True, 5, 1.0, 0.6)])
    settings = rz.setting_of(summary)
    assert settings.fillna("-").tolist() == ["gaussian", "true labels", "-", "random pixels", "shuffled pixels",
                                             "random labels", "true labels"]
    fit = rz.settings_fit(summary, "mlp")
    assert list(fit.index) == list(rz.SETTINGS.values())
    assert fit.loc["true labels", "converged_step"] == 10 and fit.loc["gaussian", "converged_step"] == 40
    # random pixels never converged (NaN steps: never faster); gaussian took fewer steps than random labels
    assert rz.faster_than_random_labels(fit) == ["gaussian"]
    slower = fit.assign(converged_step=fit.converged_step.replace({40: 60}))
    assert rz.faster_than_random_labels(slower) == []


def test_relative_convergence_time_divides_by_the_same_models_clean_run_and_leaves_unconverged_nan():
    summary = _summary([("a", "partial_labels", 0.0, True, 100, 1, 0.5), ("a", "partial_labels", 1.0, True, 250, 1, 0.1),
                        ("b", "partial_labels", 0.0, True, 10, 1, 0.5), ("b", "partial_labels", 1.0, False, 99, 0.6, 0.1)])
    relative = rz.relative_convergence_time(summary)
    assert relative.relative_convergence.tolist()[:3] == [1.0, 2.5, 1.0]
    assert math.isnan(relative.relative_convergence.iloc[3])
    table = rz.slowdown_table(relative)
    assert table.loc[1.0, "a"] == 2.5 and math.isnan(table.loc[1.0, "b"])


def test_slowdown_rank_correlation_is_plus_one_for_a_rise_and_minus_one_for_a_fall():
    levels = [0.0, 0.5, 1.0]
    relative = pd.DataFrame({"corruption": levels * 3, "model": ["up"] * 3 + ["down"] * 3 + ["gap"] * 3,
                             "relative_convergence": [1.0, 1.1, 3.0, 1.0, 0.9, 0.5, 1.0, NAN, 2.0]})
    rho = rz.slowdown_rank_correlation(rz.slowdown_table(relative))
    assert rho == {"down": -1.0, "gap": 1.0, "up": 1.0}  # the NaN level of "gap" is left out


def test_loss_curve_thins_each_group_and_counts_thousands_of_steps():
    history = pd.DataFrame({"setting": ["x"] * 50 + ["y"] * 5, "epoch": list(range(1, 51)) + list(range(1, 6)),
                            "step": [100 * e for e in range(1, 51)] + [7 * e for e in range(1, 6)],
                            "train_loss": np.linspace(2, 0, 55), "train_acc": np.linspace(0, 1, 55)})
    curve = rz.loss_curve(history, "setting", max_points=10)
    x, y = curve[curve.setting == "x"], curve[curve.setting == "y"]
    assert len(x) <= 10 and x.epoch.iloc[0] == 1 and len(y) == 5  # a short curve is kept whole
    assert np.allclose(curve.thousand_steps, history.set_index(["setting", "epoch"]).loc[
        list(zip(curve.setting, curve.epoch)), "step"].to_numpy() / 1000)


def test_figure1c_curve_measures_the_rise_the_largest_drop_and_the_fit():
    errors = pd.DataFrame({"model": ["m"] * 4, "corruption": [1.0, 0.0, 0.5, 0.25],  # unsorted on purpose
                           "test_error": [0.9, 0.5, 0.6, 0.7], "final_train_acc": [0.99, 1.0, 0.98, 1.0],
                           "converged": [True, True, False, True], "final_test_acc": [0.1, 0.5, 0.4, 0.3]})
    c = rz.figure1c_curve(errors, "m")
    assert c["levels"] == 4 and c["rise"] == pytest.approx(0.4) and c["max_drop"] == pytest.approx(0.1)  # 0.7 → 0.6
    assert c["lowest_train"] == 0.98 and c["n_converged"] == 3 and c["clean_test"] == 0.5
    rising = rz.figure1c_curve(errors.assign(test_error=[0.9, 0.5, 0.8, 0.7]), "m")
    assert rising["max_drop"] == 0.0
    single = rz.figure1c_curve(errors[errors.corruption == 0.0], "m")
    assert single["levels"] == 1 and math.isnan(single["rise"]) and math.isnan(single["max_drop"])


def test_table1_rows_pair_the_papers_numbers_with_ours_where_the_level_was_run():
    errors = pd.DataFrame({"model": ["a", "a", "b"], "corruption": [0.0, 1.0, 0.0],
                           "final_train_acc": [0.123456, 1.0, 0.5], "final_test_acc": [0.654321, 0.1, 0.25]})
    paper = {f"table1.{m}.{r}.{k}": float(i) for i, (m, r, k) in enumerate(
        (m, r, k) for m in "ab" for r in ("none", "random_labels") for k in ("train", "test"))}
    rows = rz.table1_rows(errors, ["a", "b"], paper)
    assert [(r["model"], r["labels"]) for r in rows] == [("a", "true labels"), ("a", "random labels"), ("b", "true labels")]
    assert rows[0]["ours train %"] == 12.35 and rows[0]["ours test %"] == 65.43
    assert rows[1]["paper train %"] == paper["table1.a.random_labels.train"]
    assert rows[2]["paper test %"] == paper["table1.b.none.test"]


def test_data_size_configs_keep_the_decay_per_step(smoke):
    full = SIZES[smoke.dataset][0]
    model = smoke.data_sizes.models[0]
    own = smoke.models[model].n_train
    at_own = rz.data_size_config(smoke, model, own, full)
    assert runs.run_key(at_own) == runs.run_key(zhang_config(smoke, model, corruption=0.0))  # the Figure 1 run itself
    other = rz.data_size_config(smoke, model, 2 * own, full)
    assert other.n_train == 2 * own and other.lr_decay == pytest.approx(0.95 ** (2 * own / full), abs=5e-5)
    everything = rz.data_size_config(smoke, model, full, full)
    assert everything.n_train is None and everything.lr_decay == 0.95  # all of CIFAR-10: the paper's decay per epoch
    panel = rz.data_size_runs(smoke, full)
    assert list(panel) == [(m, n) for m in smoke.data_sizes.models for n in smoke.data_sizes.sizes]
    summary = pd.DataFrame({"final_test_acc": np.arange(len(panel)) / 10})
    by_size = rz.accuracy_by_size(panel, summary)
    assert by_size["n_train"].tolist() == [n for _, n in panel]
    assert by_size["test accuracy"].tolist() == summary.final_test_acc.tolist()


def test_each_network_fits_against_its_own_fit_in_table_1():
    """The 1x512 MLP's threshold is its own random-label fit in the paper (99.34%), not our 99.9% stopping rule; a
    network the paper fitted to 100% keeps the stopping rule, and a looser stopping rule wins where it is lower."""
    from lib.papers import paper

    zhang = paper("zhang2017")
    assert rz.fit_threshold(zhang, "mlp1x512", 0.999) == pytest.approx(0.9934)
    assert rz.fit_threshold(zhang, "alexnet", 0.999) == pytest.approx(0.9982)
    assert rz.fit_threshold(zhang, "mlp3x512", 0.999) == 0.999 and rz.fit_threshold(zhang, "inception", 1.0) == 1.0
    assert rz.fit_threshold(zhang, "mlp1x512", 0.95) == 0.95
    assert set(rz.FIGURE1_NETWORKS["Figure 1a"]) == {"inception"}
    assert set(rz.FIGURE1_NETWORKS["Figure 1b"]) == set(rz.FIGURE1_NETWORKS["Figure 1c"]) == {
        "inception", "alexnet", "mlp1x512"}  # the 3x512 MLP is not in Figure 1


def test_fit_steps_count_the_steps_to_each_networks_threshold_and_drive_the_slowdown():
    """A run that stopped at 99.2% after reaching 99.34% earlier is fitted at that earlier epoch; one that never got
    there has no step; epochs whose training accuracy was not evaluated never count."""
    summary = _summary([("m", "partial_labels", 0.0, True, 30, 1.0, 0.5), ("m", "partial_labels", 1.0, False, NAN, 0.992, 0.1),
                        ("m", "partial_labels", 0.5, False, NAN, 0.995, 0.3)])
    history = pd.DataFrame({
        "model": ["m"] * 7, "randomization": ["partial_labels"] * 7,
        "corruption": [0.0, 0.0, 0.5, 0.5, 0.5, 1.0, 1.0], "epoch": [1, 2, 1, 2, 3, 1, 2],
        "step": [10, 20, 10, 20, 30, 10, 20], "train_acc": [0.5, 0.9999, NAN, 0.994, 0.995, 0.9, 0.992]})
    out = rz.with_fit_steps(summary, history, {"m": 0.9934})
    assert out.fit_step.tolist()[:1] == [20] and math.isnan(out.fit_step.iloc[1]) and out.fit_step.iloc[2] == 20
    assert out.fitted.tolist() == [True, False, True] and (out.fit_threshold == 0.9934).all()
    relative = rz.relative_convergence_time(out, steps="fit_step", reached="fitted")
    assert relative.relative_convergence.iloc[0] == 1.0 and relative.relative_convergence.iloc[2] == 1.0
    assert math.isnan(relative.relative_convergence.iloc[1])
    # the stopping rule's own steps (the default) give NaN where the run did not converge
    assert math.isnan(rz.relative_convergence_time(out).relative_convergence.iloc[2])
    fit = pd.DataFrame({"fit_step": [50, 40, NAN], "converged_step": [50, 60, 70]},
                       index=["random labels", "random pixels", "gaussian"])
    assert rz.faster_than_random_labels(fit, steps="fit_step") == ["random pixels"]
    assert rz.faster_than_random_labels(fit) == []
