"""lib.studies.zhang2017.regularization: the runs of Table 1's and Table 4's rows, and the tables and comparisons of
Table 1, Figure 2b, Table 4 and Table 2, on the paper's numbers and small synthetic run summaries (no training)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from lib import runs
from lib.papers import paper
from lib.params import load_params, raw_params
from lib.studies.protocols import zhang_row_config
from lib.studies.zhang2017 import regularization as rg

NAN = float("nan")


@pytest.fixture(scope="module")
def zhang():
    return paper("zhang2017")


@pytest.fixture(scope="module")
def capped():
    """The smoke parameters with distinct caps, so that each rule of row_config shows in a different number."""
    models = raw_params("zhang-regularization", "smoke")["models"]
    alexnet = {**models["alexnet"], "regularized_max_epochs": 5, "augmented_max_epochs": 4}
    return load_params("zhang-regularization", "smoke", {
        "max_epochs": 2, "figure2b_test_every": 3, "table4_augmented_lr_decay": 0.5, "table4_augmented_max_epochs": 7,
        "models": {**models, "alexnet": alexnet}})


def test_row_config_caps_only_the_runs_the_randomization_chapter_does_not_share(capped):
    epochs = {row: rg.row_config(capped, "alexnet", row).max_epochs for row in ("none", "random_labels", "wd", "crop",
                                                                               "crop_wd")}
    assert epochs == {"none": 2, "random_labels": 2, "wd": 5, "crop": 4, "crop_wd": 4}
    for row in ("none", "random_labels"):  # the shared runs are the protocol's, unchanged
        assert runs.run_key(rg.row_config(capped, "alexnet", row)) == runs.run_key(zhang_row_config(capped, "alexnet", row))
    assert rg.row_config(capped, "alexnet", "wd", "table4").max_epochs == 5  # Table 4's runs are not shared
    augmented = rg.row_config(capped, "inception", "crop", "table4")
    assert (augmented.lr_decay, augmented.max_epochs, augmented.corruption) == (0.5, 7, 1.0)
    assert rg.row_config(capped, "inception", "wd", "table4").lr_decay == capped.models["inception"].lr_decay
    assert rg.row_config(capped, "inception", "none").test_every == 3  # Figure 2b's curves
    assert rg.row_config(capped, "inception_nobn", "none").test_every == 3
    assert rg.row_config(capped, "inception", "wd").test_every == rg.row_config(capped, "alexnet", "none").test_every != 3


def test_paper_rows_are_the_papers_rows_in_order_for_the_chapters_models(zhang):
    table1 = rg.paper_rows(zhang, "table1", ["inception", "alexnet", "mlp1x512"])
    assert table1[0] == ("inception", "crop_wd") and len(table1) == len(set(table1))
    assert {m for m, _ in table1} == {"inception", "alexnet", "mlp1x512"}
    assert all(f"table1.{m}.{r}.test" in zhang for m, r in table1)
    assert ("alexnet", "crop") in table1 and ("mlp1x512", "crop") not in table1
    table4 = rg.paper_rows(zhang, "table4", ["inception", "alexnet"])
    assert table4 == [("inception", "wd"), ("alexnet", "wd"), ("inception", "crop"), ("inception", "augmentation")]


def test_row_configs_and_results_read_each_rows_run_once(capped, zhang):
    table1 = [("alexnet", "none"), ("alexnet", "crop")]
    configs = rg.row_configs(capped, table1, [("alexnet", "wd")])
    assert list(configs) == [("table1", "alexnet", "none"), ("table1", "alexnet", "crop"), ("table4", "alexnet", "wd")]
    keys = [runs.run_key(c) for c in configs.values()]
    summary = pd.DataFrame({"key": keys + [keys[0]],  # a duplicate row (two rows sharing a run) is read once
                            "final_train_acc": [0.9, 0.8, 0.7, 0.0], "final_train_acc_online": [0.5, 0.4, 0.3, 0.0],
                            "model": ["alexnet"] * 4})
    results = rg.row_results(summary, configs)
    assert results[("table1", "alexnet", "none")].paper_train_acc == 0.9
    assert results[("table1", "alexnet", "crop")].paper_train_acc == 0.4  # augmented: the online accuracy (footnote 5)
    assert results[("table4", "alexnet", "wd")].paper_train_acc == 0.7


def test_paper_epochs_are_the_paper_scales_and_a_capped_run_says_so():
    paper_params = load_params("zhang-regularization", "paper")
    assert rg.paper_epochs(paper_params, "alexnet", "none") == paper_params.max_epochs
    assert rg.paper_epochs(paper_params, "inception", "crop", "table4") == paper_params.table4_augmented_max_epochs
    assert rg.paper_epochs(paper_params, "inception", "wd", "table4") == paper_params.max_epochs
    converged = pd.Series({"converged": True, "converged_epoch": 12.0, "epochs": 12, "paper_train_acc": 1.0})
    stopped = pd.Series({"converged": False, "converged_epoch": NAN, "epochs": 3, "paper_train_acc": 0.4567})
    assert rg.run_state(converged, 200) == "converged at epoch 12"
    assert rg.run_state(stopped, 200) == "stopped at its epoch cap (3) at 45.7% training accuracy (`paper` scale: up to 200)"
    assert not rg.stopped_by_cap(converged, 200) and rg.stopped_by_cap(stopped, 200)
    assert not rg.stopped_by_cap(stopped, 3)  # trained as long as the paper's setting allows: not a cap


def _history():
    return pd.DataFrame({"model": ["a"] * 4 + ["b"] * 3, "epoch": [1, 2, 3, 4, 1, 2, 3],
                         "test_acc": [0.2, NAN, 0.4, 0.3, 0.1, 0.15, NAN],
                         "train_acc_online": [0.3, 0.5, 0.6, 0.7, 0.2, 0.3, 0.4]})


def test_unregularized_accuracy_at_reads_the_last_tested_epoch_up_to_the_one_asked():
    assert rg.unregularized_accuracy_at(_history(), "a", 2) == (0.2, 1)  # epoch 2 was not tested
    assert rg.unregularized_accuracy_at(_history(), "a", 10) == (0.3, 4)
    assert rg.unregularized_accuracy_at(_history(), "b", 3) == (0.15, 2)


def _result(converged, test, epochs=4, model="a", best=None):
    return pd.Series({"model": model, "converged": converged, "final_test_acc": test, "epochs": epochs,
                      "best_test_acc": test if best is None else best, "paper_train_acc": 1.0 if converged else 0.5,
                      "final_train_acc": 1.0})


def test_regularizer_gain_at_convergence_and_at_the_same_epoch_under_a_cap():
    history = _history()
    gain, how = rg.regularizer_gain(_result(True, 0.55), _result(True, 0.41234), history)
    assert how == "both converged" and gain == pytest.approx(55 - 41.23)  # Table 1's two decimals
    gain, how = rg.regularizer_gain(_result(False, 0.5, epochs=3), _result(True, 0.9), history)
    assert how == "at epoch 3, a cap" and gain == pytest.approx(100 * (0.5 - 0.4))  # not against the final 0.9
    gain, how = rg.regularizer_gain(_result(True, 0.5, epochs=2), _result(False, 0.9), history)
    assert how == "at epoch 1, a cap" and gain == pytest.approx(30.0)


def _table1(zhang):
    rows = [("alexnet", "crop_wd"), ("alexnet", "none"), ("mlp1x512", "wd"), ("mlp1x512", "none"),
            ("mlp1x512", "random_labels")]
    results = {("table1", m, r): _result(r != "random_labels", 0.1 + 0.1 * i, model=m) for i, (m, r) in enumerate(rows)}
    return rows, rg.table1_frame(rows, results, zhang, {"alexnet": 64, "mlp1x512": 128})


def test_table1_frame_and_its_readers(zhang):
    rows, table = _table1(zhang)
    assert table["model"].tolist()[:2] == ["AlexNet", "AlexNet"] and table["training images"].tolist()[2] == 128
    assert table[["random crop", "weight decay"]].values.tolist()[:3] == [["yes", "yes"], ["no", "no"], ["no", "yes"]]
    assert table["row"].tolist()[-1] == "random labels" and not table["converged"].iloc[-1]
    assert rg.accuracy_of(table, "alexnet", "none", "ours") == pytest.approx(20.0)
    assert rg.accuracy_of(table, "alexnet", "none", "paper") == zhang["table1.alexnet.none.test"]
    assert rg.regularized_row("alexnet", rows) == "crop_wd" and rg.regularized_row("mlp1x512", rows) == "wd"
    on = {m: rg.regularized_row(m, rows) for m in ("alexnet", "mlp1x512")}
    bars = rg.table1_bars(table, on)
    assert len(bars) == 2 * 2 * 2  # models x (off, on) x (paper, ours)
    ours_on = bars[(bars.model == "MLP 1x512") & (bars.source == "ours") & (bars.regularizers == "on")]
    assert ours_on["test accuracy"].item() == pytest.approx(0.3) and ours_on["row"].item() == "wd"
    gains = rg.gains_frame(table, {"alexnet": ("crop_wd", 1.234, "both converged")}, chance=0.1)
    line = gains.iloc[0]
    assert line["ours (points)"] == 1.23 and line["ours compared"] == "both converged" and line["_model"] == "alexnet"
    assert line["paper: gain of the regularizers (points)"] == pytest.approx(
        zhang["table1.alexnet.crop_wd.test"] - zhang["table1.alexnet.none.test"], abs=0.005)
    assert line["ours: all off, above chance (points)"] == pytest.approx(10.0)


def test_the_gains_standard_error_matches_simulated_pairs_of_test_sets():
    """The chapter judges a regularizer's gain with lib.verdicts.difference_se: it is the spread of the difference of
    two accuracies measured on independent test sets."""
    from lib.verdicts import difference_se

    rng = np.random.default_rng(0)
    acc, n = 0.3, 400
    differences = (rng.binomial(n, acc, 20000) - rng.binomial(n, acc, 20000)) / n
    assert difference_se(acc, n, acc, n) == pytest.approx(differences.std(), rel=0.03)
    assert difference_se(acc, 4 * n, acc, 4 * n) == pytest.approx(difference_se(acc, n, acc, n) / 2)


def test_figure2b_curves_keep_the_tested_epochs_and_their_cumulative_best():
    history = _history().assign(model=["inception"] * 4 + ["inception_nobn"] * 3)
    history = pd.concat([history, history.iloc[:1].assign(model="alexnet")])  # another model's run is left out
    curves, n_tested = rg.figure2b_curves(history)
    assert n_tested == {"inception": 3, "inception_nobn": 2}
    inception = curves[curves.network == "Inception"]
    assert inception.epoch.tolist() == [1, 3, 4] and inception["best test so far"].tolist() == [0.2, 0.4, 0.4]
    assert list(curves.columns) == ["network", "epoch", "train", "test", "best test so far"]
    assert set(curves.network) == {"Inception", "Inception w/o BatchNorm"}


def test_batchnorm_effect_and_early_stopping():
    history = _history()
    cost, how = rg.batchnorm_effect(_result(True, 0.8, model="a"), _result(True, 0.75, model="b"), history)
    assert how == "each network at convergence" and cost == pytest.approx(5.0)
    cost, how = rg.batchnorm_effect(_result(False, 0.3, epochs=4, model="a"), _result(True, 0.1, epochs=3, model="b"),
                                    history)
    # the epoch both reached is 3: the network with BatchNorm tested there, the other's last test up to it (epoch 2)
    assert how == "both networks at epoch 3, not both converged"
    assert cost == pytest.approx(100 * (0.4 - 0.15))
    assert rg.early_stopping_gain(_result(True, 0.5, best=0.56)) == pytest.approx(6.0)
    assert rg.early_stopping_gain(_result(True, 0.5)) == 0.0


def test_table4_frame(zhang):
    rows = [("alexnet", "wd"), ("inception", "crop")]
    results = {("table4", "alexnet", "wd"): _result(False, 0.1), ("table4", "inception", "crop"): _result(True, 0.12)}
    table = rg.table4_frame(rows, results, zhang)
    assert table["regularizer"].tolist() == ["weight decay", "random cropping"]
    assert table["paper: train accuracy"].tolist() == [zhang["table4.alexnet.wd"], zhang["table4.inception.crop"]]
    assert table["_fit"].tolist() == [0.5, 1.0] and table["_converged"].tolist() == [False, True]
    assert table["ours: train accuracy"].tolist() == ["50.00%", "100.00%"]


def test_table2_is_the_papers_and_its_cost_is_images_times_epochs_times_flops(zhang):
    table = rg.table2_frame(zhang)
    expected = [(labels, s) for labels in ("true", "random") for s in rg.TABLE2_SETTINGS
                if f"table2.{labels}.{s}.top1_train" in zhang]
    assert len(table) == len(expected) and table["labels"].tolist() == [labels for labels, _ in expected]
    with_best = table[table["top-1 test (best)"].str.contains(r"\(")]
    assert len(with_best) == len([k for k in zhang.keys("table2") if k.endswith("top1_test_best")])
    cost = rg.table2_compute(zhang)
    assert cost["flops_per_image"] == 6 * zhang["table2.cost.inception_v3_multiply_adds"]
    assert math.isclose(cost["total"], cost["flops_per_image"] * zhang["table2.setup.images_train"]
                        * zhang["table2.cost.epochs_assumed"])
