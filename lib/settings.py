"""Every environment variable ``lib`` reads, in one module, each behind a small typed function.

A function reads the environment when it is called, never at import, so a test that sets a variable
(``monkeypatch.setenv``) or a block run under :func:`override` sees the new value at once. Nothing here
imports the rest of ``lib``: every module may use it.

On/off variables share one vocabulary, case-insensitively: :data:`ON_WORDS` (``1 true yes on``) and
:data:`OFF_WORDS` (``0 false no off none`` and the empty string). Any other word is an error that names
the variable and the accepted words. A folder variable set to the empty string counts as unset.

- ``LIB_CACHE_DIR``: the run cache and the result store (:func:`cache_dir`; default ``~/.cache/lib/runs``)
- ``LIB_DATA_DIR``: a folder searched for data sets first (:func:`data_dir`; default unset)
- ``LIB_TORCHVISION_DIR``: torchvision's folder, searched last (:func:`torchvision_dir`; ``~/.cache/lib/torchvision``)
- ``LIB_CLAIMS_DIR``: where chapters save their claims (:func:`claims_dir`; ``<repo>/_build/claims``)
- ``LIB_CHECKPOINT_EVERY_S``: seconds between checkpoints of a running run (:func:`checkpoint_every_s`; 60)
- ``LIB_BATCHED``: on/off, stack same-shaped runs where that pays (:func:`batched`; on)
- ``LIB_PROGRESS``: on/off, progress bars (:func:`progress`; unset: on at an interactive terminal outside CI)
- ``LIB_DASK_SCHEDULER``: where grids train, a Dask cluster or off (:func:`dask_scheduler`; off: this process)
- ``LIB_RESULTS_DIR``: the committed results store (:func:`results_dir`; default ``<repo>/results``)
- ``LIB_RECORD``: a scale name: record every run and result this process uses into the results store under it
  (:func:`record_scale`; unset: record nothing). ``python -m lib run ... --record`` sets it.
- ``CI``: set to anything non-empty by CI services, no progress bars (:func:`in_ci`; unset)

The same list is :data:`VARIABLES`; README.md ("Environment variables") has it as a table, and a test checks that
both name the same variables.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator


def _repository_root() -> Path:
    """The folder that holds ``params/``, ``book/``, ``results/`` and ``_toc.yml``: the checkout around this package,
    or, in an installed wheel, the copy of them shipped inside it (``lib/_repo``, see pyproject.toml)."""
    checkout = Path(__file__).resolve().parents[1]
    return checkout if (checkout / "_toc.yml").is_file() else Path(__file__).resolve().parent / "_repo"


REPO_ROOT = _repository_root()
#: Whether ``lib`` is an installed wheel (its book files in ``lib/_repo``) rather than a checkout's.
INSTALLED = REPO_ROOT != Path(__file__).resolve().parents[1]

CACHE_DIR = "LIB_CACHE_DIR"
DATA_DIR = "LIB_DATA_DIR"
TORCHVISION_DIR = "LIB_TORCHVISION_DIR"
CLAIMS_DIR = "LIB_CLAIMS_DIR"
CHECKPOINT_EVERY_S = "LIB_CHECKPOINT_EVERY_S"
BATCHED = "LIB_BATCHED"
PROGRESS = "LIB_PROGRESS"
DASK_SCHEDULER = "LIB_DASK_SCHEDULER"
RESULTS_DIR = "LIB_RESULTS_DIR"
RECORD = "LIB_RECORD"
CI = "CI"

#: Every variable read here: name → (what it sets, its default in words).
VARIABLES = {
    CACHE_DIR: ("the run cache and the result store", "`$XDG_CACHE_HOME/lib/runs` or `~/.cache/lib/runs`"),
    DATA_DIR: ("a folder searched for data sets first (after a `root=` argument)", "unset"),
    TORCHVISION_DIR: ("torchvision's folder, searched last; downloads go there", "`~/.cache/lib/torchvision`"),
    CLAIMS_DIR: ("where chapters save their claims", "`<repo>/_build/claims` (installed: `~/.cache/lib/claims`)"),
    CHECKPOINT_EVERY_S: ("seconds between checkpoints of a running run", "`60`"),
    BATCHED: ("on/off: stack same-shaped runs into one model where that pays", "on"),
    PROGRESS: ("on/off: progress bars", "on at an interactive terminal outside CI"),
    DASK_SCHEDULER: ("where grids train: a Dask scheduler, `local:N`, a scheduler file, or off", "off (this process)"),
    RESULTS_DIR: ("the committed results store the book reads recorded scales from", "`<repo>/results`"),
    RECORD: ("a scale name: record every run and result this process uses into the results store", "unset (off)"),
    CI: ("set to anything non-empty (by CI services): no progress bars unless `LIB_PROGRESS` is on", "unset"),
}

ON_WORDS = ("1", "true", "yes", "on")
OFF_WORDS = ("0", "false", "no", "off", "none", "")


class SettingError(ValueError):
    """An environment variable holds a value its setting does not accept; the message names both."""


def _raw(name: str) -> str | None:
    return os.environ.get(name)


def flag(name: str, default: bool | None = None) -> bool | None:
    """The on/off variable ``name``: ``True`` for :data:`ON_WORDS`, ``False`` for :data:`OFF_WORDS` (either
    case, surrounding spaces ignored), ``default`` when it is not set; any other value raises
    :class:`SettingError`."""
    value = _raw(name)
    if value is None:
        return default
    word = value.strip().lower()
    if word in ON_WORDS:
        return True
    if word in OFF_WORDS:
        return False
    raise SettingError(f"{name}={value!r} is neither on ({', '.join(ON_WORDS)}) nor off "
                       f"({', '.join(repr(w) if not w else w for w in OFF_WORDS)}), in any case")


def _folder(name: str) -> Path | None:
    value = _raw(name)
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    """``$LIB_CACHE_DIR``: the run cache (:mod:`lib.runs`) and result store (:mod:`lib.cache`); default the user's
    cache folder, ``$XDG_CACHE_HOME/lib/runs`` or ``~/.cache/lib/runs``, so that every checkout (and an installed
    package) finds the runs another one trained. A path every worker shares when grids train on a cluster."""
    user_cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()
    return _folder(CACHE_DIR) or user_cache / "lib" / "runs"


def data_dir() -> Path | None:
    """``$LIB_DATA_DIR``: a folder :mod:`lib.data` searches for data sets before ``../shared/data``; default
    ``None`` (unset). Set to a path that is not a folder, it is an error naming the variable (never a silent fall
    back to the other folders)."""
    folder = _folder(DATA_DIR)
    if folder is not None and not folder.is_dir():
        raise SettingError(f"{DATA_DIR}={_raw(DATA_DIR)!r} is not a folder"
                           + (" (it is a file)" if folder.exists() else " (no such folder)")
                           + ": point it at the folder that holds the data sets, or unset it to search the others")
    return folder


def torchvision_dir() -> Path:
    """``$LIB_TORCHVISION_DIR``: torchvision's folder, searched last and where it downloads a data set;
    default ``~/.cache/lib/torchvision``."""
    return _folder(TORCHVISION_DIR) or Path.home() / ".cache" / "lib" / "torchvision"


def user_cache_dir() -> Path:
    """The user's cache folder for lib, ``$XDG_CACHE_HOME/lib`` or ``~/.cache/lib``: the parent of the default run
    cache, and where what belongs to this machine rather than to a run is kept (:mod:`lib.precision`'s probes)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "lib"


def claims_dir() -> Path:
    """``$LIB_CLAIMS_DIR``: where chapters save their claims (:mod:`lib.book.claims`); default
    ``<repo>/_build/claims`` (the book build sets it to its build folder's ``claims``), and for an installed package,
    which never writes into itself, ``claims`` in the user's cache folder (``~/.cache/lib/claims``)."""
    if INSTALLED:
        default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "lib" / "claims"
    else:
        default = REPO_ROOT / "_build" / "claims"
    return _folder(CLAIMS_DIR) or default


#: The scales of every chapter's parameters, smallest first (:mod:`lib.params`: ``params/<scale>/``).
SCALES = ("smoke", "cpu", "full", "paper")


def results_dir() -> Path:
    """``$LIB_RESULTS_DIR``: the committed results store (:mod:`lib.results`); default ``<repo>/results``."""
    return _folder(RESULTS_DIR) or REPO_ROOT / "results"


def record_scale() -> str | None:
    """``$LIB_RECORD``: the scale whose folder of the results store this process records into (``None``: unset or
    an off word, record nothing). An unknown scale raises :class:`SettingError`."""
    value = (_raw(RECORD) or "").strip()
    if value.lower() in OFF_WORDS:
        return None
    if value not in SCALES:
        raise SettingError(f"{RECORD}={value!r} is not a scale: one of {', '.join(SCALES)}, or unset")
    return value


def checkpoint_every_s() -> float:
    """``$LIB_CHECKPOINT_EVERY_S``: seconds between checkpoints of a running run, ``0`` or more (``0``: every
    epoch); default 60."""
    value = _raw(CHECKPOINT_EVERY_S)
    if value is None or not value.strip():
        return 60.0
    try:
        seconds = float(value)
    except ValueError:
        seconds = float("nan")
    if not seconds >= 0 or seconds == float("inf"):
        raise SettingError(f"{CHECKPOINT_EVERY_S}={value!r}: write a number of seconds, 0 or more")
    return seconds


def batched() -> bool:
    """``$LIB_BATCHED`` (on/off): the grid runner stacks same-shaped runs into one model where that pays
    (:func:`lib.batched.prefers_batched`); default on."""
    return flag(BATCHED, default=True)


def progress() -> bool | None:
    """``$LIB_PROGRESS`` (on/off): progress bars forced on or off; default ``None`` (unset: on at an
    interactive terminal outside CI, see :func:`lib.train.progress_enabled`)."""
    return flag(PROGRESS, default=None)


def in_ci() -> bool:
    """Whether ``$CI`` is set to anything non-empty (CI services set ``CI=true``); default ``False``."""
    return bool(_raw(CI))


def dask_scheduler() -> str | None:
    """``$LIB_DASK_SCHEDULER``: the Dask cluster grids train on (``tcp://host:8786``, ``local:N`` or a
    scheduler file, see :mod:`lib.cluster`); ``None`` when unset or an off word (``""``, ``none``, ``0``...):
    grids train in this process."""
    return scheduler_spec(_raw(DASK_SCHEDULER))


def scheduler_spec(value: str | None) -> str | None:
    """A scheduler value (``$LIB_DASK_SCHEDULER`` or a ``scheduler=`` argument) as a spec, or ``None`` for
    "this process" (unset or an off word)."""
    if value is None or value.strip().lower() in OFF_WORDS:
        return None
    return value.strip()


def _text(value) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return os.fspath(value) if isinstance(value, os.PathLike) else str(value)


@contextlib.contextmanager
def override(**values) -> Iterator[None]:
    """Set environment variables for a block, then restore the environment exactly as it was.

    ``override(LIB_CACHE_DIR=path, LIB_BATCHED=False, PYTHONPATH=None)``: a value is written as text (a
    bool as ``1``/``0``, a path as its string); ``None`` unsets the variable inside the block. Afterwards
    (also after an exception) a variable that was unset is unset again and every other one has its old
    value. A ``LIB_`` name that is not in :data:`VARIABLES` is refused (a misspelt name would otherwise be
    ignored silently); other names (``PYTHONPATH``) pass. Child processes started inside the block (a
    notebook kernel, a Dask worker) inherit the values."""
    unknown = [name for name in values if name.startswith("LIB_") and name not in VARIABLES]
    if unknown:
        raise SettingError(f"unknown lib setting(s) {', '.join(unknown)}; the settings are {', '.join(VARIABLES)}")
    previous = {name: os.environ.get(name) for name in values}
    try:
        for name, value in values.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = _text(value)
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
