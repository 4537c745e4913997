"""The linear probe beside MASC (lib.studies.masc.probe): on real MNIST pixels it learns what a linear classifier
can, on shuffled labels it generalizes to nothing, it is a function of its inputs, and it is stored per run."""

from __future__ import annotations

import numpy as np
import pandas as pd

from conftest import write_mnist_like
from lib.data import load_dataset
from lib.studies.masc import probe
from lib.train import RunConfig


def _pixels(n_train: int = 2000, n_test: int = 1000):
    data = load_dataset("mnist")
    x_train = data.x_train[:n_train].flatten(1).float().numpy() / 255
    x_test = data.x_test[:n_test].flatten(1).float().numpy() / 255
    return x_train, data.y_train[:n_train].numpy(), x_test, data.y_test[:n_test].numpy()


def test_the_probe_learns_mnist_pixels_and_nothing_from_shuffled_labels():
    x_train, y_train, x_test, y_test = _pixels()
    fitted = probe.fit_linear_probe(x_train, y_train, 10)
    test_acc = np.mean(probe.predict_linear_probe(fitted, x_test) == y_test)
    assert 0.83 < test_acc < 0.95  # logistic regression on 2,000 MNIST images: high 80s
    shuffled = np.random.default_rng(0).permutation(y_train)
    noise = probe.fit_linear_probe(x_train, shuffled, 10)
    train_fit = np.mean(probe.predict_linear_probe(noise, x_train) == shuffled)
    assert train_fit > 0.5  # 785 parameters a class memorize much of 2,000 random labels...
    assert np.mean(probe.predict_linear_probe(noise, x_test) == y_test) < 0.2  # ... and say nothing about the test set
    again = probe.fit_linear_probe(x_train, y_train, 10)
    assert all(np.array_equal(a.numpy(), b.numpy()) for a, b in zip(fitted, again))  # deterministic


def test_a_constant_feature_does_not_break_the_standardization():
    x_train, y_train, x_test, y_test = _pixels(500, 200)
    x_train[:, 0], x_test[:, 0] = 0.0, 5.0  # constant in training, something else at test time
    fitted = probe.fit_linear_probe(x_train, y_train, 10)
    assert fitted[1][0] == 0 and np.isfinite(fitted[2].numpy()).all()
    assert np.mean(probe.predict_linear_probe(fitted, x_test) == y_test) > 0.7


def test_probe_run_scores_every_masc_layer_and_is_stored(tmp_path, monkeypatch, isolated_cache):
    write_mnist_like(tmp_path / "mnist", n_train=40, n_test=20)
    monkeypatch.setenv("LIB_DATA_DIR", str(tmp_path))
    config = RunConfig(dataset="mnist", model="mlp-8-16", preprocessing="scale", randomization="partial_labels",
                       corruption=0.5, optimizer="sgd", lr=1e-2, lr_decay=1.0, batch_size=8, max_epochs=2,
                       stop_train_acc=None)
    frame = probe.probe_run(config, subspaces=("corrupted", "true"))
    assert list(frame.layer_name.unique()) == ["Input", "FC (8)", "FC (16)"]
    assert set(frame.set) == {"corrupted train", "original train", "test"} and set(frame.subspace) == {"corrupted", "true"}
    assert frame.accuracy.between(0, 1).all()
    stored = list((isolated_cache / "probe").iterdir())
    assert len(stored) == 1
    again = probe.probe_run(config, subspaces=("corrupted", "true"))
    pd.testing.assert_frame_equal(again.reset_index(drop=True), frame.reset_index(drop=True))
