"""Recording the papers' own protocol within a time budget: ``python -m lib record-paper [--budget-min 14]``.

:func:`record_paper` records into the committed results store (``results/<scale>/runs/``, :mod:`lib.results`;
``paper`` by default) the most valuable training runs of the papers' protocol that the store does not hold yet, in
this order (:func:`paper_targets`): the MASC chapter's MLP-MNIST grid (every corruption degree and seed of its
parameters; on a GPU the grid runner stacks it into one model, :mod:`lib.batched`), then Zhang et al.'s Inception and
AlexNet on true and on random labels (the zhang-randomization chapter's runs at corruption 0 and 1). The runs are the
chapters' own configurations (:func:`lib.studies.masc.summaries.grid_configs`,
:func:`lib.studies.zhang2017.randomization.figure1_runs`), so a chapter executed at that scale finds them.

It writes only ``results/<scale>/runs/<key>.json`` files, as ``$LIB_RECORD=<scale>`` would (:func:`lib.results.record_run`),
besides the run cache (``$LIB_CACHE_DIR``), and records nothing twice: a run already recorded at the scale is left
as it is, a run in the run cache or recorded at another scale is recorded at once without training, and only the
rest is trained, in a child process (one CUDA context, killed cleanly at the budget), planned into chunks by
:func:`lib.runs.plan_chunks` exactly as a chapter's grid is. Each run is recorded as soon as the run cache holds it.

The budget: training stops before ``budget_s`` seconds from the call are over, keeping ``reserve_s`` for what
follows the cut. In its last checkpoint interval the child is stopped as soon as one of its runs writes a checkpoint,
and at the latest at the deadline; then a stacked chunk's networks that had finished by its last checkpoint are
stored and recorded from that checkpoint (:func:`salvage_stack`: their history and weights are final once they leave
the stack), and a single run's checkpoint stays in the run cache, so calling again resumes it on the same machine.
The networks of a stack that had not finished start again on the next call. Everything works the same on a CPU, where
the grid runner trains one run at a time.

Also :func:`recorded_networks`: one configuration of each network a scale's chapters train (``params/<scale>/``),
for ``python -m lib precision`` and the bf16 tests.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import pandas as pd
import torch

from lib import precision, results, runs, settings
from lib.keys import run_key
from lib.params import load_params, own_scale_file
from lib.train import RunConfig, TrainedRun, default_device, prepare_data, summarize

#: Zhang et al.'s networks :func:`paper_targets` records, in order, each on true (0) and random (1) labels.
ZHANG_MODELS = ("inception", "alexnet")
ZHANG_LEVELS = (0.0, 1.0)
#: The MASC grid's corruption degrees by value (the paper's headline p = 0.8 first, then 0.4 and 1.0, issue 31), for
#: each seed in turn: where runs train one at a time (a CPU) the first ones recorded are the most useful.
MASC_ORDER = (0.8, 0.4, 1.0, 0.0, 0.2, 0.6)


@dataclass(frozen=True)
class Target:
    """A group of runs recorded together, named for the report (``"MASC MLP-MNIST grid"``)."""

    name: str
    configs: tuple[RunConfig, ...]


def _label(config: RunConfig) -> str:
    return f"{config.model} {config.dataset} p={config.corruption:g} seed {config.seed}"


def paper_targets(scale: str = "paper") -> list[Target]:
    """What :func:`record_paper` records at ``scale``, most valuable first: the MASC chapter's MLP-MNIST grid (its
    corruption degrees × seeds at that scale, seed by seed in :data:`MASC_ORDER`), then Zhang et al.'s Inception and AlexNet (those of
    :data:`ZHANG_MODELS` that the zhang-randomization parameters at ``scale`` train) at corruption 0 and 1 where the
    scale's grid has them."""
    from lib.studies.masc.summaries import grid_configs
    from lib.studies.zhang2017.randomization import figure1_runs

    masc = load_params("masc-decoding", scale)
    grid = grid_configs(masc, {"MLP-MNIST": masc.models["MLP-MNIST"]})
    rank = {p: i for i, p in enumerate(MASC_ORDER)}
    ordered = sorted(grid.items(), key=lambda item: (masc.seeds.index(item[0][2]), rank.get(item[0][1], len(rank)),
                                                     item[0][1]))
    targets = [Target("MASC MLP-MNIST grid", tuple(config for _, config in ordered))]
    zhang = load_params("zhang-randomization", scale)
    corruption_runs, _ = figure1_runs(zhang, zhang.loss_curve_model)
    for model in ZHANG_MODELS:
        chosen = [c for level in ZHANG_LEVELS for c in corruption_runs if c.model == model and c.corruption == level]
        if chosen:
            targets.append(Target(f"Zhang {model}, true and random labels", tuple(chosen)))
    return targets


@dataclass
class Report:
    """What :func:`record_paper` did: the run keys recorded by this call (``recorded``), those the store already
    held (``before``), those still missing (``missing``), whether the budget stopped training (``stopped``), the
    child's exit status where it failed (``failed``), and the seconds it took."""

    scale: str
    recorded: list[str] = field(default_factory=list)
    before: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    stopped: bool = False
    failed: int | None = None
    seconds: float = 0.0


def _recorded(scale: str, config: RunConfig) -> bool:
    return results.run_path(scale, run_key(config)).is_file()


def record_available(scale: str, config: RunConfig, write: bool = True) -> bool:
    """Record ``config``'s run at ``scale`` if it can be without training: from the run cache (with its manifest's
    provenance) or from its record at another scale (copied as it is, provenance and all, once it reads as valid).
    Returns whether the store now holds it at ``scale`` (``write=False``: whether it could, writing nothing)."""
    if _recorded(scale, config):
        return True
    key = run_key(config)
    if runs.in_cache(config):
        if not write:
            return True
        manifest = json.loads((runs.cache_dir() / key / runs.MANIFEST).read_text())
        results.record_run(scale, runs.load(config, with_weights=False), manifest)
        return True
    source = results.find_run(config)
    if source is not None and results.load_run(config) is not None:  # load_run refuses a damaged or foreign record
        if not write:
            return True
        target = results.run_path(scale, key)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        return True
    return False


def stack_checkpoint(chunk: Sequence[RunConfig]) -> Path:
    """The checkpoint :func:`lib.runs.train_chunk` writes for a stacked ``chunk`` none of whose runs was cached."""
    keys = hashlib.sha256("".join(run_key(c) for c in chunk).encode()).hexdigest()[:20]
    return runs.cache_dir() / ".checkpoints" / f"batch-{keys}.pt"


def salvage_stack(chunk: Sequence[RunConfig], device_type: str) -> list[RunConfig]:
    """Store in the run cache every network of the stacked ``chunk`` that had finished (converged, diverged or reached
    ``max_epochs``) by its last checkpoint (:func:`stack_checkpoint`), exactly as :func:`lib.runs.train_chunk` would
    have stored it at the end: its history and weights do not change once it leaves the stack. Returns the configs
    stored. Call it only when no process trains the chunk."""
    path = stack_checkpoint(chunk)
    if len(chunk) < 2 or not path.is_file():
        return []
    try:
        saved = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # a checkpoint cut while written is never renamed into place; anything else: say so
        print(f"could not read the stack's checkpoint {path} ({type(error).__name__}: {error}); nothing salvaged",
              file=sys.stderr)
        return []
    stored = []
    for j, config in enumerate(chunk):
        state = saved["states"][j]
        if state is None or runs.in_cache(config):
            continue
        data = prepare_data(config)
        history = pd.DataFrame(saved["rows"][j])
        summary = summarize(history, config, saved["converged"][j], len(data.y_train))
        summary.update(device=device_type, batched_with=len(chunk))
        with runs.run_locks([config]):
            if not runs.in_cache(config):
                runs._save(TrainedRun(config, history, summary, state, data.corrupted), runs.cache_dir() / run_key(config))
        stored.append(config)
    return stored


def _child_command(plan: Path) -> list[str]:
    package_parent = str(Path(__file__).resolve().parents[2])
    code = (f"import sys; sys.path.insert(0, {package_parent!r}); "
            f"from lib.book.record import train_planned; train_planned({str(plan)!r})")
    return [sys.executable, "-c", code]


def train_planned(plan: str) -> None:
    """The child process of :func:`record_paper`: train and store the chunks of the plan file ``plan`` in order
    (:func:`lib.runs.train_chunk`), on its device. A chunk that fails (out of memory, say) is reported with its
    traceback and the next one trained; the process then exits with status 1."""
    import traceback

    payload = json.loads(Path(plan).read_text())
    device = torch.device(payload["device"])
    failed = 0
    for chunk in payload["chunks"]:
        configs = [RunConfig.from_dict(c) for c in chunk]
        try:
            runs.train_chunk(configs, device)
        except Exception:
            failed += 1
            print(f"training {', '.join(_label(c) for c in configs)} failed:\n{traceback.format_exc()}",
                  file=sys.stderr, flush=True)
    if failed:
        sys.exit(1)


def _checkpoints(chunks: Sequence[Sequence[RunConfig]]) -> list[Path]:
    """Every checkpoint the chunks' training may write (a single run's, or a stack's)."""
    paths = []
    for chunk in chunks:
        if len(chunk) == 1:
            paths.append(runs.cache_dir() / ".checkpoints" / f"{run_key(chunk[0])}.pt")
        else:
            paths.append(stack_checkpoint(chunk))
    return paths


def _newest(paths: Sequence[Path]) -> float:
    times = [p.stat().st_mtime for p in paths if p.is_file()]
    return max(times, default=0.0)


def record_paper(scale: str = "paper", budget_s: float = 14 * 60, targets: Sequence[Target] | None = None,
                 batched: bool | None = None, reserve_s: float | None = None, checkpoint_every_s: float = 30.0,
                 device: torch.device | None = None, dry_run: bool = False, poll_s: float = 1.0,
                 say: Callable[[str], None] = print) -> Report:
    """Record the runs of ``targets`` (default :func:`paper_targets` of ``scale``) that ``results/<scale>/`` lacks,
    training what must be trained within ``budget_s`` seconds; see the module's docstring. ``batched``: stack runs
    of one shape (None: where that pays on ``device``, :func:`lib.runs.plan_chunks`); ``reserve_s``: seconds kept
    after the cut for storing and recording (default a tenth of the budget, at most 60); ``checkpoint_every_s``: the
    child's checkpoint interval (at most ``$LIB_CHECKPOINT_EVERY_S``); ``dry_run``: say what would be trained, train
    and record nothing. Returns a :class:`Report`; ``say`` prints each step."""
    started = time.monotonic()
    device = torch.device(device) if device is not None else default_device()
    reserve_s = min(60.0, budget_s / 10) if reserve_s is None else reserve_s
    deadline = started + budget_s - reserve_s
    targets = paper_targets(scale) if targets is None else list(targets)
    report = Report(scale)
    where = results.results_dir() / scale / results.RUNS
    say(f"Recording at scale {scale!r} into {where}, within {budget_s / 60:.1f} min on "
        f"{torch.cuda.get_device_name(device) if device.type == 'cuda' else 'the CPU'}" + (" (dry run)" if dry_run else ""))
    names = {}
    missing: list[RunConfig] = []
    for target in targets:
        before, now, todo = 0, 0, []
        for config in target.configs:
            names[run_key(config)] = f"{target.name}: {_label(config)}"
            if _recorded(scale, config):
                before += 1
                report.before.append(run_key(config))
            elif record_available(scale, config, write=not dry_run):
                now += 1
                report.recorded.append(run_key(config))
            else:
                todo.append(config)
        missing += [c for c in todo if c not in missing]
        say(f"  {target.name}: {len(target.configs)} runs; {before} recorded before, {now} "
            + ("to record" if dry_run else "recorded now") + f" from the run cache or another scale, {len(todo)} to train")
    chunks = runs.plan_chunks(missing, device, batched) if missing else []
    if chunks:
        stacks = [len(c) for c in chunks if len(c) > 1]
        alone = len(chunks) - len(stacks)
        parts = [f"a stack of {n}" for n in stacks] + ([f"{alone} one at a time"] if alone else [])
        say(f"  training {len(missing)} runs on {device.type}: " + ", ".join(parts))
    if dry_run or not chunks:
        report.missing = [run_key(c) for c in missing]
        report.seconds = time.monotonic() - started
        return report
    with settings.override(LIB_RECORD=scale):  # a recording: never bf16 where this machine's probe found it slower
        precision.check_recording(missing, device)
    plan_dir = Path(tempfile.mkdtemp(prefix="record-paper-"))
    plan = plan_dir / "plan.json"
    plan.write_text(json.dumps(dict(device=str(device), chunks=[[c.to_dict() for c in chunk] for chunk in chunks])))
    interval = min(checkpoint_every_s, settings.checkpoint_every_s())
    checkpoints = _checkpoints(chunks)
    pending = list(missing)

    def record_finished() -> None:
        for config in list(pending):
            if runs.in_cache(config) and record_available(scale, config):
                pending.remove(config)
                report.recorded.append(run_key(config))
                summary = runs.load(config, with_weights=False).summary
                say(f"  recorded {names[run_key(config)]} ({summary.get('epochs')} epochs, training accuracy "
                    f"{summary.get('final_train_acc', float('nan')):.4f}, test {summary.get('final_test_acc', float('nan')):.4f})"
                    f" at {(time.monotonic() - started) / 60:.1f} min")

    child = None
    try:
        with settings.override(LIB_CHECKPOINT_EVERY_S=interval):
            child = subprocess.Popen(_child_command(plan))
        final_phase = deadline - interval - 2 * poll_s
        final_checkpoint = None
        while child.poll() is None:
            now = time.monotonic()
            if now >= deadline:
                break
            if now >= final_phase:  # stop at the first checkpoint written in the last interval: little is lost
                newest = _newest(checkpoints)
                if final_checkpoint is None:
                    final_checkpoint = newest
                elif newest > final_checkpoint:
                    break
            record_finished()
            time.sleep(poll_s)
        if child.poll() is None:
            child.terminate()
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
            report.stopped = True
            say(f"  stopped training at {(time.monotonic() - started) / 60:.1f} min, before the budget's end")
            for chunk in chunks:
                for config in salvage_stack(chunk, device.type):
                    say(f"  kept {names[run_key(config)]}, finished in its stack before the cut")
        elif child.returncode != 0:
            report.failed = child.returncode
            say(f"  training of some runs failed (exit status {child.returncode}; the errors are above)")
        record_finished()
    finally:
        if child is not None and child.poll() is None:  # this process was interrupted: so is its training
            child.kill()
            child.wait()
        shutil.rmtree(plan_dir, ignore_errors=True)
    report.missing = [run_key(c) for c in pending]
    report.seconds = time.monotonic() - started
    return report


def summary_line(report: Report) -> str:
    """The report in one sentence, with what to do next."""
    where = results.results_dir() / report.scale
    text = (f"Recorded {len(report.recorded)} run{'' if len(report.recorded) == 1 else 's'} into {where / results.RUNS} "
            f"in {report.seconds / 60:.1f} min ({len(report.before)} were recorded before)")
    if report.missing:
        why = ("the budget ran out" if report.stopped else f"training failed (exit status {report.failed})"
               if report.failed else "not trained")
        text += f"; {len(report.missing)} not recorded ({why}): run the command again to go on"
    if report.recorded:
        text += f". Commit them: git add {where}"
    return text + "."


# ------------------------------------------------------------------------------------------------- networks of a scale

@dataclass(frozen=True)
class Network:
    """One network a chapter trains at a scale: the chapter, the network's name in its parameters, one run of it
    (``config``: its first corruption level and seed) and the chapter's ``torch_threads`` (``None``: torch's)."""

    chapter: str
    name: str
    config: RunConfig
    threads: int | None


def _masc(P) -> list[tuple[str, RunConfig]]:
    from lib.studies.masc.summaries import grid_configs

    entries = {**P.models, **P.extra_models}
    configs = grid_configs(P, entries)
    return [(name, next(c for (n, _, _), c in configs.items() if n == name)) for name in entries]


def _theunissen(P) -> list[tuple[str, RunConfig]]:
    from lib.studies.protocols import theunissen_config

    return [(P.model, theunissen_config(P, P.datasets[0], P.noise_types[0], P.corruption_levels[-1]))]


def _weng(P) -> list[tuple[str, RunConfig]]:
    from lib.studies.weng2019.layer_robustness import networks, run_config

    return [(name, run_config(net, P.seed, P.data_seed)) for name, net in networks(P).items()]


def _zhang(P) -> list[tuple[str, RunConfig]]:
    from lib.studies.protocols import zhang_config

    return [(model, zhang_config(P, model, corruption=m.corruption_levels[0])) for model, m in P.models.items()]


#: The chapters :func:`recorded_networks` knows how to list: those recorded at ``full`` (params/full/).
NETWORK_BUILDERS = {"masc-decoding": _masc, "theunissen-noise": _theunissen, "weng-layer-robustness": _weng,
                    "zhang-randomization": _zhang}


def recorded_networks(scale: str = "full", chapters: Sequence[str] | None = None) -> list[Network]:
    """One :class:`Network` per network that the chapters of :data:`NETWORK_BUILDERS` (or ``chapters``, a subset)
    train at ``scale``; at ``full`` and below only chapters with a parameters file of their own at that scale
    (``params/<scale>/<chapter>.yaml``) are listed."""
    found = []
    for chapter in chapters or NETWORK_BUILDERS:
        if chapter not in NETWORK_BUILDERS:
            raise ValueError(f"no list of networks for chapter {chapter!r}; known: {', '.join(NETWORK_BUILDERS)}")
        if scale != "paper" and not own_scale_file(chapter, scale):
            continue
        P = load_params(chapter, scale)
        threads = getattr(P, "torch_threads", None) or None
        found += [Network(chapter, name, config, threads) for name, config in NETWORK_BUILDERS[chapter](P)]
    return found
