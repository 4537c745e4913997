"""Layer robustness (lib.studies.weng2019.layer_robustness, Zhang, Bengio & Singer 2019) and the run snapshots it needs (RunConfig.save_epochs)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from lib.studies.weng2019.layer_robustness import layers, re_initialize, re_randomize, re_randomize_uniform, robustness, classification_error
from lib.models import build_model, initialize
from lib.runs import load, run
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
