"""Which precision trains a given network faster on this machine: a short measured probe, cached per machine.

bf16 autocast is much faster than float32 on some machines (GPUs with tensor cores, CPUs with AVX-512 BF16 or AMX at
enough threads) and several times slower on others (CPUs that emulate it), and which one wins for a network depends on
its shapes, its batch size and the number of torch threads. So the choice is measured, never assumed:
:func:`measure` trains the network of a :class:`~lib.train.RunConfig` for a few epochs of a few steps on a small
subset of its data, through the trainer itself (:func:`lib.train.train`), alternately in fp32 and in bf16 autocast,
and times the epochs after the first (the first warms up). Its :class:`Probe` says how many milliseconds a step took
in each precision and :attr:`Probe.choice`: ``"bf16"`` only where bf16 was faster by more than :data:`MARGIN`,
``"fp32"`` everywhere else (slower, equal within the margin, or bf16 autocast unavailable). bf16 is never chosen where
the probe found it slower.

A probe is cached in the user's cache folder (:func:`cache_path`: ``~/.cache/lib/precision.json``, beside the default
run cache), keyed by the machine (:func:`machine`: the GPU's name where the probe ran on one, else the CPU's model and
instruction-set flags), torch's version, the thread count and the workload (:func:`workload`: what sets a training
step's cost: model, input shape, batch size, optimizer, loss, augmentation). :func:`probe` returns the cached probe or
measures one; ``python -m lib precision`` prints them for the recorded chapters' networks.

The precision is a field of :class:`~lib.train.RunConfig`, so part of every run's key, and a recorded run names it in
its provenance (:func:`lib.results.record_run`). :func:`check_recording` is the rule for recordings: with
``$LIB_RECORD`` set, a bf16 run whose probe on this machine does not choose bf16 is refused before it trains.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import statistics
import time
import uuid
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Iterable, Iterator

import torch

from lib import settings
from lib.train import RunConfig, default_device, train

PRECISIONS = ("fp32", "bf16")
#: bf16 is chosen only where its step is faster than fp32's by more than this fraction (the probe's noise).
MARGIN = 0.05
#: The probe's defaults: steps per epoch, epochs per training (the first is not timed) and trainings per precision.
STEPS, EPOCHS, ROUNDS = 8, 3, 2
#: The fields of a configuration that set the cost of a training step (with the data set's input shape).
WORKLOAD_FIELDS = ("dataset", "preprocessing", "split", "model", "batch_size", "optimizer", "loss", "augment")


class PrecisionError(ValueError):
    """A recording asks for bf16 where this machine's probe did not find it faster; the message gives the probe."""


def cache_path() -> Path:
    """Where probes are cached: ``precision.json`` in the user's cache folder for lib
    (:func:`lib.settings.user_cache_dir`: ``$XDG_CACHE_HOME/lib`` or ``~/.cache/lib``)."""
    return settings.user_cache_dir() / "precision.json"


def _cpu() -> tuple[str, list[str]]:
    """The CPU's model name and instruction-set flags (``/proc/cpuinfo``; elsewhere the platform's processor)."""
    found: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            found.setdefault(key.strip(), value.strip())  # the first processor's
    except OSError:
        pass
    return found.get("model name") or platform.processor() or platform.machine(), sorted(found.get("flags", "").split())


def machine(device: torch.device | None = None, threads: int | None = None) -> dict:
    """What a probe's result depends on besides the network: the device kind, the GPU's name (on a GPU) or the CPU's
    model, its bf16-related flags and a digest of all its flags (on a CPU), torch's version and ``threads`` (default:
    torch's current thread count)."""
    device = torch.device(device) if device is not None else default_device()
    threads = threads or torch.get_num_threads()
    found = dict(device=device.type, torch=torch.__version__, threads=int(threads), cores=os.cpu_count())
    if device.type == "cuda":
        found.update(gpu=torch.cuda.get_device_name(device), cuda=torch.version.cuda)
    else:
        name, flags = _cpu()
        found.update(cpu=name, bf16_flags=[f for f in flags if "bf16" in f or f.startswith("amx")],
                     flags=hashlib.sha256(" ".join(flags).encode()).hexdigest()[:16],
                     capability=torch.backends.cpu.get_cpu_capability())
    return found


def workload(config: RunConfig) -> dict:
    """The fields of ``config`` that set what one training step costs (:data:`WORKLOAD_FIELDS`)."""
    return {name: getattr(config, name) for name in WORKLOAD_FIELDS}


def _key(machine_: dict, workload_: dict) -> str:
    return hashlib.sha256(json.dumps([machine_, workload_], sort_keys=True).encode()).hexdigest()[:20]


@dataclass(frozen=True)
class Probe:
    """One measurement: milliseconds per training step of ``workload`` on ``machine`` in fp32 and in bf16 autocast
    (``bf16_ms`` ``None``: bf16 autocast failed there, ``error`` says how), medians over ``rounds`` trainings of
    ``steps`` timed steps each."""

    workload: dict
    machine: dict
    fp32_ms: float
    bf16_ms: float | None
    steps: int
    rounds: int
    measured: str
    error: str | None = None
    load: float | None = None  # the machine's 1-minute load average when the probe started (None: unknown)

    @property
    def choice(self) -> str:
        """``"bf16"`` where bf16's step was faster than fp32's by more than :data:`MARGIN`, else ``"fp32"``."""
        faster = self.bf16_ms is not None and self.bf16_ms * (1 + MARGIN) < self.fp32_ms
        return "bf16" if faster else "fp32"

    @property
    def speedup(self) -> float | None:
        """fp32's step time over bf16's (above 1: bf16 is faster)."""
        return None if not self.bf16_ms else self.fp32_ms / self.bf16_ms

    def where(self) -> str:
        m = self.machine
        place = m.get("gpu") or f"{m.get('cpu')}"
        busy = ""
        if self.load is not None and m.get("cores") and self.load > m["cores"]:
            busy = f", busy: load {self.load:.1f} on {m['cores']} cores"
        return f"{place}, {m['threads']} thread{'' if m['threads'] == 1 else 's'}, torch {m['torch']}{busy}"

    def line(self) -> str:
        """The probe in one line: the network, ms per step in each precision, the ratio and the choice."""
        w = self.workload
        bf16 = "failed" if self.bf16_ms is None else f"{self.bf16_ms:.2f} ms"
        ratio = "" if self.speedup is None else f" (bf16 {self.speedup:.2f}x as fast)"
        return (f"{w['model']} on {w['dataset']}, batch {w['batch_size']}, {w['optimizer']}: fp32 {self.fp32_ms:.2f} ms, "
                f"bf16 {bf16} a step{ratio} -> {self.choice} [{self.where()}]")

    def to_dict(self) -> dict:
        return dict(asdict(self), choice=self.choice)

    @classmethod
    def from_dict(cls, values: dict) -> "Probe":
        return cls(**{k: v for k, v in values.items() if k != "choice"})


@contextlib.contextmanager
def _threads(threads: int | None) -> Iterator[None]:
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _probe_config(config: RunConfig, steps: int, epochs: int) -> RunConfig:
    """``config`` cut to ``epochs`` epochs of ``steps`` steps on a subset of its data, evaluated only at the end."""
    return replace(config, n_train=steps * config.batch_size, n_test=min(config.batch_size, 100), max_epochs=epochs,
                   stop_train_acc=None, test_every=epochs, save_epochs=(), bn_statistics="running")


def _step_ms(run, steps: int) -> float:
    """Milliseconds per step: the median epoch between the first (which warms up) and the last (which also evaluates
    the training and test sets), over ``steps`` steps an epoch. ``history.seconds`` is cumulative."""
    seconds = [float(s) for s in run.history.seconds]
    per_epoch = [later - earlier for earlier, later in zip(seconds, seconds[1:])][:-1]
    return 1000 * statistics.median(per_epoch) / steps


def measure(config: RunConfig, device: torch.device | None = None, threads: int | None = None, steps: int = STEPS,
            epochs: int = EPOCHS, rounds: int = ROUNDS) -> Probe:
    """Measure :class:`Probe` for ``config``'s network on ``device`` (default: a GPU if there is one) with ``threads``
    torch threads (default: the current count): ``rounds`` trainings per precision, fp32 and bf16 alternately (so a
    machine that gets busier slows both alike), each ``epochs`` epochs of ``steps`` steps through
    :func:`lib.train.train`; a precision's time is the median over its trainings of the median epoch after the first,
    per step. Nothing is cached (see :func:`probe`)."""
    if epochs < 3:
        raise ValueError(f"a probe needs at least 3 epochs (the first warms up, the last evaluates), got {epochs}")
    device = torch.device(device) if device is not None else default_device()
    probe_config = _probe_config(config, steps, epochs)
    times: dict[str, list[float]] = {"fp32": [], "bf16": []}
    error = None
    try:
        load = os.getloadavg()[0]
    except (OSError, AttributeError):
        load = None
    with _threads(threads):
        found = machine(device)
        for _ in range(rounds):
            for precision in PRECISIONS:
                if precision == "bf16" and error is not None:
                    continue
                try:
                    run = train(replace(probe_config, precision=precision), device=device, progress=False)
                except RuntimeError as failure:  # bf16 autocast unsupported on this device
                    if precision == "fp32":
                        raise
                    error = f"{type(failure).__name__}: {failure}"
                    continue
                times[precision].append(_step_ms(run, steps))
    bf16 = statistics.median(times["bf16"]) if times["bf16"] else None
    return Probe(workload(config), found, statistics.median(times["fp32"]), bf16, steps, rounds,
                 time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), error, load)


def _read_cache() -> dict:
    try:
        payload = json.loads(cache_path().read_text())
        return payload["probes"] if isinstance(payload.get("probes"), dict) else {}
    except (OSError, ValueError, AttributeError):
        return {}


def _write_cache(probes: dict) -> None:
    path = cache_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.parent / f".tmp-{path.name}-{uuid.uuid4().hex[:8]}"
    temporary.write_text(json.dumps({"probes": probes}, indent=1, sort_keys=True) + "\n")
    os.replace(temporary, path)


def cached(config: RunConfig, device: torch.device | None = None, threads: int | None = None) -> Probe | None:
    """The cached probe of ``config``'s network on this machine, device and thread count (``None``: never measured)."""
    key = _key(machine(device, threads), workload(config))
    found = _read_cache().get(key)
    try:
        return None if found is None else Probe.from_dict(found)
    except TypeError:  # an entry of another layout: measured again
        return None


def probe(config: RunConfig, device: torch.device | None = None, threads: int | None = None,
          remeasure: bool = False, **options) -> Probe:
    """The probe of ``config``'s network here: the cached one (:func:`cached`), or, if there is none or
    ``remeasure``, one measured now (:func:`measure`, ``options`` passed on) and cached."""
    found = None if remeasure else cached(config, device, threads)
    if found is not None:
        return found
    measured = measure(config, device, threads, **options)
    probes = _read_cache()
    probes[_key(measured.machine, measured.workload)] = measured.to_dict()
    _write_cache(probes)
    return measured


def choose(config: RunConfig, device: torch.device | None = None, threads: int | None = None) -> str:
    """The precision this machine trains ``config``'s network faster in: :attr:`Probe.choice` of :func:`probe`."""
    return probe(config, device, threads).choice


def check_recording(configs: Iterable[RunConfig], device: torch.device | None = None) -> None:
    """With ``$LIB_RECORD`` set, raise :class:`PrecisionError` if a bf16 configuration of ``configs`` would train on a
    machine whose probe (:func:`probe`, measured now if never before) does not choose bf16 for its network; without
    it, or for fp32 runs, do nothing. Called before a recording trains anything (:func:`lib.runs.train_missing`)."""
    if settings.record_scale() is None:
        return
    seen = set()
    for config in configs:
        if config.precision != "bf16":
            continue
        key = json.dumps(workload(config), sort_keys=True)
        if key in seen:
            continue
        seen.add(key)
        found = probe(config, device)
        if found.choice != "bf16":
            raise PrecisionError(
                f"refusing to record {config.model} in bf16: on this machine the probe found bf16 not faster than "
                f"fp32 ({found.line()}). Record it in fp32 (the precision of its parameters file), or measure again "
                f"with `python -m lib precision --remeasure` if the machine was busy")


def provenance(config: RunConfig) -> dict:
    """What a recorded run says of its precision (:func:`lib.results.record_run`): ``{"precision": ...}`` and, for a
    bf16 run, the cached probe of its network on this machine that chose bf16 (``"precision_probe"``; ``None`` where
    it was never probed here)."""
    found = {"precision": config.precision}
    if config.precision == "bf16":
        probe_ = cached(config)
        found["precision_probe"] = None if probe_ is None else probe_.to_dict()
    return found
