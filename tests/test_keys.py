"""Run keys (lib.keys): they change when a result can (the training code's behaviour, the data's content) and only
then (docstrings, comments, layout, the data's file format or folder do not count); the same key gives the same bits."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import lib.keys as keys
import lib.runs as runs
from conftest import write_idx
from lib.data import data_files, read_idx
from lib.train import RunConfig

REPO = Path(__file__).resolve().parents[1]
CONFIG = RunConfig(dataset="mnist", n_train=128, n_test=64, preprocessing="scale", model="mlp1x64",
                   lr=0.05, max_epochs=2, stop_train_acc=None, batch_size=64)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


@pytest.fixture
def package_copy(tmp_path) -> Path:
    copy = tmp_path / "lib"
    shutil.copytree(keys.PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def key_with(package: Path, config: RunConfig, monkeypatch) -> str:
    """The key ``config`` would have with the training code of ``package``."""
    with monkeypatch.context() as patch:
        patch.setattr(keys, "code_version", lambda: keys.training_digest(package))
        return keys.run_key(config)


def test_docstring_comment_and_layout_edits_keep_every_key(package_copy, monkeypatch):
    before = key_with(package_copy, CONFIG, monkeypatch)
    assert before == keys.run_key(CONFIG)
    train = package_copy / "train.py"
    edit(train, '"""Training on tensors held in memory', '"""Training (reworded) on tensors held in memory')
    edit(train, '    """Mean loss and accuracy of', '    """The mean loss and the accuracy of')
    edit(train, "def _loss_fn(config: RunConfig, num_classes: int):\n",
         "def _loss_fn(config: RunConfig, num_classes: int):\n    # which loss: a comment added\n\n")
    edit(package_copy / "models.py", "class MLP(ProbedSequential):\n",
         "# a comment above a class\nclass MLP(ProbedSequential):\n")
    edit(package_copy / "data.py", "def subset(data: Dataset, n_train: int | None = None, n_test: int | None = None, "
         "seed: int = 0) -> Dataset:\n", "def subset(data: Dataset, n_train: int | None = None,\n"
         "           n_test: int | None = None, seed: int = 0) -> Dataset:  # the same signature, reflowed\n")
    assert keys.training_digest(package_copy) == keys.training_digest()
    assert key_with(package_copy, CONFIG, monkeypatch) == before


def test_an_edit_of_the_loss_changes_every_key(package_copy, monkeypatch):
    before = keys.run_key(CONFIG)
    edit(package_copy / "train.py", "        return nn.functional.cross_entropy\n",
         "        return lambda logits, y: nn.functional.cross_entropy(logits, y, label_smoothing=0.1)\n")
    assert keys.training_digest(package_copy) != keys.training_digest()
    assert key_with(package_copy, CONFIG, monkeypatch) != before
    other = RunConfig(**{**CONFIG.to_dict(), "dataset": "random-vectors", "preprocessing": "none", "n_train": None,
                         "n_test": None})
    assert key_with(package_copy, other, monkeypatch) != keys.run_key(other)


def test_the_behaviour_digest_sees_code_not_text():
    digest = keys.behaviour_digest
    base = digest("def f(a, b):\n    '''Doc.'''\n    return a - b  # subtract\n")
    assert digest("def f(a, b):\n    return a - b\n") == base
    assert digest("def f(a, b):\n\n    '''Other words.'''\n\n    return (a -\n            b)\n") == base
    assert digest("def f(a, b):\n    return b - a\n") != base
    assert digest("def f(a, b=1):\n    return a - b\n") != base
    assert digest("x = 1\n") != digest("x = 1.0\n") != digest("x = True\n")


def write_shifted_mnist(root: Path) -> None:
    """A parseable but wrong copy of the real MNIST in ``root/mnist``: every training label shifted by one."""
    folder = root / "mnist"
    folder.mkdir(parents=True)
    for path in data_files("mnist"):
        if path.name.startswith("train-labels"):
            labels = read_idx(path)
            write_idx(folder / "train-labels-idx1-ubyte.gz", ((labels.astype(int) + 1) % 10).astype("uint8"))
        else:
            shutil.copyfile(path, folder / path.name)


def test_a_wrong_copy_of_the_data_is_never_served_the_real_datas_run_nor_the_reverse(isolated_cache, tmp_path,
                                                                                     monkeypatch):
    monkeypatch.delenv("LIB_DATA_DIR", raising=False)
    real = runs.run(CONFIG, progress=False)
    real_key = runs.run_key(CONFIG)
    write_shifted_mnist(tmp_path / "wrong")
    monkeypatch.setenv("LIB_DATA_DIR", str(tmp_path / "wrong"))

    trained = []
    train = runs.train
    monkeypatch.setattr(runs, "train", lambda *a, **k: trained.append(a[0]) or train(*a, **k))
    assert runs.run_key(CONFIG) != real_key and not runs.is_cached(CONFIG)
    wrong = runs.run(CONFIG, progress=False)
    assert trained == [CONFIG]  # trained on the wrong copy, not served the real data's run
    assert not wrong.history.train_loss.equals(real.history.train_loss)

    monkeypatch.delenv("LIB_DATA_DIR")
    assert runs.run_key(CONFIG) == real_key
    again = runs.run(CONFIG, progress=False)
    assert trained == [CONFIG] and again.summary == real.summary  # the real data's run, not the wrong copy's


def test_the_same_data_in_another_folder_and_format_has_the_same_key(isolated_cache, tmp_path, monkeypatch):
    monkeypatch.delenv("LIB_DATA_DIR", raising=False)
    real_key = runs.run_key(CONFIG)
    folder = tmp_path / "copy" / "MNIST" / "raw"  # torchvision's layout, uncompressed
    folder.mkdir(parents=True)
    for path in data_files("mnist"):
        with gzip.open(path) as source:
            (folder / path.name.removesuffix(".gz")).write_bytes(source.read())
    monkeypatch.setenv("LIB_DATA_DIR", str(tmp_path / "copy"))
    assert data_files("mnist")[0].parent == folder
    assert runs.run_key(CONFIG) == real_key


GOLDEN = """
import hashlib, json, torch
torch.set_num_threads(1)
from lib import runs
from lib.train import RunConfig
out = {}
for model in ("mlp2x32", "mlp2x32-dropout0.5"):
    config = RunConfig(dataset="mnist", n_train=256, n_test=64, preprocessing="scale", model=model, lr=0.05,
                       max_epochs=3, stop_train_acc=None, batch_size=32)
    run = runs.run(config, progress=False)
    digest = hashlib.sha256(run.history.drop(columns="seconds").to_json().encode())
    for name, tensor in run.state_dict.items():
        digest.update(name.encode() + tensor.numpy().tobytes())
    out[model] = [runs.run_key(config), digest.hexdigest()]
print(json.dumps(out))
"""


@pytest.mark.slow
def test_golden_a_key_gives_the_same_bits_in_two_fresh_processes(tmp_path):
    """The same tiny runs (one with dropout) trained in two fresh processes, each with its own empty cache: the first
    process's weights and history are the expectation, and the second's must equal them bit for bit under the same
    key."""

    def train_in_a_fresh_process(cache: Path) -> dict:
        env = {**os.environ, "LIB_CACHE_DIR": str(cache), "PYTHONPATH": str(REPO)}
        out = subprocess.run([sys.executable, "-c", textwrap.dedent(GOLDEN)], cwd=REPO, env=env, capture_output=True,
                             text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        return json.loads(out.stdout.strip().splitlines()[-1])

    expected = train_in_a_fresh_process(tmp_path / "first")
    assert train_in_a_fresh_process(tmp_path / "second") == expected
    assert len({key for key, _ in expected.values()}) == 2


def test_a_fingerprint_is_computed_once_per_file_set(isolated_cache, monkeypatch):
    import lib.data as data

    monkeypatch.delenv("LIB_DATA_DIR", raising=False)
    data._fingerprint_of.cache_clear()
    first = data.fingerprint("mnist")
    records = list((isolated_cache / ".data-fingerprints").glob("*.json"))
    assert len(records) == 1 and json.loads(records[0].read_text())["fingerprint"] == first
    data._fingerprint_of.cache_clear()
    monkeypatch.setattr(data, "_array_digest", lambda *_: pytest.fail("the data was hashed again"))
    assert data.fingerprint("mnist") == first  # read from the record: the files did not change
    assert data.fingerprint("random-vectors") is None  # generated by lib.data's own code, which the key covers
