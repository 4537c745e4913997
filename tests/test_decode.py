"""The MASC paper's models (CNN, CIFAR-100 AlexNet) and the layer-decoding glue of lib.studies.masc.decoding."""

from __future__ import annotations

import pytest

from dataclasses import replace

import numpy as np
import torch

from conftest import write_cifar_pickles, write_mnist_like
from lib import runs
from lib.studies.masc import decoding as decode
from lib.models import build_model, count_parameters
from lib.train import RunConfig, prepare_data


def test_masc_cnn_flattens_to_576_on_28x28_and_names_the_paper_layers():
    model = build_model("masc-cnn", (1, 28, 28), 10, seed=0)
    outputs = model.layer_outputs(torch.zeros(3, 1, 28, 28))
    assert outputs["block3"].shape == (3, 64, 3, 3)
    assert outputs["flatten"].shape == (3, 576)
    assert [outputs[f"fc{i}"].shape[1] for i in (1, 2, 3)] == [250, 250, 250]
    assert count_parameters(model) == 344_052  # the paper's 344,042 plus the output layer's 10 biases
    layers = decode.probed_layers("masc-cnn", model)
    assert layers == ["input", "flatten", "fc1", "fc2", "fc3"]
    assert list(decode.display_names(model, (1, 28, 28), layers).values()) == [
        "Input", "Flat (576)", "FC (250)", "FC (250) #2", "FC (250) #3"]
    assert decode.display_names(build_model("masc-cnn", (3, 32, 32), 10, 0), (3, 32, 32), ["flatten"]) == {
        "flatten": "Flat (1024)"}


def test_masc_mlp_matches_table_1_and_probes_every_layer():
    model = build_model("mlp-128-512-2048-2048", (1, 28, 28), 10, seed=0)
    assert count_parameters(model) == 5_433_994  # the paper's Table 1
    layers = decode.probed_layers("mlp-128-512-2048-2048", model)
    assert list(decode.display_names(model, (1, 28, 28), layers).values()) == [
        "Input", "FC (128)", "FC (512)", "FC (2048)", "FC (2048) #2"]
@pytest.mark.slow
def test_alexnet_trains_on_a_tiny_cifar100_fixture(tmp_path, monkeypatch, isolated_cache):
    write_cifar_pickles(tmp_path / "cifar-100-python", hundred=True, n=8)
    monkeypatch.setenv("LIB_DATA_DIR", str(tmp_path))
    config = RunConfig(dataset="cifar100", model="masc-alexnet", preprocessing="standardize", optimizer="adam",
                       lr=1e-4, lr_decay=1.0, batch_size=4, max_epochs=1, stop_train_acc=0.991,
                       randomization="partial_labels", corruption=0.4)
    data = prepare_data(config)
    assert data.x_train.shape == (8, 3, 32, 32) and data.num_classes == 100
    assert abs(float(data.x_train.mean((0, 2, 3)).abs().max())) < 1e-4  # per-channel standardization
    model = build_model("masc-alexnet", (3, 32, 32), 100, seed=0)
    assert count_parameters(model) == 38_739_940  # paper: 38,738,952 (its exact layout is not given)
    outputs = model.layer_outputs(data.x_train[:2])
    assert outputs["flatten"].shape == (2, 256) and outputs["output"].shape == (2, 100)
    trained = runs.run(config)
    assert trained.summary["epochs"] == 1 and 0 <= trained.summary["final_test_acc"] <= 1
    assert any(not torch.equal(trained.state_dict[k], v) for k, v in model.state_dict().items())  # it moved
    accuracy, components = decode.decode_run(config, subspaces=("corrupted",))
    assert list(accuracy.layer_name.unique()) == ["Flat (256)", "FC (4096)", "FC (4096) #2", "FC (4096) #3"]
    assert accuracy.accuracy.between(0, 1).all() and set(accuracy.set) == set(decode.SETS)
    assert (components.groupby("layer").label.count() == len(torch.unique(data.y_train))).all()


def _blocks(n_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """4 classes, each living in its own block of 5 coordinates of a 20-dim space."""
    rng = np.random.default_rng(seed)
    x = np.zeros((4 * n_per_class, 20), np.float32)
    y = np.repeat(np.arange(4), n_per_class)
    for c in range(4):
        x[y == c, 5 * c:5 * c + 5] = rng.random((n_per_class, 5)) + 0.1
    return x, y


def test_decode_features_known_answer():
    (x_train, y_train), (x_test, y_test) = _blocks(30, 0), _blocks(10, 1)
    train, test = {"a": x_train}, {"a": x_test}
    swapped = np.where(y_train == 0, 1, np.where(y_train == 1, 0, y_train))  # classes 0 and 1 trade labels
    targets = {"corrupted train": ("train", swapped), "original train": ("train", y_train), "test": ("test", y_test)}
    acc, comp = decode.decode_features(train, test, y_train, targets, names={"a": "A"})
    got = acc.set_index("set").accuracy
    assert got["original train"] == 1.0 and got["test"] == 1.0 and got["corrupted train"] == 0.5
    assert (comp.n_components <= 5).all() and (comp.n_components >= 1).all() and set(comp.layer_name) == {"A"}
    acc, _ = decode.decode_features(train, test, swapped, targets)  # subspaces from the swapped labels
    got = acc.set_index("set").accuracy
    assert got["corrupted train"] == 1.0 and got["original train"] == 0.5 and got["test"] == 0.5


def test_decode_run_labels_control_and_cache(tmp_path, monkeypatch, isolated_cache):
    write_mnist_like(tmp_path / "mnist", n_train=40, n_test=20)
    monkeypatch.setenv("LIB_DATA_DIR", str(tmp_path))
    config = RunConfig(dataset="mnist", model="mlp-8-16", preprocessing="scale", randomization="partial_labels",
                       corruption=0.0, optimizer="sgd", lr=1e-3, lr_decay=1.0, batch_size=8, max_epochs=2,
                       stop_train_acc=None)
    later = decode.subspace_labels(config, "corrupted:0.6")
    assert torch.equal(later, prepare_data(replace(config, corruption=0.6)).y_train)
    assert not torch.equal(later, prepare_data(config).y_train)
    acc, comp = decode.decode_run(config, subspaces=("true", "corrupted:0.6"), variances=(0.9, 0.99))
    assert set(acc.subspace) == {"true", "corrupted:0.6"} and set(acc.variance) == {0.9, 0.99}
    assert list(acc.layer_name.unique()) == ["Input", "FC (8)", "FC (16)"]
    # with true-label subspaces both train sets are scored against the true labels (p = 0)
    true = acc[acc.subspace == "true"].pivot_table(index=["layer", "variance"], columns="set", values="accuracy")
    assert (true["corrupted train"] == true["original train"]).all()
    # with labels corrupted after training, "corrupted train" is scored against those labels
    later_acc = acc[(acc.subspace == "corrupted:0.6")].pivot_table(index=["layer", "variance"], columns="set", values="accuracy")
    assert not (later_acc["corrupted train"] == later_acc["original train"]).all()
    assert (comp.groupby(["subspace", "variance"]).n_components.sum().xs("true")[0.99]
            >= comp.groupby(["subspace", "variance"]).n_components.sum().xs("true")[0.9])
    control, _ = decode.decode_run(config, subspaces=("true",), random_init=True)
    assert set(control.network) == {"random init"}
    stored = list((isolated_cache / "decode").iterdir())
    assert len(stored) == 2
    again, _ = decode.decode_run(config, subspaces=("true", "corrupted:0.6"), variances=(0.9, 0.99))
    assert again.equals(acc.reset_index(drop=True)) or np.allclose(again.accuracy, acc.accuracy)
    assert len(list((isolated_cache / "decode").iterdir())) == 2  # served from the cache
