"""Faults: a killed training process resumes bit-identical from its checkpoint; two processes asking for the
same run train it once; a damaged cache entry is never used; a truncated data file is named."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

import lib.runs as runs
import lib.train as train_module
from lib.data import DatasetCorrupt, load_dataset
from lib.train import RunConfig, train
from slices import write_mnist_slice

REPO = Path(__file__).resolve().parents[1]
CONFIG = RunConfig(dataset="mnist", n_train=256, n_test=128, preprocessing="scale", model="mlp1x32", lr=0.05,
                   max_epochs=6, stop_train_acc=None, batch_size=64, randomization="partial_labels", corruption=0.5)


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread, as each Dask worker and each test subprocess here: tiny runs are faster so, and a
    machine shared by many processes does not thrash."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def mnist_slice(tmp_path_factory, monkeypatch):
    root = tmp_path_factory.getbasetemp() / "mnist-slice"
    if not (root / "mnist").is_dir():
        write_mnist_slice(root)
    monkeypatch.setenv("LIB_DATA_DIR", str(root))
    return root


def same_result(a, b) -> bool:
    return (all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)
            and a.history.drop(columns="seconds").equals(b.history.drop(columns="seconds")))


def python(code: str, **env) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_an_interrupted_run_resumes_bit_identical(tmp_path, monkeypatch, mnist_slice):
    """Interrupted after 3 of 6 epochs (an exception right after the epoch-3 checkpoint), then resumed."""
    reference = train(CONFIG, progress=False)
    checkpoint = tmp_path / "run.pt"
    original = train_module._save_checkpoint

    def save_then_crash(path, model, optimizer, schedule, rows, epoch, *args):
        original(path, model, optimizer, schedule, rows, epoch, *args)
        if epoch == 3:
            raise KeyboardInterrupt("interrupted after epoch 3")

    monkeypatch.setattr(train_module, "_save_checkpoint", save_then_crash)
    with pytest.raises(KeyboardInterrupt):
        train(CONFIG, checkpoint=checkpoint, checkpoint_every_s=0, progress=False)
    assert torch.load(checkpoint, weights_only=False)["epoch"] == 3
    monkeypatch.setattr(train_module, "_save_checkpoint", original)
    resumed = train(CONFIG, checkpoint=checkpoint, checkpoint_every_s=0, progress=False)
    assert same_result(resumed, reference) and checkpoint.exists()  # the run cache removes it once it is stored
@pytest.mark.slow
def test_a_killed_training_process_resumes_bit_identical(tmp_path, mnist_slice):
    """A subprocess training through the cache is killed with SIGKILL mid-run; the run resumes from its checkpoint."""
    config = RunConfig(**{**CONFIG.to_dict(), "max_epochs": 400})  # long enough never to finish before the kill
    cache = tmp_path / "runs"
    child = python(f"""
        import torch; torch.set_num_threads(1)
        import lib.runs as runs
        from lib.train import RunConfig
        runs.run(RunConfig(**{config.to_dict()!r}), progress=False)
        """, LIB_CACHE_DIR=str(cache), LIB_CHECKPOINT_EVERY_S="0", OMP_NUM_THREADS="1")
    checkpoint = cache / ".checkpoints" / f"{runs.run_key(config)}.pt"
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)  # checkpoints are written atomically: one that exists is whole
    child.wait()
    assert child.returncode == -signal.SIGKILL, child.stderr.read()[-2000:]
    epoch = torch.load(checkpoint, weights_only=False)["epoch"]
    assert 0 < epoch < config.max_epochs
    os.environ["LIB_CACHE_DIR"] = str(cache)
    try:
        assert not runs.is_cached(config)  # the killed process left no finished-looking entry
        assert [p.name for p in cache.iterdir() if not p.name.startswith(".")] == []
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            resumed = runs.run(config, progress=False)
            reference = train(config, progress=False)
        finally:
            torch.set_num_threads(threads)
    finally:
        del os.environ["LIB_CACHE_DIR"]
    assert same_result(resumed, reference) and not checkpoint.exists()
@pytest.mark.slow
def test_two_processes_asking_for_one_run_train_it_once(tmp_path, mnist_slice):
    cache = tmp_path / "runs"
    code = f"""
        import hashlib, torch
        import lib.runs as runs
        from lib.train import RunConfig
        run = runs.run(RunConfig(**{CONFIG.to_dict()!r}), progress=False)
        print(hashlib.sha256(b"".join(v.numpy().tobytes() for v in run.state_dict.values())).hexdigest())
        """
    children = [python(code, LIB_CACHE_DIR=str(cache), OMP_NUM_THREADS="1") for _ in range(2)]
    outputs = [child.communicate(timeout=180) for child in children]
    assert all(child.returncode == 0 for child in children), [err[-2000:] for _, err in outputs]
    assert outputs[0][0] == outputs[1][0]  # the same weights
    log = (cache / ".finished.log").read_text().splitlines()
    assert len(log) == 1 and log[0].split()[0] == runs.run_key(CONFIG)  # trained and stored once
    assert sum("being trained by another process" in err for _, err in outputs) == 1


@pytest.mark.parametrize("damage", ["truncate model.pt", "truncate history.json", "delete corrupted.pt",
                                    "flip a byte of model.pt", "delete manifest.json"])
def test_a_damaged_entry_is_never_used(isolated_cache, mnist_slice, damage):
    first = runs.run(CONFIG, progress=False)
    path = isolated_cache / runs.run_key(CONFIG)
    action, name = damage.split(" ", 1) if not damage.startswith("flip") else ("flip", "model.pt")
    target = path / name
    if action == "truncate":
        target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
    elif action == "delete":
        target.unlink()
    else:
        data = bytearray(target.read_bytes())
        data[-20] ^= 0xFF
        target.write_bytes(bytes(data))
    with pytest.raises(runs.DamagedRunError) as error:
        runs.load(CONFIG)
    assert str(path) in str(error.value) and f"rm -rf {path}" in str(error.value)
    with pytest.warns(UserWarning, match="damaged"):
        again = runs.run(CONFIG, progress=False)  # moved aside and trained again
    assert same_result(again, first)
    assert runs.entry_problem(path, runs.RUN_FILES) is None
    assert len(list((isolated_cache / ".damaged").iterdir())) == 1


def test_a_grid_retrains_a_damaged_entry(isolated_cache, mnist_slice):
    configs = runs.grid(CONFIG, seed=[0, 1])
    frame = runs.run_grid(configs)
    history = isolated_cache / runs.run_key(configs[1]) / "history.json"
    history.write_text(history.read_text()[:40])
    with pytest.warns(UserWarning, match="damaged"):
        again = runs.run_grid(configs)
    assert again.cached.tolist() == [True, False]
    assert again.final_test_acc.tolist() == frame.final_test_acc.tolist()


@pytest.mark.parametrize("failure", ["OSError ENOSPC", "torch's RuntimeError on a full disk"])
def test_a_failed_save_says_the_disk_is_full_and_keeps_the_checkpoint_to_resume(isolated_cache, mnist_slice,
                                                                                 monkeypatch, failure):
    import errno
    import shutil as shutil_module

    reference = train(CONFIG, progress=False)
    monkeypatch.setenv("LIB_CHECKPOINT_EVERY_S", "0")
    real_write = runs._write_file

    def full_disk(path, data=None, obj=None):
        if path.name == "model.pt":
            if failure.startswith("OSError"):
                raise OSError(errno.ENOSPC, "No space left on device")
            raise RuntimeError("[enforce fail at inline_container.cc:672] . PytorchStreamWriter failed writing file")
        real_write(path, data, obj)

    monkeypatch.setattr(runs, "_write_file", full_disk)
    disk_usage = shutil_module.disk_usage
    if failure.startswith("torch"):  # torch's error names no errno: the free space says why
        monkeypatch.setattr(shutil_module, "disk_usage", lambda path: shutil_module._ntuple_diskusage(10**9, 10**9, 0))
    checkpoint = isolated_cache / ".checkpoints" / f"{runs.run_key(CONFIG)}.pt"
    with pytest.raises(runs.RunNotStoredError) as error:
        runs.run(CONFIG, progress=False)
    message = str(error.value)
    assert "the disk is full" in message and str(checkpoint) in message and "resumes" in message, message
    assert checkpoint.is_file() and torch.load(checkpoint, weights_only=False)["epoch"] == CONFIG.max_epochs
    assert not runs.in_cache(CONFIG) and not list(isolated_cache.glob(".tmp-*"))  # nothing half-written left

    monkeypatch.setattr(runs, "_write_file", real_write)  # space again
    monkeypatch.setattr(shutil_module, "disk_usage", disk_usage)
    monkeypatch.setattr(train_module, "evaluate", lambda *a, **k: pytest.fail("an epoch was trained again"))
    resumed = runs.run(CONFIG, progress=False)  # every epoch is in the checkpoint: nothing is trained
    assert same_result(resumed, reference) and runs.in_cache(CONFIG)
    assert not checkpoint.exists()  # removed once the run is stored


def test_leftovers_of_an_interrupted_write_are_removed_when_that_run_next_starts(isolated_cache, mnist_slice):
    key = runs.run_key(CONFIG)
    leftover = isolated_cache / f".tmp-{key}-0123abcd"
    (leftover).mkdir(parents=True)
    (leftover / "model.pt").write_bytes(b"\0" * 1000)  # a killed write of the run
    half_checkpoint = isolated_cache / ".checkpoints" / f"{key}.tmp"
    half_checkpoint.parent.mkdir()
    half_checkpoint.write_bytes(b"\0" * 1000)
    other = isolated_cache / ".tmp-0123456789abcdef0123-0123abcd"  # another run's: it may be writing it now
    other.mkdir()
    runs.run(CONFIG, progress=False)
    assert not leftover.exists() and not half_checkpoint.exists() and other.is_dir()


def test_a_truncated_data_file_is_named(tmp_path, monkeypatch):
    source = Path(load_dataset("mnist").source)
    folder = tmp_path / "data" / "mnist"
    folder.mkdir(parents=True)
    for f in source.iterdir():
        if f.name.endswith(".gz"):
            (folder / f.name).write_bytes(f.read_bytes())
    images = folder / "train-images-idx3-ubyte.gz"
    images.write_bytes(images.read_bytes()[:100_000])  # truncated mid-stream
    monkeypatch.setenv("LIB_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(DatasetCorrupt, match=str(images)):
        load_dataset("mnist")
    with gzip.open(folder / "t10k-labels-idx1-ubyte.gz", "rb") as f:
        labels = f.read()
    images.write_bytes(gzip.compress(labels[:8] + b"\0" * 10))  # a header that promises more than the file holds
    with pytest.raises(DatasetCorrupt, match="t10k|train-images"):
        load_dataset("mnist")


def test_a_truncated_cifar_file_is_named(tmp_path, monkeypatch):
    from conftest import write_cifar10_npz

    folder = tmp_path / "data" / "cifar10"
    write_cifar10_npz(folder)
    batch = folder / "data_batch_3.npz"
    batch.write_bytes(batch.read_bytes()[:200])
    monkeypatch.setenv("LIB_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(DatasetCorrupt, match="data_batch_3.npz"):
        load_dataset("cifar10", download=False)
