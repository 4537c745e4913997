"""Chapter parameters: one YAML file per chapter per scale, ``params/<scale>/<chapter>.yaml``.

Scales (same code, different sizes):

- ``smoke``: every chapter in under 60 s on 2 CPU cores (tests and CI);
- ``cpu``: the default book, every chapter under 10 minutes on 2 cores, every phenomenon visible;
- ``paper``: the paper's own protocol, meant for a GPU.

A chapter's first cell holds ``scale`` and ``overrides`` (papermill injects both); the chapter
then calls :func:`load_params`, which validates every override against the file so a typo fails
loudly instead of being ignored.
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


def load_params(chapter: str, scale: str = "cpu", overrides: dict | None = None) -> Params:
    """Read ``params/<scale>/<chapter>.yaml`` and apply ``overrides`` (only keys the file defines)."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {SCALES}")
    path = params_path(chapter, scale)
    if not path.is_file():
        raise FileNotFoundError(f"no parameters for chapter {chapter!r} at scale {scale!r}: {path} does not exist")
    values = yaml.safe_load(path.read_text()) or {}
    unknown = set(overrides or {}) - set(values)
    if unknown:
        raise KeyError(f"override(s) {sorted(unknown)} are not parameters of {chapter!r}; known: {sorted(values)}")
    values = copy.deepcopy(values)
    values.update(overrides or {})
    from lib import schemas

    schemas.validate(chapter, values)  # a wrong value fails here, before anything is loaded or trained
    values["scale"] = scale
    values["overridden"] = sorted(overrides or {})
    return Params(values)
