"""The Dask backend of the grid API on a real LocalCluster of 2 worker processes: the same results as the
local backend, and a worker killed with SIGKILL mid-grid still leaves every run stored exactly once, intact."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
import torch

pytest.importorskip("dask.distributed")

import lib.cluster as cluster
import lib.runs as runs
from lib.train import RunConfig, train
from slices import write_mnist_slice

BASE = RunConfig(dataset="mnist", n_train=256, n_test=128, preprocessing="scale", model="mlp1x32", lr=0.05,
                 max_epochs=2, stop_train_acc=None, batch_size=64, randomization="partial_labels", test_every=1000)


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
    monkeypatch.setenv("LIB_DATA_DIR", str(root))  # before the cluster starts: its workers inherit it
    yield root
    cluster.close_clients()


pytestmark = pytest.mark.slow  # every test here starts a Dask cluster of worker processes


def finished_keys(cache: Path) -> list[str]:
    log = cache / ".finished.log"
    return [line.split()[0] for line in log.read_text().splitlines()] if log.is_file() else []


def assert_clean(cache: Path, configs) -> None:
    """Every run intact and stored exactly once; nothing else that looks like a run; no checkpoint left."""
    keys = sorted(runs.run_key(c) for c in configs)
    assert sorted(finished_keys(cache)) == keys
    entries = sorted(p.name for p in cache.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert entries == keys
    assert all(runs.entry_problem(cache / k, runs.RUN_FILES) is None for k in keys)
    assert not list((cache / ".checkpoints").glob("*.pt")) if (cache / ".checkpoints").is_dir() else True


def test_local_cluster_gives_the_local_results(tmp_path, monkeypatch, mnist_slice):
    configs = runs.grid(BASE, seed=[0, 1], corruption=[0.0, 0.5])
    monkeypatch.setenv("LIB_CACHE_DIR", str(tmp_path / "local"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each Dask worker (one thread per worker)
    try:
        local = runs.run_grid(configs, scheduler="")
        local_states = [runs.load(c).state_dict for c in configs]
    finally:
        torch.set_num_threads(threads)

    monkeypatch.setenv("LIB_CACHE_DIR", str(tmp_path / "cluster"))
    distributed = runs.run_grid(configs, scheduler="local:2")
    assert not distributed.cached.any()
    columns = ["key", "seed", "corruption", "final_train_acc", "final_test_acc", "final_train_loss", "epochs"]
    assert distributed[columns].equals(local[columns])
    for config, state in zip(configs, local_states):
        other = runs.load(config).state_dict
        assert all(torch.equal(other[k], state[k]) for k in state)
    pids = {line.split()[2] for line in (tmp_path / "cluster" / ".finished.log").read_text().splitlines()}
    assert str(os.getpid()) not in pids  # trained by the workers, not here
    assert_clean(tmp_path / "cluster", configs)
    again = runs.run_grid(configs, scheduler="local:2")
    assert again.cached.all()


def test_a_worker_killed_mid_grid_leaves_every_run_once(tmp_path, monkeypatch, mnist_slice):
    cache = tmp_path / "runs"
    monkeypatch.setenv("LIB_CACHE_DIR", str(cache))
    monkeypatch.setenv("LIB_CHECKPOINT_EVERY_S", "0")  # checkpoint every epoch, so the retry resumes
    configs = runs.grid(BASE.__class__(**{**BASE.to_dict(), "max_epochs": 12}), seed=[0, 1, 2, 3])
    client = cluster.client_for("local:2")
    killed: dict = {}

    def kill_a_busy_worker():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            checkpoints = list((cache / ".checkpoints").glob("*.pt")) if (cache / ".checkpoints").is_dir() else []
            busy = [worker for worker, tasks in client.processing().items() if tasks]
            if checkpoints and busy:
                pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
                os.kill(pid, signal.SIGKILL)
                killed.update(pid=pid, checkpoints=[p.stem for p in checkpoints],
                              finished_before=len(finished_keys(cache)))
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_a_busy_worker, daemon=True)
    killer.start()
    frame = runs.run_grid(configs, scheduler="local:2")
    killer.join(timeout=5)
    assert killed, "no worker was killed (the grid finished before a checkpoint appeared)"
    assert killed["finished_before"] < len(configs)  # the kill came mid-grid
    assert len(frame) == len(configs) and (frame.epochs == 12).all()
    assert_clean(cache, configs)
    # a run that was interrupted (it had a checkpoint) ends bit-identical to an uninterrupted one
    interrupted = [c for c in configs if runs.run_key(c) in killed["checkpoints"]]
    assert interrupted
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        reference = train(interrupted[0], progress=False)
    finally:
        torch.set_num_threads(threads)
    stored = runs.load(interrupted[0])
    assert all(torch.equal(stored.state_dict[k], reference.state_dict[k]) for k in reference.state_dict)
    assert stored.history.drop(columns="seconds").equals(reference.history.drop(columns="seconds"))


def test_scheduler_specs_are_checked():
    with pytest.raises(ValueError, match="LIB_DASK_SCHEDULER"):
        cluster.client_for("local:zero")
    with pytest.raises(ValueError, match="neither a scheduler address"):
        cluster.client_for("/no/such/scheduler-file.json")


def test_gpu_workers_get_batched_chunks_cpu_workers_single_runs():
    """The grid runner plans for the executor's device: the workers' kind (cuda when they all have a GPU)."""
    configs = runs.grid(BASE, seed=list(range(5)))
    executor = cluster.DaskExecutor("local:2", cache_dir="/shared/runs", code_version=runs.code_version())
    executor._gpus = False  # as the scheduler would report (asked once, then kept)
    assert executor.device.type == "cpu"
    assert [len(c) for c in runs.plan_chunks(configs, executor.device)] == [1] * 5
    executor._gpus = True
    assert executor.device.type == "cuda"
    assert [len(c) for c in runs.plan_chunks(configs, executor.device, max_batch=3)] == [3, 2]
    inception = [RunConfig(dataset="cifar10", model="inception", seed=s) for s in range(3)]
    assert [len(c) for c in runs.plan_chunks(inception, executor.device)] == [1, 1, 1]  # BatchNorm: unbatchable


def test_a_worker_task_sets_the_cache_for_itself_only(tmp_path, monkeypatch):
    monkeypatch.setenv("LIB_CACHE_DIR", str(tmp_path / "client"))
    seen = []

    def trainer(chunk, device):
        seen.append((list(chunk), os.environ["LIB_CACHE_DIR"]))
        return "a-version"

    assert cluster._on_worker(trainer, [BASE], str(tmp_path / "shared")) == "a-version"
    assert seen == [([BASE], str(tmp_path / "shared"))]
    assert os.environ["LIB_CACHE_DIR"] == str(tmp_path / "client")  # restored after the task


def test_workers_with_other_code_are_an_error(tmp_path, mnist_slice):
    """A worker reports the code version it trained with; another version than the client's is an error."""
    executor = cluster.DaskExecutor("local:1", cache_dir=tmp_path, code_version="not-this-code")
    with pytest.raises(RuntimeError, match="another version"):
        executor([[BASE]], runs.train_chunk)


def test_a_script_without_a_main_guard_gets_a_hint(tmp_path):
    """A script that starts a local cluster at its top level ended in "Nanny failed to start" and nothing more: the
    workers, new processes, import the script again and start clusters of their own."""
    import subprocess
    import sys

    script = tmp_path / "grid.py"
    script.write_text("from lib.cluster import client_for\n\nclient = client_for('local:1')\nprint('started')\n")
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert result.returncode != 0 and "started" not in result.stdout
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("RuntimeError: Nanny failed to start. Hint:"), last
    assert 'if __name__ == "__main__":' in last and f"{script} has no such guard" in last
