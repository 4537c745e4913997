"""Re-key stored results to this checkout's keys without retraining: ``python -m lib runs migrate``.

Run keys (:func:`lib.keys.run_key`) cover the behaviour of the training code and the content of a run's data;
result-store keys (:meth:`lib.cache.Store.key`) the behaviour of their code. Results stored under the keys of the
earlier scheme (the SHA-256 of the training modules' source, pinned to the version string :data:`OLD_CODE_VERSION`
that every stored run records, and no data) are moved to their keys in this scheme, wherever they are:

- the committed results store (``results/<scale>/``, :mod:`lib.results`): run records (re-keyed and sealed again,
  their SHA-256 now covering their provenance), :class:`lib.cache.Store` entries (a MASC decoding's settings name its
  run's key, which follows) and chapter records (the keys of the runs they used follow; sealed again);
- a run cache and result store (``$LIB_CACHE_DIR``, and the legacy ``<repo>/_runs``): finished runs, result-store
  entries and the checkpoints of interrupted runs (``.checkpoints/<key>.pt``), so that a long run resumes under its
  new key. A checkpoint written by the earlier code does not name its configuration: it is matched against the
  configurations known from the stores and those passed in (``--config``).

Only an entry that is valid under the earlier scheme is moved: its key is the earlier key of its configuration (or
settings) with :data:`OLD_CODE_VERSION` (or the code digest its manifest records, equal to the earlier digest of the
code in this checkout), and its files match their checksums. Anything else is reported and left where it is. Runs
of a model with dropout are never moved: their masks are now drawn from the run's seed, so this code gives them
another result; they are reported, to be trained (and recorded) again. The migration is idempotent (an entry already
under its current key is counted as current), and ``dry_run`` reports what it would do and changes nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from lib import results, settings
from lib.cache import MANIFEST, Store, source_digest, source_file
from lib.keys import code_version, run_key
from lib.models import dropout_of
from lib.train import RunConfig

#: The version of the training code in the keys of every run stored before this scheme (the ``code_version`` of the
#: records in ``results/*/runs/*.json`` and of the run-cache manifests).
OLD_CODE_VERSION = "674e11421a77144b"


# ------------------------------------------------------------------------------------------------- the earlier keys

def old_run_key(config: dict) -> str:
    """The earlier key of a run: SHA-256 of its configuration as stored (JSON) and :data:`OLD_CODE_VERSION`."""
    payload = json.dumps(config, sort_keys=True) + OLD_CODE_VERSION
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def old_source_digest(sources: Iterable[str]) -> str:
    """The earlier code digest of a result-store entry: SHA-256 of each source file's name and bytes."""
    digest = hashlib.sha256()
    for name in sorted(sources, key=lambda n: (Path(n).name, n)):
        digest.update(Path(name).name.encode())
        digest.update(source_file(name).read_bytes())
    return digest.hexdigest()


def old_store_key(settings_: dict, code: str) -> str:
    """The earlier key of a result-store entry: SHA-256 of its settings (JSON) and its code digest."""
    return hashlib.sha256((json.dumps(settings_, sort_keys=True) + code).encode()).hexdigest()[:20]


def _old_seal(payload: dict, fields: tuple[str, ...]) -> str:
    """The earlier SHA-256 of a record: its content without the provenance."""
    return results._digest({name: payload[name] for name in fields if name != "provenance"})


# ------------------------------------------------------------------------------------------------- report

@dataclass
class Report:
    """What a migration did (or, dry, would do): each list holds ``(what, key, new key or reason)``."""

    moved: list[tuple[str, str, str]] = field(default_factory=list)
    current: list[tuple[str, str, str]] = field(default_factory=list)
    dropout: list[tuple[str, str, str]] = field(default_factory=list)
    left: list[tuple[str, str, str]] = field(default_factory=list)

    def lines(self, dry_run: bool = False) -> list[str]:
        verb = "would re-key" if dry_run else "re-keyed"
        out = [f"{verb} {what} {old} -> {new}" for what, old, new in self.moved]
        out += [f"not migrated (dropout: this code draws its masks from the run's seed, so it gives another result; "
                f"train it again) {what} {key}: {why}" for what, key, why in self.dropout]
        out += [f"left as it is {what} {key}: {why}" for what, key, why in self.left]
        out.append(f"{len(self.moved)} {'to re-key' if dry_run else 're-keyed'}, {len(self.current)} already "
                   f"current, {len(self.dropout)} dropout runs not migrated, {len(self.left)} left as they are")
        return out


# ------------------------------------------------------------------------------------------------- helpers

def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write_json(path: Path, payload) -> None:
    temporary = path.parent / f".tmp-{path.name}-{uuid.uuid4().hex[:8]}"
    temporary.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
    os.replace(temporary, path)


def _config(values) -> RunConfig | None:
    try:
        return RunConfig.from_dict(dict(values))
    except (TypeError, ValueError):
        return None


@contextlib.contextmanager
def _try_locks(cache: Path, names: Iterable[str]) -> Iterator[bool]:
    """Hold ``<cache>/.locks/<name>.lock`` for every name if no other process holds one (yields ``False`` if one
    does: a run being trained is not moved under it)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX
        yield True
        return
    folder = cache / ".locks"
    folder.mkdir(parents=True, exist_ok=True)
    handles = []
    try:
        for name in sorted(set(names)):
            handle = open(folder / f"{name}.lock", "a+")
            handles.append(handle)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
        yield True
    finally:
        for handle in reversed(handles):
            handle.close()


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# ------------------------------------------------------------------------------------------------- the migration

class Migration:
    """One migration over the committed store ``results_root`` and the run caches ``caches``; :meth:`run` does it.

    ``configs``: run configurations that interrupted runs' checkpoints may belong to (beyond those of the stored
    runs), for checkpoints written by the earlier code, which do not name their configuration."""

    def __init__(self, results_root: Path | None, caches: Iterable[Path] = (), configs: Iterable[RunConfig] = (),
                 dry_run: bool = False):
        self.results_root = Path(results_root) if results_root is not None else None
        self.caches = [Path(c) for c in caches]
        self.dry_run = dry_run
        self.report = Report()
        self.mapping: dict[str, str] = {}  # earlier run key -> current run key, of every valid stored run
        self.candidates: dict[str, dict] = {}  # earlier run key -> configuration (JSON), for checkpoints
        for config in configs:
            self.candidates[old_run_key(json.loads(json.dumps(config.to_dict())))] = config.to_dict()

    # -------------------------------------------------------------------------------------------- entry points

    def run(self) -> Report:
        scales = sorted(p for p in self.results_root.iterdir() if p.is_dir()) if self.results_root and \
            self.results_root.is_dir() else []
        for scale in scales:
            for path in sorted((scale / results.RUNS).glob("*.json")):
                self._run_record(path)
        for cache in self.caches:
            with settings.override(LIB_CACHE_DIR=cache):
                entries = [p for p in cache.iterdir() if p.is_dir() and not p.name.startswith(".")
                           and (p / "config.json").is_file()] if cache.is_dir() else []
                for path in sorted(entries):
                    self._cached_run(cache, path)
        for cache in self.caches:
            with settings.override(LIB_CACHE_DIR=cache):
                for path in sorted((cache / ".checkpoints").glob("*.pt")):
                    self._checkpoint(cache, path)
        for root in scales + self.caches:
            kinds = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
                     and p.name not in (results.RUNS, results.CHAPTERS) and not (p / "config.json").is_file()] \
                if root.is_dir() else []
            for kind in sorted(kinds):
                entries = [p for p in kind.iterdir() if p.is_dir() and not p.name.startswith(".")]
                for path in sorted(entries):
                    self._store_entry(root, path, lock=root in self.caches)
        for scale in scales:
            for path in sorted((scale / results.CHAPTERS).glob("*.json")):
                self._chapter_record(path)
        return self.report

    # -------------------------------------------------------------------------------------------- runs

    def _valid_run(self, what: str, key: str, config_values) -> tuple[RunConfig | None, str | None]:
        """The configuration of a stored run named ``key`` and its current key (``None`` if it is not moved: then it
        has been reported, unless it is current)."""
        config = _config(config_values) if isinstance(config_values, dict) else None
        if config is None:
            self.report.left.append((what, key, "its configuration is not a valid RunConfig of this checkout"))
            return None, None
        new = run_key(config)
        old = old_run_key(config_values)
        if dropout_of(config.model) and key in (old, new):
            if key == new:
                self.report.current.append((what, key, key))
            else:
                self.report.dropout.append((what, key, config.model))
            return None, None
        if key in (old, new):
            self.mapping[old] = new
            self.candidates.setdefault(old, config_values)
        return config, new

    def _run_record(self, path: Path) -> None:
        what = f"run record {path}"
        payload = _read_json(path)
        if not isinstance(payload, dict) or not {"key", "code_version", "config", "sha256"} <= set(payload):
            self.report.left.append((what, path.stem, "not a readable run record"))
            return
        key = payload["key"]
        config, new = self._valid_run(what, path.stem, payload["config"])
        if config is None:
            return
        if key == path.stem == new and payload["code_version"] == code_version():
            if results.seal(payload)["sha256"] == payload["sha256"]:
                self.report.current.append((what, key, new))
            else:
                self.report.left.append((what, key, "its content or provenance does not match its SHA-256"))
            return
        problem = None
        if key != path.stem or key != old_run_key(payload["config"]):
            problem = "its key is not the earlier key of its configuration"
        elif payload["code_version"] != OLD_CODE_VERSION:
            problem = f"it was recorded with training code {payload['code_version']}, not {OLD_CODE_VERSION}"
        elif "provenance" not in payload or _old_seal(payload, results.RUN_FIELDS) != payload["sha256"]:
            problem = "its content does not match its SHA-256 (edited or damaged)"
        if problem is not None:
            self.report.left.append((what, path.stem, problem))
            self.mapping.pop(old_run_key(payload["config"]), None)
            return
        self.report.moved.append((what, key, new))
        if self.dry_run:
            return
        provenance = dict(payload["provenance"], rekeyed=dict(old_key=key, old_code_version=OLD_CODE_VERSION,
                                                              on=_now()))
        target = path.with_name(f"{new}.json")
        _write_json(target, results.seal(dict(key=new, code_version=code_version(), config=payload["config"],
                                              summary=payload["summary"], history=payload["history"],
                                              provenance=provenance)))
        path.unlink()

    def _cached_run(self, cache: Path, path: Path) -> None:
        from lib import runs

        what = f"cached run {path}"
        config_values = _read_json(path / "config.json")
        manifest = _read_json(path / MANIFEST)
        if not isinstance(manifest, dict):
            self.report.left.append((what, path.name, f"no readable {MANIFEST} (an unfinished write?)"))
            return
        config, new = self._valid_run(what, path.name, config_values)
        if config is None:
            return
        old = old_run_key(config_values)
        if path.name == new and manifest.get("code_version") == code_version():
            self.report.current.append((what, new, new))
            return
        finishing = path.name == old and manifest.get("key") == new and manifest.get("code_version") == code_version()
        if not finishing and (path.name != old or manifest.get("code_version") != OLD_CODE_VERSION):
            self.report.left.append((what, path.name, f"it is not a run of training code {OLD_CODE_VERSION} under "
                                                      f"its earlier key (code version {manifest.get('code_version')})"))
            self.mapping.pop(old, None)
            return
        problem = runs.entry_problem(path, [name for name in manifest.get("files", {})])
        if problem is not None:
            self.report.left.append((what, path.name, f"damaged: {problem}"))
            self.mapping.pop(old, None)
            return
        target = cache / new
        if target.exists():
            self.report.left.append((what, old, f"its new key {new} is taken already (trained again since)"))
            return
        self.report.moved.append((what, old, new))
        if self.dry_run:
            return
        with _try_locks(cache, [old, new]) as held:
            if not held:
                self.report.moved.pop()
                self.report.left.append((what, old, "another process holds its lock (training it?); run again later"))
                return
            if not finishing:
                _write_json(path / MANIFEST, dict(manifest, key=new, code_version=code_version(),
                                                  rekeyed=dict(old_key=old, old_code_version=OLD_CODE_VERSION,
                                                               on=_now())))
            os.replace(path, target)

    def _checkpoint(self, cache: Path, path: Path) -> None:
        import torch

        what = f"checkpoint {path}"
        key = path.stem
        if key.startswith("batch-"):
            self.report.left.append((what, key, "a checkpoint of runs trained together names none of them: "
                                                "those runs start again"))
            return
        try:
            state = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as error:  # a damaged checkpoint is the next run's business
            self.report.left.append((what, key, f"unreadable ({type(error).__name__})"))
            return
        config_values = state.get("config") if isinstance(state, dict) else None
        if config_values is None:
            config_values = self.candidates.get(key)
        if config_values is None:
            self.report.left.append((what, key, "it does not name its configuration and none known matches its key; "
                                                "pass the run's configuration with --config"))
            return
        config = _config(config_values)
        if config is None:
            self.report.left.append((what, key, "its configuration is not a valid RunConfig of this checkout"))
            return
        new = run_key(config)
        if key == new:
            self.report.current.append((what, key, new))
            return
        if key != old_run_key(config_values):
            self.report.left.append((what, key, "its key is neither the current nor the earlier key of its run"))
            return
        if dropout_of(config.model):
            self.report.dropout.append((what, key, config.model))
            return
        target = path.with_name(f"{new}.pt")
        if target.exists():
            self.report.left.append((what, key, f"a checkpoint under its new key {new} exists already"))
            return
        self.report.moved.append((what, key, new))
        if self.dry_run:
            return
        with _try_locks(cache, [key, new]) as held:
            if not held:
                self.report.moved.pop()
                self.report.left.append((what, key, "another process holds its lock (training it?); run again "
                                                    "when it has finished"))
                return
            os.replace(path, target)

    # -------------------------------------------------------------------------------------------- result store

    def _store_entry(self, root: Path, path: Path, lock: bool) -> None:
        kind = path.parent.name
        what = f"{kind} result {path}"
        manifest = _read_json(path / MANIFEST)
        if not isinstance(manifest, dict) or not {"settings", "sources", "code", "files"} <= set(manifest) \
                or manifest.get("kind", kind) != kind:
            self.report.left.append((what, path.name, f"no readable {MANIFEST} of a {kind} result"))
            return
        store = Store(kind, manifest["sources"])
        try:
            new_code, old_code = source_digest(manifest["sources"]), old_source_digest(manifest["sources"])
        except FileNotFoundError as error:
            self.report.left.append((what, path.name, f"its code is gone ({error})"))
            return
        settings_ = manifest["settings"]
        if manifest["code"] == new_code and manifest.get("key") == path.name == store.key(settings_):
            self.report.current.append((what, path.name, path.name))
            return
        if manifest["code"] != old_code or old_store_key(settings_, old_code) != path.name:
            self.report.left.append((what, path.name, "it was not written by this checkout's code under its earlier "
                                                      "key (its code digest or key differ)"))
            return
        problem = store.problem(path)
        if problem is not None:
            self.report.left.append((what, path.name, f"damaged: {problem}"))
            return
        new_settings = dict(settings_)
        if kind == "decode":  # the settings name the decoded run by its key
            run = settings_.get("run")
            if run not in self.mapping:
                self.report.left.append((what, path.name, f"its run {run} was not re-keyed (dropout, stale or not "
                                                          f"in any store migrated here)"))
                return
            new_settings["run"] = self.mapping[run]
        if kind == "subspace":  # the settings name the training code's version
            if settings_.get("code") != OLD_CODE_VERSION:
                self.report.left.append((what, path.name, f"it names training code {settings_.get('code')}"))
                return
            if dropout_of(str(settings_.get("model", ""))):
                self.report.dropout.append((what, path.name, str(settings_.get("model"))))
                return
            new_settings["code"] = code_version()
        new = store.key(new_settings)
        target = path.parent / new
        if target.exists():
            self.report.left.append((what, path.name, f"its new key {new} is taken already (computed again since)"))
            return
        self.report.moved.append((what, path.name, new))
        if self.dry_run:
            return
        guard = _try_locks(root, [f"{kind}-{path.name}", f"{kind}-{new}"]) if lock else contextlib.nullcontext(True)
        with guard as held:
            if not held:
                self.report.moved.pop()
                self.report.left.append((what, path.name, "another process holds its lock; run again later"))
                return
            temporary = path.parent / f".tmp-{new}-{uuid.uuid4().hex[:8]}"
            shutil.copytree(path, temporary)
            (temporary / MANIFEST).write_text(json.dumps(dict(
                manifest, key=new, settings=new_settings, code=new_code,
                rekeyed=dict(old_key=path.name, on=_now())), indent=1))
            os.replace(temporary, target)
            shutil.rmtree(path)

    # -------------------------------------------------------------------------------------------- chapters

    def _chapter_record(self, path: Path) -> None:
        what = f"chapter record {path}"
        payload = _read_json(path)
        if not isinstance(payload, dict) or not set(results.CHAPTER_FIELDS) <= set(payload):
            self.report.left.append((what, path.stem, "not a readable chapter record"))
            return
        sealed_now = results.seal(payload)["sha256"] == payload.get("sha256")
        if not sealed_now and _old_seal(payload, results.CHAPTER_FIELDS) != payload.get("sha256"):
            self.report.left.append((what, path.stem, "its content does not match its SHA-256 (edited or damaged)"))
            return
        runs = sorted(self.mapping.get(key, key) for key in payload["runs"])
        current = set(self.mapping.values())
        unmoved = [key for key in runs if key not in current]
        if unmoved:
            self.report.left.append((what, path.stem, f"it used run(s) {', '.join(unmoved)}, which were not re-keyed: "
                                                      f"it is refused until the chapter is recorded again"))
        if sealed_now and runs == sorted(payload["runs"]):
            if not unmoved:
                self.report.current.append((what, path.stem, path.stem))
            return
        changed = len(set(payload["runs"]) - set(runs))
        self.report.moved.append((what, path.stem, f"{changed} of its {len(runs)} run keys, sealed with its "
                                                    f"provenance"))
        if self.dry_run:
            return
        content = {name: payload[name] for name in results.CHAPTER_FIELDS}
        _write_json(path, results.seal(dict(content, runs=runs)))


def default_caches() -> list[Path]:
    """The run caches a migration covers by default: the configured one (:func:`lib.settings.cache_dir`) and the
    legacy ``<repo>/_runs``, where they exist."""
    caches = [settings.cache_dir(), settings.REPO_ROOT / "_runs"]
    unique = []
    for cache in caches:
        if cache.is_dir() and all(cache.resolve() != c.resolve() for c in unique):
            unique.append(cache)
    return unique


def migrate(results_root: Path | None = None, caches: Iterable[Path] | None = None,
            configs: Iterable[RunConfig] = (), dry_run: bool = False) -> Report:
    """Re-key the committed store ``results_root`` (default :func:`lib.results.results_dir`; ``None`` values of
    both default) and the run caches ``caches`` (default :func:`default_caches`) to this checkout's keys, without
    retraining (see the module's docstring). Returns the :class:`Report`."""
    root = results.results_dir() if results_root is None else results_root
    return Migration(root, default_caches() if caches is None else caches, configs, dry_run).run()
