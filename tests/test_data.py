"""Loaders on tiny fixtures in the real on-disk formats, the search order, errors and preprocessing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import write_cifar10_npz, write_cifar_pickles, write_idx, write_mnist_like
from lib import data


def test_idx_gz_shared_layout_from_explicit_root(tmp_path):
    arrays = write_mnist_like(tmp_path / "mnist")
    ds = data.load_dataset("mnist", root=tmp_path)
    assert ds.x_train.shape == (30, 1, 28, 28) and ds.x_train.dtype == torch.uint8
    assert ds.x_test.shape == (10, 1, 28, 28)
    assert ds.y_train.dtype == torch.int64
    np.testing.assert_array_equal(ds.x_train[:, 0].numpy(), arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(ds.y_test.numpy(), arrays["t10k-labels-idx1-ubyte"])
    assert ds.source == str(tmp_path / "mnist")


def test_torchvision_raw_layout_uncompressed(tmp_path):
    arrays = write_mnist_like(tmp_path / "FashionMNIST" / "raw", gz=False)
    ds = data.load_dataset("fashion-mnist", root=tmp_path)
    np.testing.assert_array_equal(ds.y_train.numpy(), arrays["train-labels-idx1-ubyte"])
    assert ds.class_names[0] == "T-shirt/top"


def test_environment_variable_is_searched(tmp_path, monkeypatch):
    write_mnist_like(tmp_path / "mnist", n_train=12)
    monkeypatch.setenv(data.ENV_DATA_DIR, str(tmp_path))
    assert len(data.load_dataset("mnist").y_train) == 12


def test_explicit_root_wins_over_environment(tmp_path, monkeypatch):
    write_mnist_like(tmp_path / "a" / "mnist", n_train=12)
    write_mnist_like(tmp_path / "b" / "mnist", n_train=14)
    monkeypatch.setenv(data.ENV_DATA_DIR, str(tmp_path / "b"))
    assert len(data.load_dataset("mnist", root=tmp_path / "a").y_train) == 12


def test_cifar10_npz_batches_become_nchw(tmp_path):
    arrays = write_cifar10_npz(tmp_path / "cifar10")
    ds = data.load_dataset("cifar10", root=tmp_path)
    assert ds.x_train.shape == (20, 3, 32, 32) and ds.x_test.shape == (5, 3, 32, 32)
    np.testing.assert_array_equal(ds.x_train.permute(0, 2, 3, 1).numpy(), arrays["x_train"])
    np.testing.assert_array_equal(ds.y_train.numpy(), arrays["y_train"])
    assert ds.class_names[0] == "airplane"


@pytest.mark.parametrize("hundred", [False, True])
def test_cifar_python_pickles(tmp_path, hundred):
    folder = tmp_path / ("cifar-100-python" if hundred else "cifar-10-batches-py")
    arrays = write_cifar_pickles(folder, hundred)
    ds = data.load_dataset("cifar100" if hundred else "cifar10", root=tmp_path)
    assert ds.num_classes == (100 if hundred else 10)
    np.testing.assert_array_equal(ds.x_train.numpy(), arrays["x_train"])
    np.testing.assert_array_equal(ds.y_test.numpy(), arrays["y_test"])


def test_cifar100_npz(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar100"
    folder.mkdir()
    x_train = rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    np.savez(folder / "train.npz", x_train=x_train, y_train=np.arange(8) * 11)
    np.savez(folder / "test.npz", x_test=x_train[:3], y_test=np.array([99, 0, 5]))
    ds = data.load_dataset("cifar100", root=tmp_path)
    assert ds.x_train.shape == (8, 3, 32, 32) and ds.y_train.max() == 77 and ds.y_test.tolist() == [99, 0, 5]


def test_missing_dataset_error_lists_every_place(no_network_data):
    with pytest.raises(data.DatasetNotFound) as error:
        data.load_dataset("cifar100", root=no_network_data / "nowhere", download=False)
    message = str(error.value)
    assert "explicit root" in message and str(no_network_data / "nowhere") in message
    assert "cifar-100-python" in message and "torchvision folder" in message
    assert data.ENV_DATA_DIR in message
    assert not (no_network_data / "torchvision").exists()  # nothing half-written


def test_truncated_idx_file_is_an_error(tmp_path):
    write_mnist_like(tmp_path / "mnist")
    path = tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz"
    import gzip
    raw = gzip.open(path).read()
    with gzip.open(path, "wb") as f:
        f.write(raw[:-100])
    with pytest.raises(ValueError, match="truncated"):
        data.read_idx(path)


def test_unknown_dataset_name():
    with pytest.raises(ValueError, match="unknown dataset"):
        data.load_dataset("imagenet")


def test_shared_data_real_shapes():
    """The real MNIST and CIFAR-10 of ../shared/data: shapes, dtypes and the first labels."""
    mnist = data.load_dataset("mnist")
    assert mnist.x_train.shape == (60000, 1, 28, 28) and mnist.x_test.shape == (10000, 1, 28, 28)
    assert mnist.y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    cifar = data.load_dataset("cifar10")
    assert cifar.x_train.shape == (50000, 3, 32, 32) and cifar.x_train.dtype == torch.uint8
    assert cifar.y_train[:10].tolist() == [6, 9, 9, 4, 1, 1, 2, 7, 8, 3]
    assert torch.bincount(cifar.y_test).tolist() == [1000] * 10


def test_subset_is_seeded_and_fixed(tmp_path):
    write_mnist_like(tmp_path / "mnist", n_train=30)
    ds = data.load_dataset("mnist", root=tmp_path)
    a, b, c = data.subset(ds, 10, 4, seed=1), data.subset(ds, 10, 4, seed=1), data.subset(ds, 10, 4, seed=2)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.x_train, c.x_train)
    assert len(a.y_train) == 10 and len(a.y_test) == 4
    assert data.subset(ds, None, None).x_train is ds.x_train


def test_resplit_partitions_all_images(tmp_path):
    write_mnist_like(tmp_path / "mnist", n_train=30, n_test=10)
    ds = data.load_dataset("mnist", root=tmp_path)
    evaluation, validation = data.resplit(ds, 25, 5, 10, seed=0)
    rows = torch.cat([evaluation.x_train, validation.x_test, evaluation.x_test]).flatten(1)
    assert len(rows) == 40 and len(torch.unique(rows, dim=0)) == 40
    assert torch.equal(evaluation.x_train, validation.x_train)


def test_per_image_standardization_matches_tensorflow_definition():
    x = torch.rand(4, 3, 28, 28) * 255
    z = data.per_image_standardize(x)
    flat = z.flatten(1)
    assert torch.allclose(flat.mean(1), torch.zeros(4), atol=1e-5)
    assert torch.allclose(flat.std(1, unbiased=False), torch.ones(4), atol=1e-4)
    constant = data.per_image_standardize(torch.full((1, 3, 2, 2), 7.0))
    assert torch.equal(constant, torch.zeros_like(constant))  # std floored at 1/sqrt(N): no division by zero


def test_zhang_preprocessing_crops_centre():
    x = torch.zeros(2, 3, 32, 32, dtype=torch.uint8)
    x[:, :, 2:30, 2:30] = 200
    train, test = data.preprocess(x, x[:1], "zhang")
    assert train.shape == (2, 3, 28, 28) and test.shape == (1, 3, 28, 28)
    assert train.abs().max() < 1e-4  # the crop is exactly the constant centre (an off-centre crop is not)


def test_standardize_uses_train_statistics():
    x_train = torch.randint(0, 256, (50, 3, 4, 4), dtype=torch.uint8)
    train, test = data.preprocess(x_train, x_train[:10], "standardize")
    mean, std = data.channel_statistics(train)
    assert torch.allclose(mean, torch.zeros(3), atol=1e-5) and torch.allclose(std, torch.ones(3), atol=1e-4)
    assert torch.allclose(test, train[:10])


def test_the_fingerprint_is_the_content_whatever_the_folder_or_format(isolated_cache, tmp_path):
    write_mnist_like(tmp_path / "gz" / "mnist")
    write_mnist_like(tmp_path / "raw" / "MNIST" / "raw", gz=False)  # the same arrays, torchvision's layout
    assert [f.name for f in data.data_files("mnist", tmp_path / "raw")] == list(data.IDX_FILES)
    assert data.fingerprint("mnist", tmp_path / "gz") == data.fingerprint("mnist", tmp_path / "raw")
    labels = tmp_path / "gz" / "mnist" / "train-labels-idx1-ubyte.gz"
    shifted = data.read_idx(labels).copy()
    shifted[0] = (shifted[0] + 1) % 10  # one label changed: another data set
    write_idx(labels, shifted)
    assert data.fingerprint("mnist", tmp_path / "gz") != data.fingerprint("mnist", tmp_path / "raw")


def test_cifar_fingerprints_read_the_files_the_loader_reads(isolated_cache, tmp_path):
    write_cifar10_npz(tmp_path / "a" / "cifar10")
    write_cifar_pickles(tmp_path / "b" / "cifar-10-batches-py", hundred=False)
    assert [f.name for f in data.data_files("cifar10", tmp_path / "a")][-1] == "test_batch.npz"
    assert data.fingerprint("cifar10", tmp_path / "a") != data.fingerprint("cifar10", tmp_path / "b")
    write_cifar_pickles(tmp_path / "c" / "cifar-100-python", hundred=True)
    assert [f.name for f in data.data_files("cifar100", tmp_path / "c")] == ["train", "test"]
    assert data.data_files("cifar100", tmp_path / "a") == [] and data.fingerprint("random-vectors") is None
