"""Datasets as in-memory uint8 tensors: MNIST, Fashion-MNIST, CIFAR-10 and CIFAR-100.

Every loader returns a :class:`Dataset` whose images are ``uint8`` tensors in NCHW
layout (MNIST ``[N, 1, 28, 28]``, CIFAR ``[N, 3, 32, 32]``) and whose labels are
``int64``. Nothing is normalized here; preprocessing (``scale``, Zhang et al.'s
crop-and-whiten, per-channel standardization) lives in the pure functions at the
bottom of this module so that corruptions can act on raw pixels first.

Where data is looked for, in order (the first root that holds the files wins):

1. the ``root`` argument of :func:`load_dataset`;
2. the environment variable ``LIB_DATA_DIR``;
3. ``../shared/data`` beside the repository checkout (and beside the working directory);
4. torchvision's folder ``~/.cache/lib/torchvision`` (or ``LIB_TORCHVISION_DIR``), where
   torchvision downloads the dataset if, and only if, the network allows.

Each root may use either the ``shared/data`` layout (``mnist/*.gz``,
``fashion-mnist/*.gz``, ``cifar10/*.npz``, ``cifar100/*.npz``) or torchvision's
layout (``MNIST/raw``, ``FashionMNIST/raw``, ``cifar-10-batches-py``,
``cifar-100-python``). A dataset found nowhere raises :class:`DatasetNotFound`,
which lists every place and file that was tried.

:func:`fingerprint` is the content of a data set as loaded (its arrays' SHA-256, whatever root or format holds
them), computed once per set of files: every run's key includes it (:func:`lib.keys.run_key`), so a run trained on
another copy of a data set is never served for this one.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import os
import pickle
import shutil
import zipfile
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from lib import settings

ENV_DATA_DIR = "LIB_DATA_DIR"
ENV_TORCHVISION_DIR = "LIB_TORCHVISION_DIR"
REPO_ROOT = Path(__file__).resolve().parents[1]

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
DATASETS = ("mnist", "fashion-mnist", "cifar10", "cifar100")
SYNTHETIC = ("random-vectors",)  # generated in memory, never looked for on disk
# (training, test) images of each data set, to check a subset's size without reading the data
SIZES = {"mnist": (60_000, 10_000), "fashion-mnist": (60_000, 10_000), "cifar10": (50_000, 10_000),
         "cifar100": (50_000, 10_000), "random-vectors": (100, 100)}
SPLIT_SIZES = {"theunissen": (55_000, 10_000)}  # Theunissen et al. Appendix A: 55k train / 5k validation / 10k evaluation


def split_sizes(name: str, split: str = "standard") -> tuple[int, int]:
    """(training, test) images of data set ``name`` under ``split`` (see :func:`resplit`), from :data:`SIZES`."""
    return SPLIT_SIZES.get(split, SIZES[name]) if name in SIZES else SIZES[name]


@dataclass(frozen=True)
class Dataset:
    """A labelled train/test split held in memory.

    ``x_*`` are image tensors in NCHW layout (``uint8`` as loaded; corruptions such as
    Zhang et al.'s Gaussian images produce ``float32`` in the same 0-255 pixel units).
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    class_names: tuple[str, ...]
    source: str = ""

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}, train={tuple(self.x_train.shape)}, test={tuple(self.x_test.shape)}, "
                f"classes={self.num_classes}, source={self.source!r})")


class DatasetNotFound(FileNotFoundError):
    """Raised when no candidate root holds a dataset; the message lists what was tried."""


# ---------------------------------------------------------------------------------------------
# Where to look


def candidate_roots(root: str | os.PathLike | None = None) -> list[tuple[str, Path]]:
    """The roots searched, in order, each with a short label saying why it is searched."""
    roots: list[tuple[str, Path]] = []
    if root is not None:
        roots.append(("explicit root", Path(root).expanduser()))
    if settings.data_dir() is not None:
        roots.append((f"${ENV_DATA_DIR}", settings.data_dir()))
    for shared in (REPO_ROOT.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"):
        if all(shared.resolve() != r.resolve() for _, r in roots):
            roots.append(("../shared/data", shared))
    roots.append(("torchvision folder", torchvision_root()))
    return roots


def torchvision_root() -> Path:
    return settings.torchvision_dir()


def _expected_files(name: str, root: Path) -> list[Path]:
    """The files each layout needs under ``root``: the shared layout first, then torchvision's."""
    if name in ("mnist", "fashion-mnist"):
        shared = [root / name / f"{f}.gz" for f in IDX_FILES]
        tv = root / ("MNIST" if name == "mnist" else "FashionMNIST") / "raw"
        return shared + [tv / f for f in IDX_FILES]
    if name == "cifar10":
        return [root / "cifar10" / f"data_batch_{k}.npz" for k in range(1, 6)] + [root / "cifar10" / "test_batch.npz",
                root / "cifar-10-batches-py" / "data_batch_1", root / "cifar-10-batches-py" / "test_batch"]
    return [root / "cifar100" / "*.npz (keys x_train, y_train, x_test, y_test)",
            root / "cifar-100-python" / "train", root / "cifar-100-python" / "test"]


# ---------------------------------------------------------------------------------------------
# Readers for each on-disk format


class DatasetCorrupt(ValueError):
    """A data file exists but cannot be read whole (truncated, damaged); the message names the file."""


_READ_ERRORS = (EOFError, OSError, zlib.error, zipfile.BadZipFile, pickle.UnpicklingError, ValueError, KeyError,
                IndexError)


def _corrupt(path: Path, error: BaseException) -> DatasetCorrupt:
    return DatasetCorrupt(f"data file {path} is damaged or truncated ({type(error).__name__}: {error}). "
                          f"Replace it with an intact copy (e.g. from ../shared/data, or delete it to let torchvision "
                          f"download it again).")


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (LeCun's MNIST format), gzip-compressed or not; :class:`DatasetCorrupt` if damaged."""
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except _READ_ERRORS as error:
        raise _corrupt(path, error) from None
    if len(data) < 4:
        raise _corrupt(path, EOFError(f"only {len(data)} bytes"))
    magic = int.from_bytes(data[0:4], "big")
    if magic >> 8 != 0x08:  # 0x08 = unsigned byte
        raise DatasetCorrupt(f"{path}: not a uint8 IDX file (magic {magic:#x})")
    ndim = magic & 0xFF
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    array = np.frombuffer(data, dtype=np.uint8, offset=min(4 + 4 * ndim, len(data)))
    if array.size != int(np.prod(shape)):
        raise DatasetCorrupt(f"data file {path}: header says {shape} but holds {array.size} values (truncated file?)")
    return array.reshape(shape)


def _read_npz(path: Path, keys: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file (or those named in ``keys``), read now; :class:`DatasetCorrupt` if damaged."""
    try:
        with np.load(path) as z:
            return {k: z[k] for k in (keys or z.files)}
    except _READ_ERRORS as error:
        raise _corrupt(path, error) from None


def _find_idx(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    return None


def _load_idx_folder(folder: Path) -> tuple[np.ndarray, ...] | None:
    paths = [_find_idx(folder, stem) for stem in IDX_FILES]
    if any(p is None for p in paths):
        return None
    x_train, y_train, x_test, y_test = (read_idx(p) for p in paths)
    return x_train[:, None], y_train, x_test[:, None], y_test


def _load_cifar10_npz(folder: Path) -> tuple[np.ndarray, ...] | None:
    names = [f"data_batch_{k}.npz" for k in range(1, 6)] + ["test_batch.npz"]
    if not all((folder / n).is_file() for n in names):
        return None
    batches = [_read_npz(folder / n, ("x", "y")) for n in names]
    x_train = np.concatenate([b["x"] for b in batches[:5]])
    y_train = np.concatenate([b["y"] for b in batches[:5]])
    return x_train.transpose(0, 3, 1, 2), y_train, batches[5]["x"].transpose(0, 3, 1, 2), batches[5]["y"]


def _load_cifar100_npz(folder: Path) -> tuple[np.ndarray, ...] | None:
    files = sorted(folder.glob("*.npz")) if folder.is_dir() else []
    data: dict[str, np.ndarray] = {}
    for f in files:
        data.update(_read_npz(f))
    if not all(k in data for k in ("x_train", "y_train", "x_test", "y_test")):
        return None
    hwc = data["x_train"].shape[-1] == 3
    fix = (lambda x: x.transpose(0, 3, 1, 2)) if hwc else (lambda x: x)
    return fix(data["x_train"]), data["y_train"].ravel(), fix(data["x_test"]), data["y_test"].ravel()


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            return pickle.load(f, encoding="latin1")
    except _READ_ERRORS as error:
        raise _corrupt(path, error) from None


def _load_cifar_pickles(folder: Path, hundred: bool) -> tuple[np.ndarray, ...] | None:
    """Read the original python-pickle CIFAR batches (the layout torchvision downloads)."""
    train = ["train"] if hundred else [f"data_batch_{k}" for k in range(1, 6)]
    test = ["test"] if hundred else ["test_batch"]
    if not all((folder / n).is_file() for n in train + test):
        return None
    key = "fine_labels" if hundred else "labels"

    def read(names: list[str]) -> tuple[np.ndarray, np.ndarray]:
        parts = [_unpickle(folder / n) for n in names]
        x = np.concatenate([np.asarray(p["data"], dtype=np.uint8).reshape(-1, 3, 32, 32) for p in parts])
        y = np.concatenate([np.asarray(p[key]) for p in parts])
        return x, y

    return (*read(train), *read(test))


def _idx_files(folder: Path) -> list[Path] | None:
    paths = [_find_idx(folder, stem) for stem in IDX_FILES]
    return None if any(p is None for p in paths) else paths


def _named_files(folder: Path, names: list[str]) -> list[Path] | None:
    paths = [folder / n for n in names]
    return paths if all(p.is_file() for p in paths) else None


def _cifar100_npz_files(folder: Path) -> list[Path] | None:
    """The ``.npz`` files of ``folder`` if together they hold the four arrays :func:`_load_cifar100_npz` needs."""
    files = sorted(folder.glob("*.npz")) if folder.is_dir() else []
    names: set[str] = set()
    for f in files:
        try:
            with np.load(f) as z:
                names.update(z.files)
        except _READ_ERRORS as error:
            raise _corrupt(f, error) from None
    return files if {"x_train", "y_train", "x_test", "y_test"} <= names else None


def _layouts(name: str, root: Path) -> list[tuple[Path, Callable[[Path], list[Path] | None], Callable]]:
    """Where ``name`` may lie under ``root``, in the order searched: (folder, the files it needs there or ``None``,
    the reader of the folder)."""
    if name in ("mnist", "fashion-mnist"):
        tv = "MNIST" if name == "mnist" else "FashionMNIST"
        return [(folder, _idx_files, _load_idx_folder) for folder in (root / name, root / tv / "raw")]
    if name == "cifar10":
        return [(root / "cifar10", lambda f: _named_files(f, [f"data_batch_{k}.npz" for k in range(1, 6)]
                                                           + ["test_batch.npz"]), _load_cifar10_npz),
                (root / "cifar-10-batches-py", lambda f: _named_files(f, [f"data_batch_{k}" for k in range(1, 6)]
                                                                       + ["test_batch"]),
                 lambda f: _load_cifar_pickles(f, hundred=False))]
    return [(root / "cifar100", _cifar100_npz_files, _load_cifar100_npz),
            (root / "cifar-100-python", lambda f: _named_files(f, ["train", "test"]),
             lambda f: _load_cifar_pickles(f, hundred=True))]


def _locate(name: str, root: Path) -> tuple[Path, list[Path], Callable] | None:
    """The first folder under ``root`` that holds ``name``: (folder, the files read from it, its reader)."""
    for folder, files_of, reader in _layouts(name, root):
        files = files_of(folder)
        if files is not None:
            return folder, files, reader
    return None


def _read_from_root(name: str, root: Path) -> tuple[tuple[np.ndarray, ...], str] | None:
    found = _locate(name, root)
    if found is None:
        return None
    folder, _, reader = found
    arrays = reader(folder)
    return None if arrays is None else (arrays, str(folder))


def _try_torchvision_download(name: str, root: Path) -> None:
    """Let torchvision download ``name`` into ``root``; leave nothing half-written on failure."""
    from torchvision import datasets as tvd

    cls = {"mnist": tvd.MNIST, "fashion-mnist": tvd.FashionMNIST, "cifar10": tvd.CIFAR10, "cifar100": tvd.CIFAR100}[name]
    before = set(root.iterdir()) if root.is_dir() else set()
    try:
        root.mkdir(parents=True, exist_ok=True)
        for train in (True, False):
            cls(str(root), train=train, download=True)
    except Exception:
        for path in set(root.iterdir()) - before:
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
        raise


def _class_names(name: str, num_classes: int) -> tuple[str, ...]:
    if name == "cifar10":
        return CIFAR10_CLASSES
    if name == "fashion-mnist":
        return FASHION_CLASSES
    return tuple(str(c) for c in range(num_classes))


@functools.lru_cache(maxsize=8)
def _load_cached(name: str, root: str | None, download: bool, env_root: str | None) -> Dataset:
    """Cached by every input that changes where data is found (``env_root`` is ``$LIB_DATA_DIR``)."""
    tried: list[str] = []
    roots = candidate_roots(root)
    for label, path in roots:
        found = _read_from_root(name, path)
        if found is None:
            tried.append(f"  - {label}: {path}\n" + "".join(f"      {f}\n" for f in _expected_files(name, path)))
            continue
        (x_train, y_train, x_test, y_test), source = found
        num_classes = 100 if name == "cifar100" else 10
        return Dataset(name, torch.from_numpy(np.array(x_train, order="C")), torch.from_numpy(y_train.astype(np.int64)),
                       torch.from_numpy(np.array(x_test, order="C")), torch.from_numpy(y_test.astype(np.int64)),
                       num_classes, _class_names(name, num_classes), source)
    error = ""
    if download:
        tv_root = torchvision_root()
        try:
            _try_torchvision_download(name, tv_root)
            found = _read_from_root(name, tv_root)
            if found is not None:
                return _load_cached(name, root, False, env_root)
        except Exception as exc:  # no network, a mirror down, a checksum mismatch ...
            error = f"\ntorchvision could not download it into {tv_root}: {type(exc).__name__}: {exc}\n"
    raise DatasetNotFound(
        f"Dataset {name!r} was not found. Looked in, in order:\n{''.join(tried)}{error}"
        f"To fix: pass root=..., or set {ENV_DATA_DIR} to a folder in one of these layouts, or put the "
        f"files in ../shared/data (see its README.md), or run once where the network lets torchvision download.")


def load_dataset(name: str, root: str | os.PathLike | None = None, download: bool = True) -> Dataset:
    """Load ``name`` (one of :data:`DATASETS`) from the first root that holds it.

    ``download=True`` lets torchvision fetch the data into :func:`torchvision_root` when no
    root holds it; without a network this fails and :class:`DatasetNotFound` says what was tried.
    """
    if name == "random-vectors":
        return random_vectors()
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {DATASETS + SYNTHETIC}")
    return _load_cached(name, None if root is None else str(root), download, settings.data_dir())


def data_files(name: str, root: str | os.PathLike | None = None) -> list[Path]:
    """The files :func:`load_dataset` ``(name, root)`` reads: those of the first root that holds the data set
    (``[]`` if none does, or for a generated data set)."""
    if name not in DATASETS:
        return []
    for _, path in candidate_roots(root):
        found = _locate(name, path)
        if found is not None:
            return found[1]
    return []


def _array_digest(data: Dataset) -> str:
    """SHA-256 of a data set's four arrays as loaded: each one's name, dtype, shape and bytes."""
    digest = hashlib.sha256()
    for part in ("x_train", "y_train", "x_test", "y_test"):
        array = np.ascontiguousarray(getattr(data, part).numpy())
        digest.update(f"{part} {array.dtype} {array.shape}".encode())
        digest.update(array.data)
    return digest.hexdigest()


@functools.lru_cache(maxsize=32)
def _fingerprint_of(name: str, files: tuple[tuple[str, int, int], ...], root: str | None) -> str:
    """The fingerprint of ``name`` read from ``files`` ((path, size, mtime) each), from the on-disk record of an
    earlier computation when there is one (``<cache>/.data-fingerprints/``), else computed and recorded."""
    record = settings.cache_dir() / ".data-fingerprints" / (
        hashlib.sha256(json.dumps([name, files]).encode()).hexdigest()[:32] + ".json")
    try:
        stored = json.loads(record.read_text())
        if stored["name"] == name and [tuple(f) for f in stored["files"]] == list(files):
            return stored["fingerprint"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    # read now, not from load_dataset's in-process cache: the files may have changed since it read them
    value = _array_digest(_load_cached.__wrapped__(name, root, False, settings.data_dir()))[:32]
    try:
        record.parent.mkdir(parents=True, exist_ok=True)
        temporary = record.with_name(f".tmp-{record.name}-{os.getpid()}")
        temporary.write_text(json.dumps(dict(name=name, files=files, fingerprint=value)))
        os.replace(temporary, record)
    except OSError:  # a read-only cache: computed again next time
        pass
    return value


def fingerprint(name: str, root: str | os.PathLike | None = None) -> str | None:
    """The content of data set ``name`` as :func:`load_dataset` ``(name, root)`` reads it: the SHA-256 (32 hex
    digits) of its four arrays (dtype, shape, bytes), the same whichever root or file format (``.gz`` or not, ``.npz``
    or pickles) holds them. ``None`` for a generated data set (:data:`SYNTHETIC`, whose code is this module's).

    Computed once per set of files (by path, size and modification time; the record is kept under
    ``<cache>/.data-fingerprints/``, :func:`lib.settings.cache_dir`); afterwards it costs a few ``stat`` calls. A data
    set found nowhere is loaded first (downloaded where torchvision may, else :class:`DatasetNotFound`)."""
    if name in SYNTHETIC:
        return None
    files = data_files(name, root)
    if not files:
        load_dataset(name, root)  # downloads it, or raises DatasetNotFound naming every place tried
        files = data_files(name, root)
    stats = []
    for path in files:
        stat = path.stat()
        stats.append((str(path.resolve()), stat.st_size, stat.st_mtime_ns))
    return _fingerprint_of(name, tuple(stats), None if root is None else str(root))


@functools.lru_cache(maxsize=4)
def random_vectors(n: int = 100, dim: int = 50, num_classes: int = 5, n_test: int = 100, seed: int = 0) -> Dataset:
    """Theunissen et al.'s Figure 1 task: ``n`` random ``dim``-dimensional vectors in ``num_classes`` classes.

    Vectors are i.i.d. standard normal (float32, shape ``[n, dim]``); labels are balanced
    (``n / num_classes`` per class) and assigned at random, so there is nothing to generalize:
    the test set is a fresh draw of the same kind. Deterministic in ``seed``.
    """
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n + n_test, dim, generator=generator)
    y_train = (torch.arange(n) % num_classes)[torch.randperm(n, generator=generator)]
    y_test = (torch.arange(n_test) % num_classes)[torch.randperm(n_test, generator=generator)]
    return Dataset("random-vectors", x[:n], y_train, x[n:], y_test, num_classes,
                   tuple(str(c) for c in range(num_classes)), source=f"generated (seed {seed})")


def subset(data: Dataset, n_train: int | None = None, n_test: int | None = None, seed: int = 0) -> Dataset:
    """A fixed random subset (same ``seed`` → same images), for the ``smoke`` and ``cpu`` scales."""
    generator = torch.Generator().manual_seed(seed)

    def pick(x: torch.Tensor, y: torch.Tensor, n: int | None) -> tuple[torch.Tensor, torch.Tensor]:
        if n is None or n >= len(y):
            return x, y
        index = torch.randperm(len(y), generator=generator)[:n].sort().values
        return x[index], y[index]

    x_train, y_train = pick(data.x_train, data.y_train, n_train)
    x_test, y_test = pick(data.x_test, data.y_test, n_test)
    return replace(data, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)


def resplit(data: Dataset, n_train: int, n_validation: int, n_test: int, seed: int = 0) -> tuple[Dataset, Dataset]:
    """Pool train and test, then draw a seeded random train / validation / evaluation split.

    Theunissen et al. (Appendix A) split all 70,000 MNIST images into 55,000 / 5,000 / 10,000.
    Returns ``(train_and_evaluation, train_and_validation)`` datasets sharing the same train part.
    """
    x = torch.cat([data.x_train, data.x_test])
    y = torch.cat([data.y_train, data.y_test])
    if n_train + n_validation + n_test > len(y):
        raise ValueError(f"asked for {n_train + n_validation + n_test} images but {data.name} has {len(y)}")
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    tr, va, te = order[:n_train], order[n_train:n_train + n_validation], order[n_train + n_validation:][:n_test]
    evaluation = replace(data, x_train=x[tr], y_train=y[tr], x_test=x[te], y_test=y[te])
    validation = replace(data, x_train=x[tr], y_train=y[tr], x_test=x[va], y_test=y[va])
    return evaluation, validation


# ---------------------------------------------------------------------------------------------
# Preprocessing (pure functions on image tensors in 0-255 pixel units)


def scale_pixels(x: torch.Tensor) -> torch.Tensor:
    """Divide by 255 to map pixels into [0, 1] (all four papers start here)."""
    return x.float() / 255.0


def center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """Crop the central ``size`` x ``size`` window (Zhang et al., appendix A: 32 → 28)."""
    h, w = x.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    return x[..., top:top + size, left:left + size]


def per_image_standardize(x: torch.Tensor) -> torch.Tensor:
    """TensorFlow's ``per_image_standardization``: (x − mean) / max(std, 1/√N) per image, N values each."""
    flat = x.flatten(1).float()
    mean = flat.mean(1, keepdim=True)
    std = flat.std(1, unbiased=False, keepdim=True).clamp_min(1.0 / flat.shape[1] ** 0.5)
    return ((flat - mean) / std).view_as(x)


def channel_statistics(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation over a (training) set, in the units of ``x``."""
    per_channel = x.float().transpose(0, 1).flatten(1)
    return per_channel.mean(1), per_channel.std(1, unbiased=False)


def standardize_channels(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """(x − mean_c) / std_c per channel, with statistics from the training set."""
    shape = (1, -1) + (1,) * (x.dim() - 2)
    return (x.float() - mean.view(shape)) / std.view(shape)


PREPROCESSING = ("scale", "zhang", "standardize", "none")


def preprocess(x_train: torch.Tensor, x_test: torch.Tensor, how: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply a named preprocessing to train and test images (statistics from train only).

    - ``scale``: pixels / 255 (MASC MLP, Theunissen et al.);
    - ``zhang``: /255, centre crop 32 → 28, per-image standardization (Zhang et al., appendix A);
    - ``standardize``: /255 then per-channel standardization (MASC CNN, appendix A.2);
    - ``none``: float32 as given.
    """
    if how == "scale":
        return scale_pixels(x_train), scale_pixels(x_test)
    if how == "zhang":
        return tuple(per_image_standardize(center_crop(scale_pixels(x), 28)) for x in (x_train, x_test))
    if how == "standardize":
        x_train, x_test = scale_pixels(x_train), scale_pixels(x_test)
        mean, std = channel_statistics(x_train)
        return standardize_channels(x_train, mean, std), standardize_channels(x_test, mean, std)
    if how == "none":
        return x_train.float(), x_test.float()
    raise ValueError(f"unknown preprocessing {how!r}; choose one of {PREPROCESSING}")
