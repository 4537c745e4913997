"""Batched (stacked) training agrees with one-by-one training, model by model."""

from __future__ import annotations

import math

import pytest
import torch

import lib.runs as runs
from lib.batched import architecture, batch_key, prefers_batched, train_batched
from lib.train import RunConfig, train

BASE = RunConfig(dataset="mnist", n_train=384, n_test=256, preprocessing="scale", model="mlp3x96", lr=0.05,
                 lr_decay=0.95, max_epochs=4, stop_train_acc=None, batch_size=64, randomization="partial_labels")
# Tolerance: stacked products round differently from single ones, by ~1e-7 per step here.
LOSS_TOL, WEIGHT_TOL = 1e-5, 1e-4


def vary(**changes) -> RunConfig:
    return RunConfig(**{**BASE.to_dict(), **changes})


def assert_same_run(batched, sequential):
    hb, hs = batched.history, sequential.history
    assert list(hb.epoch) == list(hs.epoch) and list(hb.step) == list(hs.step)
    assert (hb.train_loss - hs.train_loss).abs().max() < LOSS_TOL
    for column in ("train_acc", "test_acc", "train_acc_online"):
        assert ((hb[column] - hs[column]).abs().fillna(0) <= 1 / 256).all(), column
        assert hb[column].isna().equals(hs[column].isna()), column
    for name, tensor in sequential.state_dict.items():
        assert (batched.state_dict[name] - tensor).abs().max() < WEIGHT_TOL, name
    assert batched.summary["converged_epoch"] == sequential.summary["converged_epoch"]
@pytest.mark.slow
def test_each_model_matches_its_sequential_run():
    configs = [vary(seed=0, corruption=0.0), vary(seed=1, corruption=0.5, lr=0.02),
               vary(seed=2, corruption=1.0, lr_decay=0.9, weight_decay=1e-3)]
    for batched, config in zip(train_batched(configs), configs):
        assert batched.summary["batched_with"] == 3
        assert_same_run(batched, train(config, progress=False))
@pytest.mark.slow
def test_adam_mse_and_first_layer_bias_match():
    configs = [vary(model="mlp2x64-firstbias", optimizer="adam", lr=1e-3, loss="mse", seed=s, max_epochs=3)
               for s in (0, 1)]
    for batched, config in zip(train_batched(configs), configs):
        assert_same_run(batched, train(config, progress=False))
@pytest.mark.slow
def test_a_model_that_finishes_early_does_not_disturb_the_others():
    early = vary(seed=3, stop_train_acc=0.25, max_epochs=8)
    late = vary(seed=4, stop_train_acc=None, max_epochs=8)
    b_early, b_late = train_batched([early, late])
    assert b_early.summary["converged"] and b_early.summary["epochs"] < 8
    assert b_late.summary["epochs"] == 8
    assert_same_run(b_early, train(early, progress=False))
    assert_same_run(b_late, train(late, progress=False))


def test_a_diverging_model_does_not_disturb_the_others():
    bad, good = vary(seed=5, lr=1e6, max_epochs=3), vary(seed=6, max_epochs=3)
    b_bad, b_good = train_batched([bad, good])
    assert b_bad.summary["diverged"] or not math.isfinite(b_bad.history.train_loss.iloc[-1])
    assert_same_run(b_good, train(good, progress=False))


def test_incompatible_configs_are_refused():
    with pytest.raises(ValueError, match="differ"):
        train_batched([vary(), vary(batch_size=32)])
    assert batch_key(vary(seed=1, corruption=0.3, lr=0.1)) == batch_key(vary())


def test_path_choice_per_architecture():
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    # measured on the 2-core CPU: stacking gains nothing there (make bench), so only GPUs stack
    assert not prefers_batched([512] * 3, cpu) and not prefers_batched([128, 512, 2048, 2048], cpu)
    assert prefers_batched([128, 512, 2048, 2048], gpu) and not prefers_batched(None, gpu)
    assert architecture(vary(model="mlp10x512-firstbias")) == ("mlp", [512] * 10)
    alexnet, inception = vary(model="alexnet", dataset="cifar10"), vary(model="inception", dataset="cifar10")
    assert architecture(alexnet) == ("conv", None) and architecture(inception) == ("unbatchable", None)
    assert prefers_batched(architecture(alexnet), gpu) and not prefers_batched(architecture(alexnet), cpu)
    assert not prefers_batched(architecture(inception), gpu)
@pytest.mark.slow
def test_convolutional_networks_match_their_sequential_runs():
    base = vary(dataset="cifar10", preprocessing="zhang", model="alexnet", n_train=128, n_test=64, max_epochs=1,
                lr=0.01, batch_size=32)
    configs = [RunConfig(**{**base.to_dict(), "seed": 0}), RunConfig(**{**base.to_dict(), "seed": 1, "corruption": 1.0})]
    for batched, config in zip(train_batched(configs), configs):
        sequential = train(config, progress=False)
        assert (batched.history.train_loss - sequential.history.train_loss).abs().max() < 1e-4
        for name, tensor in sequential.state_dict.items():
            assert (batched.state_dict[name] - tensor).abs().max() < WEIGHT_TOL, name


def test_batchnorm_networks_are_not_stacked():
    with pytest.raises(ValueError, match="BatchNorm"):
        train_batched([vary(dataset="cifar10", model="inception", n_train=8, n_test=8, max_epochs=1)] * 2)
@pytest.mark.slow
def test_run_grid_batches_what_pays_and_caches_each_run(isolated_cache, monkeypatch):
    import lib.batched as batched_module

    calls = []
    real_train_batched = batched_module.train_batched

    def spy(configs, device=None, **kwargs):
        calls.append(len(configs))
        return real_train_batched(configs, device=device, **kwargs)

    monkeypatch.setattr(batched_module, "train_batched", spy)
    configs = runs.grid(vary(max_epochs=2), corruption=[0.0, 0.5, 1.0])
    alone = vary(model="mlp1x2048", max_epochs=1)  # another architecture: a batch of its own
    frame = runs.run_grid(configs + [alone], batched=True)
    assert calls == [3]  # the three 96-wide MLPs together, the single 2048-wide one alone
    assert all(runs.is_cached(c) for c in configs + [alone]) and len(frame) == 4
    more = runs.grid(vary(max_epochs=3), corruption=[0.0, 1.0])
    runs.run_grid(more)  # default: stack only where it pays: on a GPU, not on a CPU
    assert calls == ([3, 2] if torch.cuda.is_available() else [3]) and all(runs.is_cached(c) for c in more)
@pytest.mark.slow
def test_an_interrupted_stack_resumes_to_the_same_result(tmp_path, monkeypatch):
    import lib.batched as batched_module

    # one network finishes before the interruption, so the checkpoint holds a shrunken stack
    configs = [vary(seed=5, stop_train_acc=0.2, max_epochs=6), vary(seed=6, corruption=0.5, max_epochs=6),
               vary(seed=7, corruption=1.0, lr=0.02, max_epochs=6)]
    uninterrupted = train_batched(configs)
    assert uninterrupted[0].summary["epochs"] < 4 and uninterrupted[1].summary["epochs"] == 6
    checkpoint = tmp_path / "stack.pt"
    real_evaluate = batched_module._evaluate

    def failing_evaluate(*args, **kwargs):  # interrupts epoch 5, once epoch 4 is checkpointed
        if checkpoint.exists() and torch.load(checkpoint, weights_only=False)["epoch"] == 4:
            raise KeyboardInterrupt
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(batched_module, "_evaluate", failing_evaluate)
    with pytest.raises(KeyboardInterrupt):
        train_batched(configs, checkpoint=checkpoint, checkpoint_every_s=0)
    assert checkpoint.exists()
    assert len(torch.load(checkpoint, weights_only=False)["alive"]) == 2
    monkeypatch.setattr(batched_module, "_evaluate", real_evaluate)
    resumed = train_batched(configs, checkpoint=checkpoint, checkpoint_every_s=0)
    assert checkpoint.exists()  # removed by the caller once the runs are stored (lib.runs.train_chunk)
    cols = ["epoch", "step", "train_loss", "train_acc", "test_acc"]
    for again, first in zip(resumed, uninterrupted):
        assert again.history[cols].equals(first.history[cols])
        assert all(t.device.type == "cpu" for t in again.state_dict.values())
        assert all(torch.equal(again.state_dict[k], first.state_dict[k]) for k in first.state_dict)
