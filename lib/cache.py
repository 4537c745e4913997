"""One content-addressed result store for everything a chapter computes that is not a training run.

Kernel solves (:mod:`lib.studies.zhang2017.kernels`), double-descent sweeps (:mod:`lib.studies.weng2019.double_descent`), MASC decodings
(:mod:`lib.studies.masc.decoding`) and intrinsic-dimension runs (:mod:`lib.studies.weng2019.intrinsic_dimension`) keep their results here, under
``<cache>/<kind>/<key>/`` beside the run cache (:func:`lib.runs.cache_dir`). The store has the run cache's
guarantees:

- **the key includes the code**: SHA-256 of the settings (JSON) and of the behaviour of every module the result
  depends on (``sources``, files of this package; :func:`lib.keys.behaviour_digest`: the syntax tree without
  docstrings or comments), so editing a solver, a sweep trainer or a decoder never returns a result the old code
  computed, while editing their docstrings or comments keeps every result; a result derived from a training run
  has the run's key (:func:`lib.keys.run_key`, which covers the run's data) in its settings;
- **atomic entries**: an entry is written under a temporary name, ``manifest.json`` (each file's size and
  SHA-256) last, then renamed into place; an interrupted write leaves nothing that looks finished, and what it
  left (``<kind>/.tmp-<key>-*``) is removed when that key is next computed;
- **a per-key lock** (``<cache>/.locks/<kind>-<key>.lock``, ``flock``): two processes asking for the same result
  compute it once, the second waits and reads it;
- **quarantine**: an entry whose files do not match its manifest is moved to ``<cache>/.damaged/`` with a warning
  and computed again.

The training runs themselves stay in :mod:`lib.runs`, whose key covers the training code's behaviour
(:data:`lib.keys.TRAINING_MODULES`) and the run's data.

A result is a mapping of names to values: dicts, lists and numbers (stored as JSON), NumPy arrays (``.npy``) and
pandas DataFrames (JSON columns, every float read back bit for bit).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import socket
import sys
import time
import uuid
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import pandas as pd

PACKAGE_DIR = Path(__file__).resolve().parent
MANIFEST = "manifest.json"


def _cache_dir() -> Path:
    from lib import settings

    return settings.cache_dir()


#: The file that marks a folder as a cache lib made; ``python -m lib runs clear`` deletes no folder without it.
CACHE_MARKER = ".lib-cache"
#: What lib writes into a cache folder outside the runs and results it locks (a data set's fingerprints, the locks):
#: a folder holding nothing else is one lib made.
LIB_ENTRIES = (CACHE_MARKER, ".locks", ".data-fingerprints", ".checkpoints", ".damaged", ".finished.log")


def mark_new_cache(folder: Path) -> None:
    """Create the cache folder ``folder`` (parents too) and mark it as lib's (:data:`CACHE_MARKER`) if lib created it:
    it is empty or holds only what lib writes (:data:`LIB_ENTRIES`). A folder that holds anything else is left
    unmarked (not a cache lib made). Every writer of runs and results calls this first (:func:`held_locks`)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / CACHE_MARKER
    if not marker.is_file() and all(entry.name in LIB_ENTRIES for entry in folder.iterdir()):
        marker.write_text("A run cache and result store made by lib (lib.runs, lib.cache): "
                          "`python -m lib runs clear` may delete this folder.\n")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def source_file(name: str, package_dir: Path = PACKAGE_DIR) -> Path:
    """The package's source file ``name``: a path relative to ``package_dir`` (``studies/masc/decoding.py``), or a
    file name found once in the package (``kernels.py``)."""
    path = package_dir / name
    if path.is_file():
        return path
    found = [p for p in package_dir.rglob(Path(name).name) if "__pycache__" not in p.parts]
    if len(found) == 1:
        return found[0]
    raise FileNotFoundError(f"result store: source {name!r} is not a file of {package_dir}" + (
        f" ({len(found)} files have that name: give the path)" if found else ""))


def source_digest(sources: Iterable[str], package_dir: Path = PACKAGE_DIR) -> str:
    """SHA-256 of the named source files of the package (:func:`source_file`), read now: each file's name (not its
    folder: moving a module unchanged keeps its results) and behaviour (:func:`lib.keys.file_digest`: docstrings,
    comments and layout do not count)."""
    from lib.keys import file_digest

    digest = hashlib.sha256()
    for name in sorted(sources, key=lambda n: (Path(n).name, n)):
        digest.update(Path(name).name.encode())
        digest.update(file_digest(source_file(name, package_dir)).encode())
    return digest.hexdigest()


def _plain(value: Any) -> Any:
    """JSON for what ``json`` cannot write: a chapter's typed parameters as the mapping their file gave
    (:class:`lib.schemas.ChapterParams` and its entries), anything else as its ``str``."""
    if hasattr(value, "model_fields_set") and hasattr(value, "keys"):
        return {key: value[key] for key in value.keys()}
    return str(value)


@contextlib.contextmanager
def held_locks(names: Iterable[str], waiting: Callable[[str], str]):
    """Hold ``<cache>/.locks/<name>.lock`` for every name (in sorted order, so two holders never deadlock): the one
    per-key lock of the run cache (:func:`lib.runs.run_locks`) and of this store.

    ``fcntl.flock``: the kernel releases it when its process exits or is killed, so a dead worker never leaves a key
    locked. ``waiting(name)`` is printed when another process holds one. Where ``fcntl`` does not exist (Windows)
    there is no lock, and two processes may both compute a key; the cache then keeps one intact copy."""
    mark_new_cache(_cache_dir())
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX
        yield
        return
    folder = _cache_dir() / ".locks"
    folder.mkdir(parents=True, exist_ok=True)
    handles = []
    try:
        for name in sorted(set(names)):
            handle = open(folder / f"{name}.lock", "a+")
            handles.append(handle)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                print(waiting(name), file=sys.stderr)
                fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        for handle in reversed(handles):
            handle.close()  # closing releases the lock


def quarantine(path: Path, name: str, message: str, stacklevel: int = 3) -> None:
    """Move the damaged entry ``path`` to ``<cache>/.damaged/<name>-<random>`` (kept for inspection) and warn with
    ``message`` followed by where it went; nothing if another process moved it already."""
    destination = _cache_dir() / ".damaged" / f"{name}-{uuid.uuid4().hex[:8]}"
    destination.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(path, destination)
    except FileNotFoundError:
        return
    warnings.warn(message.replace("{destination}", str(destination)), stacklevel=stacklevel + 1)


def _encode(name: str, value: Any) -> tuple[str, bytes]:
    if isinstance(value, np.ndarray):
        buffer = io.BytesIO()
        np.save(buffer, value, allow_pickle=False)
        return f"{name}.npy", buffer.getvalue()
    if isinstance(value, pd.DataFrame):
        payload = {"columns": [str(c) for c in value.columns], "data": value.to_dict(orient="list")}
        return f"{name}.frame.json", json.dumps(payload).encode()
    return f"{name}.json", json.dumps(value).encode()


def _decode(filename: str, data: bytes) -> tuple[str, Any]:
    if filename.endswith(".npy"):
        return filename[:-4], np.load(io.BytesIO(data), allow_pickle=False)
    if filename.endswith(".frame.json"):
        payload = json.loads(data)
        return filename[:-11], pd.DataFrame(payload["data"], columns=payload["columns"])
    return filename[:-5], json.loads(data)


class DamagedResultError(RuntimeError):
    """A stored result's files do not match its manifest: it is not used."""


class Store:
    """Results of one ``kind`` (``"kernels"``, ``"double-descent"``, ...), keyed by settings and the code in ``sources``.

    >>> store = Store("kernels", sources=("studies/zhang2017/kernels.py",))
    >>> result, cached = store.fetch({"n": 5000, "bandwidth": 5.0}, lambda: {"scores": np.zeros(3)})
    """

    def __init__(self, kind: str, sources: Iterable[str], package_dir: Path | None = None,
                 root: Path | None = None):
        self.kind = kind
        self.sources = tuple(sources)
        self.package_dir = Path(package_dir) if package_dir else PACKAGE_DIR
        self._root = Path(root) if root else None

    @property
    def root(self) -> Path:
        return (self._root or _cache_dir()) / self.kind

    def key(self, settings: Mapping) -> str:
        payload = json.dumps(settings, sort_keys=True, default=_plain) + source_digest(self.sources, self.package_dir)
        return hashlib.sha256(payload.encode()).hexdigest()[:20]

    def path(self, settings: Mapping) -> Path:
        return self.root / self.key(settings)

    # ------------------------------------------------------------------------------------------ reading

    def problem(self, path: Path) -> str | None:
        """What is wrong with the entry at ``path`` (``None``: intact): every file against the manifest's size and SHA-256."""
        try:
            manifest = json.loads((path / MANIFEST).read_text())["files"]
        except FileNotFoundError:
            return f"no {MANIFEST} (an unfinished write)"
        except (OSError, ValueError, KeyError, TypeError) as error:
            return f"{MANIFEST} is unreadable ({type(error).__name__})"
        for name, facts in manifest.items():
            file = path / name
            if not file.is_file():
                return f"{name} is missing"
            data = file.read_bytes()
            if len(data) != facts["bytes"]:
                return f"{name} has {len(data)} bytes, the manifest says {facts['bytes']} (truncated?)"
            if _sha256(data) != facts["sha256"]:
                return f"{name} does not match its SHA-256 in the manifest (changed or corrupted)"
        return None

    def load(self, settings: Mapping) -> dict:
        """The stored result (``KeyError`` if absent, :class:`DamagedResultError` if its files do not match)."""
        path = self.path(settings)
        if not path.is_dir():
            raise KeyError(f"{self.kind} result {path.name} is not stored in {self.root}")
        problem = self.problem(path)
        if problem is not None:
            raise DamagedResultError(f"stored {self.kind} result {path} is damaged: {problem}. It was not used; "
                                     f"clear it with `rm -rf {path}`.")
        manifest = json.loads((path / MANIFEST).read_text())
        return dict(_decode(name, (path / name).read_bytes()) for name in manifest["files"])

    def contains(self, settings: Mapping) -> bool:
        path = self.path(settings)
        return path.is_dir() and self.problem(path) is None

    # ------------------------------------------------------------------------------------------ writing

    def save(self, settings: Mapping, result: Mapping[str, Any]) -> Path:
        path = self.path(settings)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.parent / f".tmp-{path.name}-{uuid.uuid4().hex[:8]}"
        temporary.mkdir()
        try:
            files = {}
            for name, value in result.items():
                filename, data = _encode(name, value)
                with open(temporary / filename, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                files[filename] = {"bytes": len(data), "sha256": _sha256(data)}
            manifest = dict(kind=self.kind, key=path.name, settings=json.loads(json.dumps(settings, default=_plain)),
                            sources=list(self.sources), code=source_digest(self.sources, self.package_dir), files=files, host=socket.gethostname(),
                            written=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
            (temporary / MANIFEST).write_text(json.dumps(manifest, indent=1))  # last: the entry is complete
        except BaseException:
            shutil.rmtree(temporary, ignore_errors=True)
            raise
        try:
            os.replace(temporary, path)
        except OSError:  # another process stored it first: keep theirs
            shutil.rmtree(temporary, ignore_errors=True)
        return path

    def _quarantine(self, path: Path, problem: str) -> None:
        quarantine(path, f"{self.kind}-{path.name}", f"stored {self.kind} result {path} was damaged ({problem}); not "
                   "used, moved to {destination}, computing it again", stacklevel=4)

    def lock(self, settings: Mapping):
        """The key's lock (:func:`held_locks`, ``<cache>/.locks/<kind>-<key>.lock``)."""
        key = self.key(settings)
        return held_locks([f"{self.kind}-{key}"],
                          lambda _: f"{self.kind} result {key} is being computed by another process; waiting")

    def recorded(self, settings: Mapping) -> dict | None:
        """The result of ``settings`` as the committed results store records it (:mod:`lib.results`, any scale), or
        ``None``. A recorded entry that is damaged, or that another version of the code wrote, raises
        :class:`DamagedResultError` naming it: it is refused, never used or replaced silently."""
        from lib import results

        key = self.key(settings)
        for scale in results.scales_recorded():
            path = results.store_root(scale) / self.kind / key
            if not path.is_dir():
                continue
            problem = self.problem(path)
            if problem is None:
                manifest = json.loads((path / MANIFEST).read_text())
                code = source_digest(self.sources, self.package_dir)
                if manifest.get("key") != key or manifest.get("code", code) != code:
                    problem = "it was written by other code (its key or code digest is not this checkout's)"
            if problem is not None:
                raise DamagedResultError(f"recorded {self.kind} result {path} is refused: {problem}. It was not used; "
                                         f"record it again (`python -m lib run CHAPTER --scale {scale} --record`) "
                                         f"or delete it.")
            return dict(_decode(name, (path / name).read_bytes())
                        for name in json.loads((path / MANIFEST).read_text())["files"])
        return None

    def fetch(self, settings: Mapping, compute: Callable[[], Mapping[str, Any]]) -> tuple[dict, bool]:
        """The result of ``settings``: stored here or recorded in the results store (``cached=True``), or
        ``compute()``-d now under the key's lock and stored. A damaged entry here is quarantined and computed again.
        With ``$LIB_RECORD`` set, the entry is also copied into the results store at that scale."""
        result, cached = self._fetch(settings, compute)
        self._record(settings)
        return result, cached

    def _record(self, settings: Mapping) -> None:
        from lib import results
        from lib import settings as lib_settings

        scale = lib_settings.record_scale()
        path = self.path(settings)
        if scale is not None and path.is_dir() and self.problem(path) is None:
            results.record_store_entry(scale, path, self.kind)

    def _fetch(self, settings: Mapping, compute: Callable[[], Mapping[str, Any]]) -> tuple[dict, bool]:
        path = self.path(settings)
        if path.is_dir() and self.problem(path) is None:
            return self.load(settings), True
        recorded = self.recorded(settings)
        if recorded is not None:
            return recorded, True
        with self.lock(settings):
            if path.is_dir():
                problem = self.problem(path)
                if problem is None:  # another process stored it while we waited
                    return self.load(settings), True
                self._quarantine(path, problem)
            for leftover in path.parent.glob(f".tmp-{path.name}-*"):  # an interrupted write's; we hold the lock
                shutil.rmtree(leftover, ignore_errors=True)
            result = dict(compute())
            self.save(settings, result)
        return result, False
