"""Layer robustness (lib.studies.weng2019.layer_robustness, Zhang, Bengio & Singer 2019), the run snapshots it needs
(RunConfig.save_epochs), and the chapter's runs and tables (its run configurations, the summarized table's readers)."""

from __future__ import annotations

import math
import random
import statistics
from pathlib import Path

import pandas as pd
import pytest
import torch

from lib.studies.weng2019.layer_robustness import (RERANDOMIZE, RERANDOMIZE_SEED, WENG_LAYERS, accuracy,
                                                   accuracy_table, base_error, cell, classification_error, columns,
                                                   layer_names, layers, networks, protocol_table, re_initialize,
                                                   re_randomize, re_randomize_uniform, reinit_costs, rerandomized,
                                                   robustness, run_config, run_robustness, summarize_robustness,
                                                   weng_comparison, worst_reset)
from lib.models import build_model, initialize
from lib.params import load_params, raw_params
from lib.runs import load, run, run_key
from lib.train import RunConfig, prepare_data

REPO = Path(__file__).resolve().parents[1]
SMALL = RunConfig(dataset="mnist", n_train=600, n_test=300, model="mlp2x64", preprocessing="scale",
                  init="glorot_uniform", lr=0.05, batch_size=100, max_epochs=3, stop_train_acc=None,
                  save_epochs=(0, 1, 3))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LIB_CACHE_DIR", str(tmp_path_factory.mktemp("runs")))
        result = run(SMALL, progress=False)
        reloaded = load(SMALL)
    return result, reloaded


def test_snapshots_at_requested_epochs_survive_the_cache(trained):
    result, reloaded = trained
    assert sorted(result.snapshots) == [0, 1, 3]
    # epoch 0 is the initialization the run drew, independently rebuilt here
    fresh = initialize(build_model(SMALL.model, (1, 28, 28), 10, SMALL.seed), SMALL.init, SMALL.seed).state_dict()
    for key, value in fresh.items():
        assert torch.equal(result.snapshots[0][key], value), key
    # the last requested epoch is the final model; an intermediate one differs from both ends
    for key, value in result.state_dict.items():
        assert torch.equal(result.snapshots[3][key], value), key
    assert not torch.equal(result.snapshots[1]["blocks.fc1.0.weight"], result.snapshots[0]["blocks.fc1.0.weight"])
    assert not torch.equal(result.snapshots[1]["blocks.fc1.0.weight"], result.snapshots[3]["blocks.fc1.0.weight"])
    assert sorted(reloaded.snapshots) == [0, 1, 3]
    for epoch in (0, 1, 3):
        for key, value in result.snapshots[epoch].items():
            assert torch.equal(reloaded.snapshots[epoch][key], value), (epoch, key)


def test_config_with_snapshots_round_trips_through_json():
    values = SMALL.to_dict()
    values["save_epochs"] = list(values["save_epochs"])  # what json gives back
    again = RunConfig.from_dict(values)
    assert again == SMALL and hash(again) == hash(SMALL)
    assert RunConfig().save_epochs == ()


def test_layers_lists_every_linear_with_the_output_last():
    model = build_model("mlp3x256", (1, 28, 28), 10, seed=0)
    found = layers(model)
    assert [l.name for l in found] == ["fc1", "fc2", "fc3", "output"]
    assert found[-1].params == ("blocks.output.weight", "blocks.output.bias")
    owned = [p for l in found for p in l.params]
    assert sorted(owned) == sorted(dict(model.named_parameters()))  # every parameter belongs to exactly one layer
    vgg = layers(build_model("vgg11-div8", (3, 32, 32), 10, seed=0))
    assert [l.name for l in vgg] == [f"conv{i}" for i in range(1, 9)] + ["fc1", "fc2", "output"]


def test_re_initialize_restores_exactly_one_layer(trained):
    result, _ = trained
    model = result.model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    changed = re_initialize(model, "fc2", result.snapshots[0]).state_dict()
    for key, value in changed.items():
        expected = result.snapshots[0][key] if key.startswith("blocks.fc2.") else result.state_dict[key]
        assert torch.equal(value, expected), key
    assert not torch.equal(changed["blocks.fc2.0.weight"], result.state_dict["blocks.fc2.0.weight"])
    for key, value in model.state_dict().items():  # the model given is untouched
        assert torch.equal(value, before[key]), key


def _uniform_check(weight: torch.Tensor, bound: float) -> None:
    """Drawn from U(-bound, bound): inside the bounds, std bound/√3, mean 0, and both ends reached."""
    assert float(weight.abs().max()) <= bound + 1e-7
    assert float(weight.abs().max()) > 0.98 * bound
    assert abs(float(weight.std()) - bound / math.sqrt(3)) < 0.03 * bound / math.sqrt(3)
    assert abs(float(weight.mean())) < 4 * bound / math.sqrt(3) / math.sqrt(weight.numel())


def test_re_randomize_draws_from_glorot_when_the_run_used_it(trained):
    result, _ = trained
    model = result.model()
    changed = re_randomize(model, "fc2", seed=7, init="glorot_uniform").state_dict()
    weight = changed["blocks.fc2.0.weight"]
    fan_out, fan_in = weight.shape
    _uniform_check(weight, math.sqrt(6 / (fan_in + fan_out)))
    assert torch.count_nonzero(changed["blocks.fc2.0.bias"]) == 0
    for key, value in changed.items():  # nothing else moved
        if not key.startswith("blocks.fc2."):
            assert torch.equal(value, result.state_dict[key]), key
    again = re_randomize(model, "fc2", seed=7, init="glorot_uniform").state_dict()["blocks.fc2.0.weight"]
    other = re_randomize(model, "fc2", seed=8, init="glorot_uniform").state_dict()["blocks.fc2.0.weight"]
    assert torch.equal(again, weight) and not torch.equal(other, weight)


def test_re_randomize_draws_from_pytorch_default_for_linear_and_conv():
    mlp = build_model("mlp3x256", (1, 28, 28), 10, seed=0)
    drawn = re_randomize(mlp, "fc1", seed=3).state_dict()
    bound = 1 / math.sqrt(784)  # kaiming_uniform(a=√5) gives U(±1/√fan_in), the bias U(±1/√fan_in)
    _uniform_check(drawn["blocks.fc1.0.weight"], bound)
    assert float(drawn["blocks.fc1.0.bias"].abs().max()) <= bound
    assert not torch.equal(drawn["blocks.fc1.0.weight"], mlp.state_dict()["blocks.fc1.0.weight"])
    vgg = build_model("vgg11-div8", (3, 32, 32), 10, seed=0)
    conv = re_randomize(vgg, "conv3", seed=3).state_dict()["blocks.conv3.0.weight"]
    _uniform_check(conv, 1 / math.sqrt(16 * 9))


def test_weng_uniform_variant_and_dropout_at_evaluation():
    model = build_model("mlp2x64-dropout0.1", (1, 28, 28), 10, seed=0)
    drawn = re_randomize_uniform(model, "output", seed=1).state_dict()
    weight = drawn["blocks.output.weight"]
    assert float(weight.min()) >= 0 and float(weight.max()) < 1 and abs(float(weight.mean()) - 0.5) < 0.05
    assert float(drawn["blocks.output.bias"].min()) >= 0
    data = prepare_data(RunConfig(dataset="mnist", n_train=10, n_test=500, preprocessing="scale"))
    x, y = data.x_test, data.y_test
    # without dropout the error is deterministic; with it on, the masks (hence the error) depend on the seed
    assert classification_error(model, x, y, seed=0) == classification_error(model, x, y, seed=1)
    on = {classification_error(model, x, y, dropout=True, seed=s) for s in range(4)}
    assert len(on) > 1
    assert classification_error(model, x, y, dropout=True, seed=2) == classification_error(model, x, y, dropout=True, seed=2)
    assert not model.training


def test_robustness_table(trained):
    result, _ = trained
    data = prepare_data(SMALL)
    table = robustness(result.model(), result.snapshots, data.x_test, data.y_test, init=SMALL.init, draws=2)
    assert set(table.column) == {"trained", "re-randomize", "0", "1", "3"}
    per = table[table.layer != "none"]
    assert len(per) == 3 * (2 + 3)
    # re-initializing to the last checkpoint is the trained network itself
    trained_error = float(table.loc[table.column == "trained", "error"].iloc[0])
    assert (per.loc[per.column == "3", "error"] == trained_error).all()


def test_re_randomize_draws_from_he_normal_for_a_conv_net():
    from lib.models import initialize as init_
    vgg = init_(build_model("vgg11-div8", (3, 32, 32), 10, seed=0), "he_normal", 0)
    drawn = re_randomize(vgg, "conv4", seed=5, init="he_normal").state_dict()
    weight = drawn["blocks.conv4.0.weight"]
    fan_in = weight.shape[1] * weight.shape[2] * weight.shape[3]
    assert abs(float(weight.std()) - math.sqrt(2 / fan_in)) < 0.04 * math.sqrt(2 / fan_in)
    assert abs(float(weight.mean())) < 4 * math.sqrt(2 / fan_in) / math.sqrt(weight.numel())
    # a normal, not a uniform: about 4.6% of the draws lie beyond 2 standard deviations (a uniform has none)
    beyond = float((weight.abs() > 2 * math.sqrt(2 / fan_in)).float().mean())
    assert 0.03 < beyond < 0.065
    assert torch.count_nonzero(drawn["blocks.conv4.0.bias"]) == 0
    assert not torch.equal(weight, vgg.state_dict()["blocks.conv4.0.weight"])


def test_snapshots_survive_an_interrupted_and_resumed_run(tmp_path, monkeypatch):
    from lib import train as train_module
    config = RunConfig(**{**SMALL.to_dict(), "n_train": 300, "max_epochs": 4, "save_epochs": (0, 1, 4)})
    uninterrupted = train_module.train(config, progress=False)
    checkpoint = tmp_path / "run.pt"
    calls = {"n": 0}
    real_evaluate = train_module.evaluate

    def failing_evaluate(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # during epoch 3: epochs 0 and 1 are already snapshotted and checkpointed
            raise KeyboardInterrupt
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(train_module, "evaluate", failing_evaluate)
    with pytest.raises(KeyboardInterrupt):
        train_module.train(config, checkpoint=checkpoint, checkpoint_every_s=0, progress=False)
    monkeypatch.setattr(train_module, "evaluate", real_evaluate)
    resumed = train_module.train(config, checkpoint=checkpoint, checkpoint_every_s=0, progress=False)
    assert sorted(resumed.snapshots) == [0, 1, 4]
    for epoch in (0, 1, 4):
        for key, value in uninterrupted.snapshots[epoch].items():
            assert torch.equal(resumed.snapshots[epoch][key], value), (epoch, key)


# --- the chapter's runs -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("scale", ["smoke", "cpu", "paper"])
def test_run_configs_are_the_parameter_files_nets_exactly(scale):
    """Each net's run is the file's values as written (same types: a cached run's key hashes them) with the paper's
    fixed protocol: SGD with momentum, every epoch trained and tested, the checkpoints kept."""
    P = load_params("weng-layer-robustness", scale)
    raw = raw_params("weng-layer-robustness", scale)
    nets = networks(P)
    assert list(nets) == [*raw["fc"], "weng", *raw["conv"]]
    entries = {**raw["fc"], "weng": raw["weng"], **raw["conv"]}
    for name, net in nets.items():
        entry = entries[name]
        expected = RunConfig(dataset=entry["dataset"], n_train=entry["n_train"], n_test=entry["n_test"],
                             preprocessing=entry["preprocessing"], data_seed=raw["data_seed"], model=entry["model"],
                             seed=raw["seed"], init=entry["init"], optimizer="sgd", lr=entry["lr"],
                             momentum=entry["momentum"], lr_decay=entry["lr_decay"], batch_size=entry["batch_size"],
                             max_epochs=entry["max_epochs"], stop_train_acc=None, test_every=1,
                             save_epochs=tuple(entry["checkpoints"]))
        config = run_config(net, P.seed, P.data_seed)
        assert config == expected and run_key(config) == run_key(expected), name
        for field, value in expected.to_dict().items():
            assert type(config.to_dict()[field]) is type(value), (name, field)
    other = run_config(nets["weng"], seed=3, data_seed=4)
    assert (other.seed, other.data_seed) == (3, 4) and run_key(other) != run_key(run_config(nets["weng"], 0, 0))


def test_protocol_table_has_one_row_per_net():
    P = load_params("weng-layer-robustness", "smoke")
    nets = networks(P)
    configs = {name: run_config(net, P.seed, P.data_seed) for name, net in nets.items()}
    sizes = {name: (1000 + i, 20_000 * i + 7) for i, name in enumerate(nets)}
    table = protocol_table(nets, configs, sizes)
    assert list(table.index) == [net.label for net in nets.values()]
    for (name, net), (label, row) in zip(nets.items(), table.iterrows()):
        assert row["model"] == net.model and row["data"] == net.dataset and row["init"] == net.init
        assert row["train / test images"] == "{:,} / {:,}".format(*sizes[name])
        assert row["epochs"] == net.max_epochs and row["re-randomization draws"] == net.draws
        assert row["checkpoints τ"].split(", ") == [str(c) for c in net.checkpoints]
    assert table.loc[nets["weng"].label, "train / test images"] == "1,002 / 40,007"


def test_run_robustness_scores_a_trained_run_from_its_own_initializer(trained):
    result, _ = trained
    data = prepare_data(SMALL)
    frame = run_robustness(result, data.x_test, data.y_test, draws=2, checkpoints=[0, 3])
    assert columns(frame) == [RERANDOMIZE, "0", "3"] and layer_names(frame) == ["fc1", "fc2", "output"]
    assert (rerandomized(frame)["count"] == 2).all()
    # the last checkpoint is the trained network: re-initializing any layer to it changes nothing
    assert all(cell(frame, layer, "3") == base_error(frame) for layer in layer_names(frame))
    # draws come from the run's initializer (Glorot here), seeded from RERANDOMIZE_SEED, not the run's seed
    expected = summarize_robustness(robustness(result.model(), {0: result.snapshots[0], 3: result.snapshots[3]},
                                               data.x_test, data.y_test, init="glorot_uniform", draws=2,
                                               seed=RERANDOMIZE_SEED))
    pd.testing.assert_frame_equal(frame, expected)
    # by default every snapshot the run kept is a column
    assert columns(run_robustness(result, data.x_test[:50], data.y_test[:50], draws=1)) == [RERANDOMIZE, "0", "1", "3"]


# --- reading a summarized table --------------------------------------------------------------------------------

BASE = 0.05
DRAWS = {"fc1": [0.9, 0.8], "fc2": [0.7, 0.88], "fc3": [0.85, 0.91], "output": [0.6, 0.75]}
RESETS = {"fc1": {0: 0.6, 2: 0.2, 10: 0.06}, "fc2": {0: 0.07, 2: 0.055, 10: 0.05},
          "fc3": {0: 0.09, 2: 0.06, 10: 0.05}, "output": {0: 0.08, 2: 0.052, 10: 0.05}}


def _table(draws=DRAWS, resets=RESETS, base=BASE, seed=0) -> pd.DataFrame:
    """A raw robustness table as :func:`robustness` writes it (rows shuffled), summarized."""
    rows = [dict(layer="none", layer_index=-1, column="trained", epoch=float("nan"), draw=0, error=base)]
    for index, layer in enumerate(draws):
        rows += [dict(layer=layer, layer_index=index, column=RERANDOMIZE, epoch=float("nan"), draw=d, error=e)
                 for d, e in enumerate(draws[layer])]
        rows += [dict(layer=layer, layer_index=index, column=str(epoch), epoch=epoch, draw=0, error=e)
                 for epoch, e in resets[layer].items()]
    random.Random(seed).shuffle(rows)
    return summarize_robustness(pd.DataFrame(rows))


def test_readers_of_a_summarized_table():
    frame = _table()
    assert base_error(frame) == BASE and accuracy(frame, "base") == 1 - BASE
    assert layer_names(frame) == list(DRAWS)  # forward order, whatever the order of the rows
    assert columns(frame) == [RERANDOMIZE, "0", "2", "10"]  # checkpoints in epoch order, not as strings
    assert cell(frame, "fc2", "2") == RESETS["fc2"][2] and accuracy(frame, "fc1", "0") == 1 - RESETS["fc1"][0]
    assert cell(frame, "output", RERANDOMIZE) == pytest.approx(statistics.mean(DRAWS["output"]))
    drawn = rerandomized(frame)
    assert list(drawn.index) == list(DRAWS)
    for layer, errors in DRAWS.items():
        assert drawn.loc[layer, "error"] == pytest.approx(statistics.mean(errors))
        assert drawn.loc[layer, "std"] == pytest.approx(statistics.stdev(errors))
    costs = reinit_costs(frame, "0")
    assert list(costs) == list(DRAWS)
    assert costs == pytest.approx({layer: RESETS[layer][0] - BASE for layer in DRAWS})
    assert reinit_costs(frame, "10")["fc2"] == pytest.approx(0)
    assert worst_reset(frame, list(DRAWS)) == "fc1"
    assert worst_reset(frame, ["fc2", "fc3", "output"]) == "fc3"
    assert worst_reset(frame, ["fc2", "output"], column="2") == "fc2"


def test_accuracy_table_is_the_heatmap_in_accuracies():
    frame = _table()
    table = accuracy_table(frame, "3x256: test accuracy")
    assert table.index.name == "3x256: test accuracy" and list(table.index) == list(DRAWS)
    assert list(table.columns) == [RERANDOMIZE, "τ = 0", "τ = 2", "τ = 10"]
    for layer, errors in DRAWS.items():
        mean, std = statistics.mean(errors), statistics.stdev(errors)
        assert table.loc[layer, RERANDOMIZE] == f"{1 - mean:.1%} ± {std:.1%}"
        for epoch, error in RESETS[layer].items():
            assert table.loc[layer, f"τ = {epoch}"] == f"{1 - error:.1%}"


def test_weng_comparison_sets_her_numbers_beside_each_of_ours():
    weng = {"layers.mlp3x256.base_acc": 97.5, "layers.rerandomize_uniform.acc_range": [8, 11],
            "layers.rerandomize_uniform.output_acc": 9.8,
            **{f"layers.mlp3x256.reinit0.{layer}": 10.0 + i for i, layer in enumerate(WENG_LAYERS)}}
    ours = {"paper's protocol": _table(), "Weng's": _table({l: [e + 0.01 for e in v] for l, v in DRAWS.items()},
                                                           base=0.1)}
    table = weng_comparison(weng, ours, layer_names(ours["paper's protocol"]), output_shown="Weng's")
    assert list(table.columns) == ["Weng (her code)", "paper's protocol", "Weng's"]
    assert list(table.index) == ["trained net"] + [f"{l} re-initialized to τ = 0" for l in DRAWS] + \
        ["re-randomized, range over layers"]
    assert list(table["Weng (her code)"][:5]) == ["97.5%", "10.0%", "11.0%", "12.0%", "13.0%"]
    assert table.loc["trained net", "paper's protocol"] == f"{100 * (1 - BASE):.1f}%"
    assert table.loc["trained net", "Weng's"] == "90.0%"
    assert table.loc["fc1 re-initialized to τ = 0", "paper's protocol"] == f"{100 * (1 - RESETS['fc1'][0]):.1f}%"
    means = [statistics.mean(v) for v in DRAWS.values()]
    assert table.loc["re-randomized, range over layers", "paper's protocol"] == \
        f"{100 * (1 - max(means)):.1f}–{100 * (1 - min(means)):.1f}%"
    shown = table.loc["re-randomized, range over layers", "Weng's"]
    assert shown.endswith(f"(output {100 * (1 - statistics.mean(DRAWS['output']) - 0.01):.1f}%)")
    assert table.loc["re-randomized, range over layers", "Weng (her code)"] == "8–11% (output 9.8%)"


def test_networks_are_the_chapters_in_its_order():
    P = load_params("weng-layer-robustness", "cpu")
    nets = networks(P)
    assert list(nets) == [*P.fc, "weng", *P.conv] and nets["weng"] is P.weng
    assert next(iter(nets.values())) is next(iter(P.fc.values()))  # the claims' net comes first
