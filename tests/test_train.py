"""Training on real data subsets: fitting, determinism, stopping, resuming after an interruption."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

import lib.train as train_module
from lib.train import RunConfig, prepare_data, train

TINY = RunConfig(dataset="mnist", n_train=256, n_test=128, preprocessing="scale", model="mlp1x512",
                 lr=0.05, lr_decay=0.95, max_epochs=6, stop_train_acc=None, batch_size=64)


def test_prepared_data_has_the_run_shapes():
    data = prepare_data(TINY)
    assert data.x_train.shape == (256, 1, 28, 28) and data.x_train.dtype == torch.float32
    assert 0.0 <= data.x_train.min() and data.x_train.max() <= 1.0
    assert data.corrupted.sum() == 0 and torch.equal(data.y_train, data.y_train_original)
    zhang = prepare_data(RunConfig(dataset="cifar10", n_train=64, n_test=32, randomization="random_labels"))
    assert zhang.x_train.shape == (64, 3, 28, 28)
    assert (zhang.y_train != zhang.y_train_original).sum() == zhang.corrupted.sum() > 0


def test_training_is_deterministic_for_a_seed():
    a, b = train(TINY, progress=False), train(TINY, progress=False)
    assert a.history.drop(columns="seconds").equals(b.history.drop(columns="seconds"))
    assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)
    c = train(RunConfig(**{**TINY.to_dict(), "seed": 1}), progress=False)
    assert not a.history.train_loss.equals(c.history.train_loss)


def test_learns_and_records_history():
    run = train(TINY, progress=False)
    h = run.history
    assert list(h.epoch) == list(range(1, 7)) and h.step.iloc[-1] == 6 * 4
    assert h.train_loss.iloc[-1] < h.train_loss.iloc[0]
    assert run.summary["final_test_acc"] > 0.5  # MNIST is learnable from 256 images
    assert h.lr.iloc[1] == pytest.approx(0.05 * 0.95)  # decay per epoch
    assert run.summary["converged"] is False and run.summary["epochs"] == 6


def test_stops_at_the_training_accuracy_threshold():
    config = RunConfig(**{**TINY.to_dict(), "n_train": 64, "batch_size": 16, "lr_decay": 1.0, "stop_train_acc": 1.0, "max_epochs": 60})
    run = train(config, progress=False)
    assert run.summary["converged"] and run.summary["final_train_acc"] == 1.0
    assert run.summary["epochs"] == run.summary["converged_epoch"] < 60
    earlier = run.history.train_acc.iloc[:-1].dropna()
    assert (earlier < 1.0).all()  # it stopped at the first epoch that reached 100%
@pytest.mark.slow
def test_fits_random_labels():
    config = RunConfig(**{**TINY.to_dict(), "n_train": 128, "randomization": "random_labels",
                          "stop_train_acc": 1.0, "max_epochs": 150, "lr": 0.05, "lr_decay": 1.0})
    run = train(config, progress=False)
    assert run.summary["final_train_acc"] == 1.0
    assert run.summary["final_test_acc"] < 0.3


def test_mse_adam_and_bf16_options_run():
    config = RunConfig(**{**TINY.to_dict(), "loss": "mse", "optimizer": "adam", "lr": 1e-3, "precision": "bf16",
                          "max_epochs": 2, "model": "mlp2x64-firstbias"})
    run = train(config, progress=False)
    assert math.isfinite(run.summary["final_train_loss"]) and run.summary["epochs"] == 2


def test_invalid_options_are_rejected():
    with pytest.raises(ValueError):
        RunConfig(optimizer="lbfgs")
    with pytest.raises(TypeError, match="unknown RunConfig fields"):
        RunConfig.from_dict({"learning_rate": 0.1})


def test_an_interrupted_run_resumes_to_the_same_result(tmp_path, monkeypatch):
    config = RunConfig(**{**TINY.to_dict(), "max_epochs": 5})
    uninterrupted = train(config, progress=False)
    checkpoint = tmp_path / "run.pt"
    calls = {"n": 0}
    real_evaluate = train_module.evaluate

    def failing_evaluate(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # the test-set evaluation of epoch 3 (the training set is evaluated only at the end)
            raise KeyboardInterrupt
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(train_module, "evaluate", failing_evaluate)
    with pytest.raises(KeyboardInterrupt):
        train(config, checkpoint=checkpoint, checkpoint_every_s=0, progress=False)
    assert checkpoint.exists()
    monkeypatch.setattr(train_module, "evaluate", real_evaluate)
    resumed = train(config, checkpoint=checkpoint, checkpoint_every_s=0, progress=False)
    assert checkpoint.exists()  # left for the caller, which removes it once the run is stored (lib.runs)
    assert torch.load(checkpoint, weights_only=False)["config"] == config.to_dict()  # it names its run
    cols = ["epoch", "step", "train_loss", "train_acc", "test_acc"]
    assert resumed.history[cols].equals(uninterrupted.history[cols])
    assert all(torch.equal(resumed.state_dict[k], uninterrupted.state_dict[k]) for k in resumed.state_dict)


DROPOUT = replace(TINY, model="mlp2x64-dropout0.5", max_epochs=3)


def same(a, b) -> bool:
    return (a.history.drop(columns="seconds").equals(b.history.drop(columns="seconds"))
            and all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict))


def test_dropout_masks_come_from_the_runs_seed_and_leave_the_global_generator_alone():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    first = train(DROPOUT, progress=False)
    assert torch.equal(torch.get_rng_state(), before)  # the global generator is neither read nor changed
    torch.manual_seed(456)  # another global state: the same run
    assert same(train(DROPOUT, progress=False), first)
    assert not same(train(replace(DROPOUT, seed=1), progress=False), first)


def test_an_interrupted_dropout_run_resumes_to_the_same_result(tmp_path, monkeypatch):
    uninterrupted = train(DROPOUT, progress=False)
    checkpoint = tmp_path / "run.pt"
    real_save = train_module._save_checkpoint

    def save_then_stop(path, *args, **kwargs):
        real_save(path, *args, **kwargs)
        if torch.load(path, weights_only=False)["epoch"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "_save_checkpoint", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        train(DROPOUT, checkpoint=checkpoint, checkpoint_every_s=0, progress=False)
    monkeypatch.setattr(train_module, "_save_checkpoint", real_save)
    assert same(train(DROPOUT, checkpoint=checkpoint, checkpoint_every_s=0, progress=False), uninterrupted)


def test_a_run_checkpointed_on_one_thread_resumes_on_two_close_to_the_one_thread_run(tmp_path, monkeypatch):
    """The number of torch threads is not part of a run's key: it may change the last bits of a result, not its
    course. A run interrupted on one thread and resumed on two ends as close to the one-thread run as two thread
    counts do."""
    config = replace(TINY, max_epochs=4)
    threads = torch.get_num_threads()
    checkpoint = tmp_path / "run.pt"
    real_save = train_module._save_checkpoint

    def save_then_stop(path, *args, **kwargs):
        real_save(path, *args, **kwargs)
        if torch.load(path, weights_only=False)["epoch"] == 2:
            raise KeyboardInterrupt

    try:
        torch.set_num_threads(1)
        one_thread = train(config, progress=False)
        monkeypatch.setattr(train_module, "_save_checkpoint", save_then_stop)
        with pytest.raises(KeyboardInterrupt):
            train(config, checkpoint=checkpoint, checkpoint_every_s=0, progress=False)
        monkeypatch.setattr(train_module, "_save_checkpoint", real_save)
        torch.set_num_threads(2)
        resumed = train(config, checkpoint=checkpoint, checkpoint_every_s=0, progress=False)
        two_threads = train(config, progress=False)
    finally:
        torch.set_num_threads(threads)
    assert resumed.history.epoch.tolist() == one_thread.history.epoch.tolist() == [1, 2, 3, 4]
    for run in (resumed, two_threads):
        for name, weights in one_thread.state_dict.items():
            torch.testing.assert_close(run.state_dict[name], weights, rtol=0, atol=1e-4)
        assert (run.history.test_acc - one_thread.history.test_acc).abs().max() <= 2 / 128  # two test images at most


def test_population_statistics_are_the_average_over_the_training_batches():
    """Ioffe & Szegedy's inference rule: the mean and unbiased variance averaged over the batches of the data."""
    from lib.train import population_statistics

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU())
    model[1].running_mean.fill_(5.0)  # stale estimates, as after a few steps of momentum 0.1
    x = torch.randn(64, 3, 8, 8)
    population_statistics(model, x, batch_size=16)
    with torch.no_grad():
        features = model[0](x)
    batches = [features[i:i + 16] for i in range(0, 64, 16)]
    mean = torch.stack([b.mean((0, 2, 3)) for b in batches]).mean(0)
    var = torch.stack([b.transpose(0, 1).reshape(4, -1).var(1, unbiased=True) for b in batches]).mean(0)
    assert torch.allclose(model[1].running_mean, mean, atol=1e-5)
    assert torch.allclose(model[1].running_var, var, atol=1e-4)
    assert model[1].momentum == 0.1  # training's momentum is restored
@pytest.mark.slow
def test_population_statistics_change_evaluation_but_not_training():
    base = RunConfig(dataset="cifar10", n_train=64, n_test=64, model="inception", lr=0.1, batch_size=32, max_epochs=2,
                     stop_train_acc=None, test_every=1)
    running, population = (train(replace(base, bn_statistics=b), progress=False) for b in ("running", "population"))
    assert running.history.train_loss.tolist() == population.history.train_loss.tolist()
    assert not torch.equal(running.state_dict["blocks.conv1.norm.running_mean"],
                           population.state_dict["blocks.conv1.norm.running_mean"])
    with pytest.raises(ValueError, match="bn_statistics"):
        replace(base, bn_statistics="batch")
