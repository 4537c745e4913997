"""Small slices of the real data sets written in their on-disk formats, for tests that start many processes
(each process then reads a few hundred KB instead of decompressing all of MNIST)."""

from __future__ import annotations

from pathlib import Path

from conftest import write_idx


def write_mnist_slice(root: Path, n_train: int = 1000, n_test: int = 300) -> Path:
    """The first ``n_train`` / ``n_test`` real MNIST images and labels as uncompressed IDX files in ``root/mnist``."""
    from lib.data import load_dataset

    data = load_dataset("mnist")
    folder = root / "mnist"
    write_idx(folder / "train-images-idx3-ubyte", data.x_train[:n_train, 0].numpy())
    write_idx(folder / "train-labels-idx1-ubyte", data.y_train[:n_train].numpy().astype("uint8"))
    write_idx(folder / "t10k-images-idx3-ubyte", data.x_test[:n_test, 0].numpy())
    write_idx(folder / "t10k-labels-idx1-ubyte", data.y_test[:n_test].numpy().astype("uint8"))
    return root
