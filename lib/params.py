"""Chapter parameters: one YAML file per chapter per scale, ``params/<scale>/<chapter>.yaml``.

Scales (same code, different sizes):

- ``smoke``: every chapter in under 60 s on 2 CPU cores (tests and CI);
- ``cpu``: the default book, every chapter under 10 minutes on 2 cores, every phenomenon visible;
- ``paper``: the paper's own protocol, meant for a GPU.

A chapter's first cell holds ``scale`` and ``overrides`` (papermill injects both); the chapter
then calls :func:`load_params`, which checks every override against the file (a typo fails
loudly instead of being ignored) and validates the result against the chapter's schema
(:mod:`lib.schemas`: types, ranges, known names), so a bad value fails before anything runs.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

PARAMS_DIR = Path(__file__).resolve().parents[1] / "params"
SCALES = ("smoke", "cpu", "paper")
SCALE_NOTES = {  # what each scale is, in a few words (chapters' opening boxes say it)
    "smoke": "tiny subsets that test the whole pipeline; nothing is expected to reproduce",
    "cpu": "subsets on which every phenomenon is visible, minutes per chapter on 2 CPU cores",
    "paper": "the paper's own protocol, meant for a GPU",
}


class Params(dict):
    """A dict of chapter parameters whose keys also read as attributes (``P.n_train``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"no parameter {name!r}; known: {sorted(self)}") from None


def params_path(chapter: str, scale: str) -> Path:
    return PARAMS_DIR / scale / f"{chapter}.yaml"


def chapters_with_params() -> list[str]:
    """Every chapter that has a parameters file at some scale (whatever is in ``params/``)."""
    return sorted({path.stem for scale in SCALES for path in (PARAMS_DIR / scale).glob("*.yaml")})


def load_params(chapter: str, scale: str = "cpu", overrides: dict | None = None) -> Params:
    """Read ``params/<scale>/<chapter>.yaml``, apply ``overrides`` (only keys the file defines) and
    validate the result against the chapter's schema (:mod:`lib.schemas`).

    Raises :class:`lib.schemas.ParamsError` (a ``ValueError``) naming each bad key, its value and what is
    allowed; ``ValueError`` for an unknown scale; ``FileNotFoundError`` for a missing file; ``KeyError``
    for an override of a key the file does not have. Nothing is loaded or trained before these checks."""
    from lib import schemas

    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    path = params_path(chapter, scale)
    if not path.is_file():
        raise FileNotFoundError(f"no parameters for chapter {chapter!r} at scale {scale!r}: {path} does not exist")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise schemas.ParamsError(f"{path} is not valid YAML: {error}") from None
    if not isinstance(values, dict):
        raise schemas.ParamsError(f"{path} must hold a mapping of parameter names to values, not {type(values).__name__}")
    unknown = set(overrides or {}) - set(values)
    if unknown:
        raise KeyError(f"override(s) {sorted(unknown)} are not parameters of {chapter!r}; known: {sorted(values)}")
    values = copy.deepcopy(values)
    values.update(copy.deepcopy(overrides or {}))
    if chapter not in schemas.SCHEMAS:
        raise schemas.ParamsError(f"chapter {chapter!r} has parameters ({path}) but no schema: add "
                                  f"@schema({chapter!r}) class ...(ChapterParams) at the end of lib/schemas.py")
    schemas.validate(chapter, values)  # a wrong value fails here, before anything is loaded or trained
    values["scale"] = scale
    values["overridden"] = sorted(overrides or {})
    return Params(values)
