"""The committed results store: what a scale's runs and chapters produced, small enough to commit, read by the book.

The run cache (:mod:`lib.runs`) and the result store (:mod:`lib.cache`) live outside the repository and hold weights;
this store lives in it (``results/<scale>/``, ``$LIB_RESULTS_DIR``) and holds only what a page needs to show a run it
did not train here: curves, final metrics, derived results and claims. It is filled by recording a chapter at a
scale, on whatever machine affords it::

    python -m lib run zhang-randomization --scale full --record     # this CPU: the papers' data sizes
    python -m lib run zhang-randomization --scale paper --record    # a CUDA machine: the paper's protocol

and committed; the ``cpu`` book then shows those results beside its own re-run, without training them.

Layout (``<scale>`` = the recorded scale):

- ``runs/<key>.json``: one training run under its run-cache key (:func:`lib.keys.run_key`): its configuration,
  summary and per-epoch history, the training code's version, when, where and in how long it was trained
  (``provenance``), and a SHA-256 of all that, provenance included (``sha256``);
- ``<kind>/<key>/``: a :class:`lib.cache.Store` entry (a MASC decoding, a kernel solve) copied as it is, manifest
  included;
- ``chapters/<chapter>.json``: the chapter's execution at that scale: its claims (with their verdicts, computed
  there), the frames it published for other scales' pages (:meth:`lib.book.chapter.Chapter.publish`), the keys of
  the runs and results it used, how long it took, and the machine, with a SHA-256 of all that, provenance included.

**Refused, never used:** an entry whose SHA-256 does not match its content or its provenance (edited or damaged:
a hand-edited machine or training time is refused like an edited accuracy), one recorded with
other training code than this checkout's (its key or code version differ from what this code computes), or one of
another chapter or scale than its path says. The error names the file and the command that records it again. An
entry that is merely absent is not an error: the run is trained, or the page says it was not recorded.

Readers: :func:`lib.runs.is_cached` and the grid loaders read ``runs/`` when the run cache lacks a run (a run's
weights are never here: a caller that needs them trains the run); :meth:`lib.cache.Store.fetch` reads the copied
entries; :func:`chapter_record` gives a page what another scale recorded.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import socket
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lib import settings

RUNS = "runs"
CHAPTERS = "chapters"


class RecordError(RuntimeError):
    """A recorded entry is damaged, foreign (other code) or misplaced: it is refused, with the command that fixes it."""


def results_dir() -> Path:
    """The store's root: ``$LIB_RESULTS_DIR`` or ``<repo>/results`` (:func:`lib.settings.results_dir`)."""
    return settings.results_dir()


def scales_recorded() -> list[str]:
    """The scales that have a folder in the store, in :data:`lib.params.SCALES` order."""
    from lib.params import SCALES

    return [scale for scale in SCALES if (results_dir() / scale).is_dir()]


def _digest(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


#: What a run record's SHA-256 covers, and a chapter record's: everything it holds but the SHA-256 itself.
RUN_FIELDS = ("key", "code_version", "config", "summary", "history", "provenance")
CHAPTER_FIELDS = ("chapter", "scale", "claims", "frames", "runs", "overrides", "provenance")


def seal(payload: dict) -> dict:
    """``payload`` with its ``sha256``: the SHA-256 of every other field (content and provenance)."""
    content = {name: value for name, value in payload.items() if name != "sha256"}
    return dict(content, sha256=_digest(content))


def _write_json(path: Path, payload: Any) -> None:
    """Write ``payload`` atomically (a temporary file renamed into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.parent / f".tmp-{path.name}-{uuid.uuid4().hex[:8]}"
    temporary.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
    os.replace(temporary, path)


def hardware() -> dict:
    """The machine a record was made on: host, CPU model and cores, GPU (if one), torch's version and threads."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return dict(host=socket.gethostname(), cpu=cpu, cores=os.cpu_count(), gpu=gpu, torch=torch.__version__,
                threads=torch.get_num_threads())


def describe(machine: dict) -> str:
    """A record's machine in words: ``"NVIDIA H200"`` or ``"2 cores of Intel Xeon ... (torch 2.14.1)"``."""
    if not machine:
        return "an unrecorded machine"
    threads = machine.get("threads") or machine.get("cores")
    where = machine.get("gpu") or f"{threads} thread{'' if threads == 1 else 's'} of {machine.get('cpu')}"
    return f"{where} (torch {machine.get('torch')})"


def _refuse(path: Path, problem: str, fix: str) -> RecordError:
    return RecordError(f"recorded result {path} is refused: {problem}. It was not used; {fix}")


def _rerecord(scale: str, chapter: str = "CHAPTER") -> str:
    return f"record it again with `python -m lib run {chapter} --scale {scale} --record`, or delete the file"


# ------------------------------------------------------------------------------------------------- runs

def run_path(scale: str, key: str) -> Path:
    return results_dir() / scale / RUNS / f"{key}.json"


def record_run(scale: str, trained, cache_manifest: dict | None = None) -> Path:
    """Write the run ``trained`` (a :class:`lib.train.TrainedRun`) into ``results/<scale>/runs/<key>.json``: its
    configuration, summary, history and the code version, when and where it was trained (from its run-cache
    manifest, ``cache_manifest``), its precision (and for bf16 the probe that chose it, :func:`lib.precision.provenance`)
    and the SHA-256 of the content. Weights are not recorded."""
    from lib import precision
    from lib.keys import code_version, run_key

    key = run_key(trained.config)
    content = dict(key=key, code_version=code_version(), config=trained.config.to_dict(), summary=trained.summary,
                   history=trained.history.to_dict(orient="split", index=False))  # columns in order, values exact
    manifest = cache_manifest or {}
    provenance = dict(trained=manifest.get("written"), trained_on=manifest.get("host"),
                      train_seconds=trained.summary.get("train_seconds"), recorded=_now(), machine=hardware())
    provenance.update(precision.provenance(trained.config))  # its precision, and for bf16 the probe that chose it
    path = run_path(scale, key)
    _write_json(path, seal(dict(content, provenance=provenance)))
    return path


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _check_run(path: Path, key: str, code: str) -> dict:
    """The payload of the run entry at ``path``, or :class:`RecordError` if it is damaged or foreign."""
    scale = path.parent.parent.name
    try:
        payload = json.loads(path.read_text())
        content = {name: payload[name] for name in RUN_FIELDS}
        stored = payload["sha256"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise _refuse(path, f"it is not a readable run record ({type(error).__name__}: {error})",
                      _rerecord(scale)) from None
    if content["code_version"] != code:
        raise _refuse(path, f"it was recorded with other training code (code version {content['code_version']}; this "
                            f"checkout's is {code})", _rerecord(scale))
    if content["key"] != key:
        raise _refuse(path, f"its key {content['key']} is not this checkout's key of its configuration, {key} (it was "
                            f"recorded with other training code or data)", _rerecord(scale))
    if _digest(content) != stored or set(payload) != {*RUN_FIELDS, "sha256"}:
        raise _refuse(path, "its content or provenance does not match its SHA-256 (edited or damaged)",
                      _rerecord(scale))
    return payload


def find_run(config) -> Path | None:
    """The store's entry of ``config``'s run at any recorded scale (``None``: not recorded). Nothing is checked."""
    from lib.keys import run_key

    key = run_key(config)
    for scale in scales_recorded():
        path = run_path(scale, key)
        if path.is_file():
            return path
    return None


def load_run(config):
    """The recorded run of ``config`` as a :class:`lib.train.TrainedRun` without weights (``state_dict`` empty), or
    ``None`` if it is not recorded. A damaged or foreign entry raises :class:`RecordError`."""
    import pandas as pd

    from lib.keys import code_version, run_key
    from lib.train import TrainedRun

    path = find_run(config)
    if path is None:
        return None
    payload = _check_run(path, run_key(config), code_version())
    history = payload["history"]
    return TrainedRun(config, pd.DataFrame(history["data"], columns=history["columns"]), payload["summary"], {}, None, {})


def run_provenance(config) -> dict | None:
    """When, where and in how long the recorded run of ``config`` was trained (``None``: not recorded)."""
    path = find_run(config)
    return json.loads(path.read_text()).get("provenance") if path else None


# ------------------------------------------------------------------------------------------------- derived results

def store_root(scale: str) -> Path:
    """Where :class:`lib.cache.Store` entries recorded at ``scale`` are copied (``results/<scale>/<kind>/<key>/``)."""
    return results_dir() / scale


def record_store_entry(scale: str, source: Path, kind: str) -> Path:
    """Copy the :class:`lib.cache.Store` entry at ``source`` (its files and manifest) into the store at ``scale``."""
    destination = store_root(scale) / kind / source.name
    if destination.is_dir():
        shutil.rmtree(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    temporary = destination.parent / f".tmp-{source.name}-{uuid.uuid4().hex[:8]}"
    shutil.copytree(source, temporary)
    os.replace(temporary, destination)
    return destination


# ------------------------------------------------------------------------------------------------- chapters

def chapter_path(scale: str, chapter: str) -> Path:
    return results_dir() / scale / CHAPTERS / f"{chapter}.json"


def frame_payload(frame) -> dict:
    """A published frame as JSON (``{"columns": [...], "data": [[...], ...]}``, the index dropped, floats to 15
    digits): lists keep the column order that the store's sorted keys would lose. :func:`chapter_record` reads it
    back as a DataFrame."""
    return json.loads(frame.to_json(orient="split", index=False, double_precision=15))


def record_chapter(scale: str, chapter: str, *, claims: list[dict], frames: dict, runs: list[str],
                   seconds: float, overrides: dict | None = None) -> Path:
    """Write ``results/<scale>/chapters/<chapter>.json``: the chapter's claims at ``scale``, the frames it published
    (name → :func:`frame_payload`), the run keys it used, its execution time and the machine, with a SHA-256 of the content."""
    content = dict(chapter=chapter, scale=scale, claims=claims, frames=frames, runs=sorted(set(runs)),
                   overrides=dict(overrides or {}))
    provenance = dict(recorded=_now(), seconds=round(float(seconds), 1), machine=hardware())
    path = chapter_path(scale, chapter)
    _write_json(path, seal(dict(content, provenance=provenance)))
    return path


@dataclass
class ChapterRecord:
    """What ``chapter`` recorded at ``scale``: its claims (:class:`lib.book.claims.Claim`), published frames
    (pandas DataFrames), the runs it used (key → provenance), its execution time and machine."""

    chapter: str
    scale: str
    path: Path
    claims: list = field(default_factory=list)
    frames: dict = field(default_factory=dict)
    runs: dict = field(default_factory=dict)
    recorded: str = ""
    seconds: float = 0.0
    machine: dict = field(default_factory=dict)

    def frame(self, name: str):
        """The published frame ``name`` (``KeyError`` naming the ones there are)."""
        if name not in self.frames:
            raise KeyError(f"{self.path} has no frame {name!r}; it has {sorted(self.frames)}")
        return self.frames[name]

    def train_seconds(self) -> float:
        return float(sum((p or {}).get("train_seconds") or 0 for p in self.runs.values()))

    def provenance(self) -> str:
        """One sentence: where this came from, when, on what, in how long."""
        path = self.path.relative_to(self.path.parents[3]) if len(self.path.parents) > 3 else self.path
        minutes = self.train_seconds() / 60
        spent = f"{minutes / 60:.1f} h" if minutes >= 120 else f"{minutes:.0f} min"
        trained = f"{len(self.runs)} training runs ({spent} of training)" if self.runs else "no training runs"
        took = f"{self.seconds:.0f} s" if self.seconds < 90 else f"{self.seconds / 60:.0f} min"
        return (f"`{path}`, recorded {self.recorded[:10]} on {describe(self.machine)}: {trained}; the recording "
                f"command took {took}, training any run it found missing included")


def chapter_record(chapter: str, scale: str) -> ChapterRecord | None:
    """What ``chapter`` recorded at ``scale`` (``None``: not recorded). A damaged, foreign or misplaced record
    raises :class:`RecordError`: its SHA-256 must match, it must name this chapter and scale, and every run it used
    must be recorded with this checkout's training code (else its claims could describe runs this code would not
    reproduce)."""
    import pandas as pd

    from lib.verdicts import Claim
    from lib.keys import code_version

    path = chapter_path(scale, chapter)
    if not path.is_file():
        return None
    try:
        payload = json.loads(path.read_text())
        content = {name: payload[name] for name in CHAPTER_FIELDS}
        stored = payload["sha256"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise _refuse(path, f"it is not a readable chapter record ({type(error).__name__}: {error})",
                      _rerecord(scale, chapter)) from None
    if _digest(content) != stored or set(payload) != {*CHAPTER_FIELDS, "sha256"}:
        raise _refuse(path, "its content or provenance does not match its SHA-256 (edited or damaged)",
                      _rerecord(scale, chapter))
    if content["chapter"] != chapter or content["scale"] != scale:
        raise _refuse(path, f"it records chapter {content['chapter']!r} at scale {content['scale']!r}, not "
                            f"{chapter!r} at {scale!r}", _rerecord(scale, chapter))
    runs, code = {}, code_version()
    for key in content["runs"]:
        entry = run_path(scale, key)
        if not entry.is_file():
            raise _refuse(path, f"run {key}, which it used, is not in {entry.parent}", _rerecord(scale, chapter))
        try:
            runs[key] = _check_run(entry, key, code).get("provenance", {})
        except RecordError as error:
            raise _refuse(path, f"run {key}, which it used, is refused ({error})", _rerecord(scale, chapter)) from None
    frames = {name: pd.DataFrame(frame["data"], columns=frame["columns"]) for name, frame in content["frames"].items()}
    provenance = content["provenance"]
    return ChapterRecord(chapter, scale, path, [Claim(**c) for c in content["claims"]], frames, runs,
                         provenance.get("recorded", ""), float(provenance.get("seconds", 0.0)),
                         provenance.get("machine", {}))
