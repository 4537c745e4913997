"""lib.precision: the measured choice between fp32 and bf16 autocast, cached per machine, refused for a recording where
bf16 is not faster, named in a record's provenance; and, per network recorded at `full`, bf16 against fp32 on a short
run changes no final accuracy beyond the noise rule of lib.verdicts."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
import torch

from lib import precision, results, runs
from lib.book import cli
from lib.book.record import recorded_networks
from lib.train import RunConfig, train
from lib.verdicts import accuracy_tolerance

TINY = RunConfig(dataset="mnist", n_train=256, n_test=128, preprocessing="scale", model="mlp1x64", lr=0.05,
                 lr_decay=1.0, max_epochs=2, stop_train_acc=None, batch_size=32)


@pytest.fixture
def probe_cache(tmp_path, monkeypatch):
    """An empty probe cache (the user's cache folder moved under tmp_path) and an empty run cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("LIB_CACHE_DIR", str(tmp_path / "runs"))
    monkeypatch.delenv("LIB_RECORD", raising=False)
    return tmp_path / "xdg" / "lib" / "precision.json"


def _stored(config: RunConfig, fp32_ms: float, bf16_ms: float | None) -> precision.Probe:
    """A probe of ``config``'s network on this machine with the given step times, written into the cache as
    :func:`precision.probe` writes a measured one."""
    found = precision.Probe(precision.workload(config), precision.machine(), fp32_ms, bf16_ms, 8, 2, "now")
    precision._write_cache({precision._key(found.machine, found.workload): found.to_dict()})
    return found


def _probe(fp32: float, bf16: float | None) -> precision.Probe:
    return precision.Probe(precision.workload(TINY), {"threads": 1, "torch": "x"}, fp32, bf16, 8, 2, "now")


def test_bf16_is_chosen_only_where_it_is_faster_by_more_than_the_margin():
    assert _probe(10.0, 9.0).choice == "bf16"
    assert _probe(10.0, 10.0 / (1 + precision.MARGIN) + 0.01).choice == "fp32"  # faster, but within the noise margin
    assert _probe(10.0, 11.0).choice == "fp32"  # slower: never bf16
    assert _probe(10.0, None).choice == "fp32"  # bf16 autocast failed on the device
    assert _probe(10.0, 8.0).speedup == pytest.approx(1.25)


def test_the_cache_lives_in_the_users_cache_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert precision.cache_path() == tmp_path / "xdg" / "lib" / "precision.json"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert precision.cache_path() == tmp_path / "home" / ".cache" / "lib" / "precision.json"


def test_the_machine_key_names_the_cpu_torch_and_threads():
    one, two = precision.machine(torch.device("cpu"), 1), precision.machine(torch.device("cpu"), 2)
    assert one["device"] == "cpu" and one["torch"] == torch.__version__ and one["threads"] == 1
    assert one["cpu"] and len(one["flags"]) == 16
    assert precision._key(one, precision.workload(TINY)) != precision._key(two, precision.workload(TINY))
    other = replace(TINY, batch_size=64)  # another step cost: another probe
    assert precision._key(one, precision.workload(TINY)) != precision._key(one, precision.workload(other))
    assert precision.workload(replace(TINY, lr=0.5, corruption=0.4, randomization="partial_labels")) == \
        precision.workload(TINY)  # what does not change a step's cost shares the probe


def test_a_probe_is_measured_once_then_read_from_the_cache(probe_cache, monkeypatch):
    measured = precision.probe(TINY, device=torch.device("cpu"), threads=1, steps=2, epochs=3, rounds=1)
    assert measured.fp32_ms > 0 and (measured.bf16_ms is None or measured.bf16_ms > 0)
    assert measured.machine["threads"] == 1 and measured.workload["model"] == "mlp1x64"
    assert measured.choice in ("fp32", "bf16")
    assert json.loads(probe_cache.read_text())["probes"]  # written where cache_path says

    def no_measuring(*args, **kwargs):
        raise AssertionError("a cached probe was measured again")

    monkeypatch.setattr(precision, "measure", no_measuring)
    assert precision.probe(TINY, device=torch.device("cpu"), threads=1) == measured
    assert precision.choose(TINY, device=torch.device("cpu"), threads=1) == measured.choice
    assert precision.cached(TINY, device=torch.device("cpu"), threads=2) is None  # another thread count: not measured


def test_the_step_time_leaves_out_the_warm_up_and_the_evaluating_epoch():
    class Run:
        history = __import__("pandas").DataFrame({"seconds": [5.0, 5.4, 5.8, 7.0]})  # epochs: 5, 0.4, 0.4, 1.2

    assert precision._step_ms(Run, steps=4) == pytest.approx(100.0)


def test_a_recording_refuses_bf16_where_the_probe_found_it_slower(probe_cache, monkeypatch):
    bf16 = replace(TINY, precision="bf16")
    _stored(bf16, fp32_ms=10.0, bf16_ms=14.0)
    precision.check_recording([bf16])  # not recording: nothing to refuse
    monkeypatch.setenv("LIB_RECORD", "smoke")
    precision.check_recording([TINY])  # fp32 is always allowed
    with pytest.raises(precision.PrecisionError, match="not faster") as refused:
        precision.check_recording([TINY, bf16])
    assert "fp32 10.00 ms, bf16 14.00 ms" in str(refused.value)
    _stored(bf16, fp32_ms=10.0, bf16_ms=6.0)
    precision.check_recording([bf16])  # faster here: allowed


def test_a_recording_grid_refuses_bf16_before_training(probe_cache, monkeypatch):
    bf16 = replace(TINY, precision="bf16")
    _stored(bf16, fp32_ms=10.0, bf16_ms=14.0)
    monkeypatch.setenv("LIB_RECORD", "smoke")
    with pytest.raises(precision.PrecisionError):
        runs.run_grid([bf16], device=torch.device("cpu"))
    with pytest.raises(precision.PrecisionError):
        runs.run(bf16, device=torch.device("cpu"))
    assert not runs.in_cache(bf16)  # nothing was trained


def test_a_record_names_its_precision_and_the_probe_that_chose_bf16(probe_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("LIB_RESULTS_DIR", str(tmp_path / "results"))
    bf16 = replace(TINY, precision="bf16", max_epochs=1)
    chosen = _stored(bf16, fp32_ms=10.0, bf16_ms=6.0)
    path = results.record_run("smoke", train(bf16, progress=False))
    provenance = json.loads(path.read_text())["provenance"]
    assert provenance["precision"] == "bf16"
    assert provenance["precision_probe"]["choice"] == "bf16"
    assert provenance["precision_probe"]["bf16_ms"] == chosen.bf16_ms
    fp32 = results.record_run("smoke", train(replace(TINY, max_epochs=1), progress=False))
    provenance = json.loads(fp32.read_text())["provenance"]
    assert provenance["precision"] == "fp32" and "precision_probe" not in provenance
    assert results.load_run(bf16) is not None  # the store still reads it (the SHA-256 covers the provenance)


@pytest.mark.slow
def test_the_command_prints_each_networks_step_times_and_choice(probe_cache, capsys):
    status = cli.main(["precision", "--scale", "smoke", "--chapter", "zhang-randomization", "--threads", "1",
                       "--steps", "2", "--rounds", "1"])
    assert status == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("zhang-randomization ")]
    networks = recorded_networks("smoke", ["zhang-randomization"])
    assert len(lines) == len(networks) == 2  # mlp1x512 and alexnet at smoke
    for line, network in zip(lines, networks):
        found = precision.cached(network.config, threads=1)
        assert found is not None and f"fp32 {found.fp32_ms:.2f} ms" in line and f"-> {found.choice}" in line
        assert line.endswith("its parameters at smoke: fp32")


# ------------------------------------------------------------------------------------------------- bf16 vs fp32

FULL = recorded_networks("full")


def _short(config: RunConfig) -> RunConfig:
    """The network's run on 1,024 training and 1,000 test images with true labels for 4 epochs."""
    return replace(config, n_train=1024, n_test=1000, randomization="none", corruption=0.0, max_epochs=4,
                   stop_train_acc=None, test_every=4, save_epochs=())


@pytest.mark.slow
@pytest.mark.parametrize("network", FULL, ids=[f"{n.chapter}:{n.name}" for n in FULL])
def test_bf16_changes_no_final_accuracy_of_a_recorded_network_beyond_noise(network):
    """Each network recorded at `full`, trained briefly in fp32 and in bf16 autocast from the same seed: the final
    test and training accuracies agree within lib.verdicts' accuracy tolerance (two standard errors of the
    difference), and the fp32 run learned (above chance by more than two standard errors), so the comparison is
    not one of two untrained networks."""
    config = _short(network.config)
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # the accuracies do not depend on it; two threads on a shared 2-core machine crawl
    try:
        fp32 = train(config, device=torch.device("cpu"), progress=False).summary
        bf16 = train(replace(config, precision="bf16"), device=torch.device("cpu"), progress=False).summary
    finally:
        torch.set_num_threads(previous)
    assert math.isfinite(bf16["final_train_loss"]) and not bf16["diverged"]
    chance = 0.1
    assert fp32["final_train_acc"] - chance > 2 * math.sqrt(chance * (1 - chance) / config.n_train), fp32
    for accuracy, n in (("final_test_acc", config.n_test), ("final_train_acc", config.n_train)):
        tolerance = accuracy_tolerance(bf16[accuracy], fp32[accuracy], n, n, percent=False)
        assert abs(bf16[accuracy] - fp32[accuracy]) <= tolerance.value, (accuracy, fp32[accuracy], bf16[accuracy],
                                                                         tolerance.text())
