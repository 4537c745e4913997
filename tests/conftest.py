"""Shared fixtures: tiny data sets written in the real on-disk formats, and an isolated run cache."""

from __future__ import annotations

import gzip
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

# Tests never read the committed results store (results/) unless they say so: a page built by a test shows only what
# the test recorded, and the smoke scorecard counts only smoke claims. Kernels started by tests inherit this.
import tempfile

os.environ["LIB_RESULTS_DIR"] = tempfile.mkdtemp(prefix="lib-results-")
# Tests train into the checkout's own cache (`make clean-runs` empties it), never into the user's cache folder that
# lib.settings.cache_dir() defaults to, unless LIB_CACHE_DIR names one.
os.environ.setdefault("LIB_CACHE_DIR", str(Path(__file__).resolve().parents[1] / "_runs"))


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write ``array`` (uint8) as an IDX file, gzip-compressed when the name ends in .gz."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in array.shape)
    payload = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)


def fake_images(n: int, shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, *shape), dtype=np.uint8)


def write_mnist_like(folder: Path, n_train: int = 30, n_test: int = 10, gz: bool = True) -> dict:
    suffix = ".gz" if gz else ""
    arrays = {
        "train-images-idx3-ubyte": fake_images(n_train, (28, 28), 1),
        "train-labels-idx1-ubyte": np.arange(n_train, dtype=np.uint8) % 10,
        "t10k-images-idx3-ubyte": fake_images(n_test, (28, 28), 2),
        "t10k-labels-idx1-ubyte": (np.arange(n_test, dtype=np.uint8) * 3) % 10,
    }
    for name, array in arrays.items():
        write_idx(folder / f"{name}{suffix}", array)
    return arrays


def write_cifar10_npz(folder: Path, per_batch: int = 4, n_test: int = 5) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    xs, ys = [], []
    for k in range(1, 6):
        x, y = fake_images(per_batch, (32, 32, 3), 10 + k), (np.arange(per_batch, dtype=np.uint8) + k) % 10
        np.savez_compressed(folder / f"data_batch_{k}.npz", x=x, y=y, lossy=np.zeros(per_batch, bool))
        xs.append(x), ys.append(y)
    x_test, y_test = fake_images(n_test, (32, 32, 3), 20), np.arange(n_test, dtype=np.uint8) % 10
    np.savez_compressed(folder / "test_batch.npz", x=x_test, y=y_test, lossy=np.zeros(n_test, bool),
                        original_order=np.ones(n_test, bool))
    return {"x_train": np.concatenate(xs), "y_train": np.concatenate(ys), "x_test": x_test, "y_test": y_test}


def write_cifar_pickles(folder: Path, hundred: bool, n: int = 6) -> dict:
    """The python-pickle layout of the original archives (what torchvision downloads)."""
    folder.mkdir(parents=True, exist_ok=True)
    key = "fine_labels" if hundred else "labels"
    k = 100 if hundred else 10
    names = (["train"], ["test"]) if hundred else ([f"data_batch_{i}" for i in range(1, 6)], ["test_batch"])
    out = {}
    for split, files in zip(("train", "test"), names):
        xs, ys = [], []
        for j, name in enumerate(files):
            x = fake_images(n, (3 * 32 * 32,), 30 + j + (0 if split == "train" else 50))
            y = [(i * 7 + j) % k for i in range(n)]
            with open(folder / name, "wb") as f:
                pickle.dump({"data": x, key: y}, f)
            xs.append(x), ys.append(y)
        out[f"x_{split}"] = np.concatenate(xs).reshape(-1, 3, 32, 32)
        out[f"y_{split}"] = np.concatenate(ys)
    return out


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch) -> Path:
    """A fresh, empty run cache for the duration of one test."""
    cache = tmp_path / "runs"
    monkeypatch.setenv("LIB_CACHE_DIR", str(cache))
    return cache


@pytest.fixture
def no_network_data(tmp_path, monkeypatch) -> Path:
    """Point the data search at empty folders only, with downloads disabled by the test itself."""
    monkeypatch.setenv("LIB_TORCHVISION_DIR", str(tmp_path / "torchvision"))
    monkeypatch.delenv("LIB_DATA_DIR", raising=False)
    return tmp_path


def papermill_cli(chapter: str, out: Path, *arguments: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """Execute ``book/<chapter>.md`` the way the README tells readers to: jupytext to ipynb, piped into papermill."""
    repo = Path(__file__).resolve().parents[1]
    bin_dir = Path(sys.executable).parent
    command = (f"{bin_dir / 'jupytext'} --to ipynb -o - book/{chapter}.md | "
               f"{bin_dir / 'papermill'} - {out} --cwd book " + " ".join(arguments))
    return subprocess.run(command, shell=True, cwd=repo, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(repo)})


def execute_chapter_outputs(chapter: str, out: Path, *arguments: str) -> tuple[list[dict], list[dict], str]:
    """Run :func:`papermill_cli` and check it raised nothing; returns every code output, the charts among them and
    the printed text."""
    import nbformat

    result = papermill_cli(chapter, out, *arguments)
    assert result.returncode == 0, result.stderr[-3000:]
    nb = nbformat.read(out, as_version=4)
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    assert_charts_pass(nb)
    charts = [o for o in outputs if "vega-embed" in o.get("data", {}).get("text/html", "")]
    return outputs, charts, "".join(o.get("text", "") for o in outputs if o.output_type == "stream")


def execute_in_isolation(chapter: str, root: Path, scale: str = "smoke"):
    """Execute ``book/<chapter>.md`` with papermill at ``scale`` in an empty run cache and claims folder under
    ``root`` (this checkout's ``lib`` on the kernel's path); returns the executed notebook."""
    import jupytext
    import nbformat
    import papermill

    repo = Path(__file__).resolve().parents[1]
    source = root / "in.ipynb"
    nbformat.write(jupytext.read(repo / "book" / f"{chapter}.md"), source)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LIB_CACHE_DIR", str(root / "runs"))
        patch.setenv("LIB_CLAIMS_DIR", str(root / "claims"))
        patch.setenv("PYTHONPATH", str(repo))
        papermill.execute_notebook(str(source), str(root / "out.ipynb"), parameters={"scale": scale},
                                   cwd=str(repo / "book"), progress_bar=False)
    nb = nbformat.read(root / "out.ipynb", as_version=4)
    assert_charts_pass(nb)
    return nb


def assert_charts_pass(notebook) -> None:
    """Every chart an executed chapter displays passes :func:`lib.book.plots.chart_problems` (vega-lite's warnings,
    facets that draw only their own rows, valid axis domains, one legend each, the book's palette; see
    tests/test_figures.py), so each execution of a chapter in the suite checks its figures at no extra cost."""
    from lib.book import plots

    problems = plots.notebook_chart_problems(notebook)
    assert not problems, "charts with problems:\n" + "\n".join(problems)


CHAPTER_EXECUTORS = ("papermill_cli", "execute_in_isolation", "execute_chapter_outputs", "book.build(", 'cli("run"')


def pytest_collection_modifyitems(config, items):
    """Mark every test that executes a chapter or builds the book ``book``, so that ``pytest -m "not book"`` runs the
    library's tests alone (and ``pytest -m "not book and not slow"`` is the fast loop: ``slow`` marks the library
    tests that train real networks for many steps, start clusters or subprocesses). A test is a book test when its module is ``test_book`` or a ``*_chapter`` module
    (whose fixtures execute the chapter), or when its own source calls a chapter executor."""
    import inspect

    for item in items:
        name = item.module.__name__.rsplit(".", 1)[-1]
        try:
            own = inspect.getsource(item.function)
        except (OSError, TypeError):
            own = ""
        if (name == "test_book" or name.endswith("_chapter")
                or any(executor in own for executor in CHAPTER_EXECUTORS)):
            item.add_marker(pytest.mark.book)
