"""Chapter parameters: the paper's protocol in ``params/<chapter>.yaml``, and what each scale changes in
``params/<scale>/<chapter>.yaml``.

Scales (same code, different sizes):

- ``smoke``: every chapter in under 60 s on 2 CPU cores (tests and CI);
- ``cpu``: the default book, every chapter under 10 minutes on 2 cores, every phenomenon visible;
- ``full``: the papers' own data sizes with CPU-affordable choices (fewer seeds or levels, an epoch
  cap), run once on a CPU and recorded in the committed results store (:mod:`lib.results`); a chapter without a
  ``params/full/`` file is at ``full`` what it is at ``cpu`` (its ``cpu`` scale already uses what fits);
- ``paper``: the paper's own protocol, meant for a GPU: the base file as it is.

A scale file holds only what differs from the base: its mappings are merged into the base's key by key, at every
depth, and any other value (a number, a list) replaces the base's. A mapping tagged ``!replace`` replaces the base's
whole instead (a grid with fewer models than the paper's). So what a scale changes is read in one place and nothing
is written three times. A scale file may not add a top-level key the base does not have.

A chapter's first cell holds ``scale`` and ``overrides`` (papermill injects both); the chapter then calls
:func:`load_params`, which checks every override against the parameters (a typo fails loudly instead of being
ignored) and validates the result against the chapter's schema (:mod:`lib.schemas`: types, ranges, known names),
so a bad value fails before anything runs. It returns the schema's typed, frozen object: attributes, the
schema's defaults applied.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml

from lib.settings import REPO_ROOT
from lib.settings import SCALES  # noqa: F401 (lib.params.SCALES: the scales are settings, $LIB_RECORD names one)

PARAMS_DIR = REPO_ROOT / "params"
#: A scale whose chapter has no file of its own reads this scale's file instead.
SCALE_FALLBACK = {"full": "cpu"}
SCALE_NOTES = {  # what each scale is, in a few words (chapters' opening boxes say it)
    "smoke": "tiny subsets that test the whole pipeline; nothing is expected to reproduce",
    "cpu": "subsets on which every phenomenon is visible, minutes per chapter on 2 CPU cores",
    "full": "the papers' own data sizes, trained once on a 2-core CPU and recorded in the results store",
    "paper": "the paper's own protocol, meant for a GPU",
}


def base_path(chapter: str) -> Path:
    """The paper's protocol for ``chapter``: ``params/<chapter>.yaml``."""
    return PARAMS_DIR / f"{chapter}.yaml"


def scale_path(chapter: str, scale: str) -> Path:
    """What ``scale`` changes for ``chapter``: ``params/<scale>/<chapter>.yaml`` (may not exist: nothing changes), or,
    where that file does not exist and the scale has a fallback (:data:`SCALE_FALLBACK`: ``full`` reads ``cpu``),
    the fallback's file."""
    path = PARAMS_DIR / scale / f"{chapter}.yaml"
    if not path.is_file() and scale in SCALE_FALLBACK:
        return scale_path(chapter, SCALE_FALLBACK[scale])
    return path


def own_scale_file(chapter: str, scale: str) -> bool:
    """Whether ``chapter`` has a file of its own at ``scale`` (not a fallback's)."""
    return (PARAMS_DIR / scale / f"{chapter}.yaml").is_file()


def params_files(chapter: str, scale: str) -> list[Path]:
    """The files ``chapter``'s parameters at ``scale`` are read from, base first (empty: a plain page)."""
    return [path for path in (base_path(chapter), scale_path(chapter, scale)) if path.is_file()]


def has_params(chapter: str) -> bool:
    return base_path(chapter).is_file()


def chapters_with_params() -> list[str]:
    """Every chapter that has a parameters file (whatever is in ``params/``)."""
    return sorted({path.stem for path in PARAMS_DIR.glob("*.yaml")}
                  | {path.stem for scale in SCALES for path in (PARAMS_DIR / scale).glob("*.yaml")})


class Replace(dict):
    """A mapping of a scale file tagged ``!replace``: it replaces the base's mapping whole instead of merging."""


class _Loader(yaml.SafeLoader):
    """YAML's safe loader, plus the ``!replace`` tag on a mapping; ``1e-3`` is a number (YAML 1.2's floats: PyYAML's
    1.1 resolver takes a float without a dot for text), and a key repeated in one mapping is an error (YAML would
    keep the last one silently)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.setdefault(key, key_node.start_mark)
                except TypeError:  # an unhashable key: YAML's own error follows
                    continue
                if first is not key_node.start_mark:
                    raise yaml.constructor.ConstructorError(
                        "while reading a mapping", node.start_mark,
                        f"key {key!r} appears twice (first on line {first.line + 1}); each key may be given once",
                        key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


_Loader.add_constructor("!replace", lambda loader, node: Replace(loader.construct_mapping(node, deep=True)))
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(r"""^(?:
     [-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""", re.X), list("-+0123456789."))


def load_yaml(path: Path) -> Any:
    """A parameters file (``!replace`` mappings as :class:`Replace`; ``1e-3`` a number; a repeated key an error)."""
    return yaml.load(Path(path).read_text(), Loader=_Loader)


def parse_value(text: str) -> Any:
    """A value given on a command line (``-p NAME VALUE``) as a parameters file reads it: numbers (``1e-3`` too),
    lists, mappings, null, true/false; text that is not YAML is the text itself. A mapping that repeats a key raises
    :class:`lib.schemas.ParamsError`."""
    from lib import schemas

    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.constructor.ConstructorError as error:
        raise schemas.ParamsError(f"{text!r}: {error.problem}") from None
    except yaml.YAMLError:
        return text


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def merge(base: Any, changes: Any) -> Any:
    """``base`` with a scale file's ``changes``: mappings merge key by key at every depth, a :class:`Replace`
    mapping and every other value replace the base's."""
    if isinstance(changes, Replace) or not (isinstance(base, dict) and isinstance(changes, dict)):
        return _plain(changes)
    merged = dict(base)
    for key, value in changes.items():
        merged[key] = merge(base[key], value) if key in base else _plain(value)
    return merged


def _read(path: Path) -> dict:
    from lib import schemas

    try:
        values = load_yaml(path) or {}
    except yaml.YAMLError as error:  # one line: the file, the line, the problem
        mark, problem = getattr(error, "problem_mark", None), getattr(error, "problem", None)
        where = f"{path}, line {mark.line + 1}," if mark is not None else str(path)
        raise schemas.ParamsError(f"{where} is not valid YAML: {problem or error}") from None
    if not isinstance(values, dict):
        raise schemas.ParamsError(f"{path} must hold a mapping of parameter names to values, not {type(values).__name__}")
    return values


def raw_params(chapter: str, scale: str = "cpu") -> dict:
    """The merged mapping of ``chapter``'s parameters at ``scale`` (base, then the scale's keys), unvalidated."""
    from lib import schemas

    if scale not in SCALES:
        raise schemas.ParamsError(f"unknown scale {scale!r}{schemas.did_you_mean(scale, SCALES)}; "
                                  f"choose one of {', '.join(SCALES)}")
    base = base_path(chapter)
    if not base.is_file():
        raise FileNotFoundError(f"no parameters for chapter {chapter!r}: {base} does not exist")
    values = _read(base)
    overlay = scale_path(chapter, scale)
    if overlay.is_file():
        changes = _read(overlay)
        unknown = sorted(set(changes) - set(values))
        if unknown:
            raise schemas.ParamsError(f"{overlay} sets {', '.join(map(str, unknown))}, which the base {base} does not "
                                      f"have{schemas.did_you_mean(unknown[0], values)}; known: {', '.join(values)}")
        values = merge(values, changes)
    return values


def load_params(chapter: str, scale: str = "cpu", overrides: dict | None = None):
    """``chapter``'s parameters at ``scale`` with ``overrides`` (only keys the parameters have), validated: the
    chapter's schema object (:mod:`lib.schemas`), typed and frozen, its defaults applied, with ``.scale`` and
    ``.overridden`` set.

    Raises :class:`lib.schemas.ParamsError` (a ``ValueError``) naming each bad key, its value and what is
    allowed; ``ValueError`` for an unknown scale; ``FileNotFoundError`` for a missing base file;
    :class:`lib.schemas.UnknownParameter` (a ``ParamsError`` and a ``KeyError``) for an override of a key the
    parameters do not have, naming the nearest one. Nothing is loaded or trained before these checks."""
    from lib import schemas

    values = raw_params(chapter, scale)
    unknown = sorted(set(overrides or {}) - set(values), key=str)
    if unknown:
        raise schemas.UnknownParameter(
            "; ".join(f"override {key}: not a parameter of {chapter!r}{schemas.did_you_mean(key, values)}"
                      for key in unknown) + f" (its parameters: {', '.join(values)})")
    values = copy.deepcopy(values)
    values.update(copy.deepcopy(overrides or {}))
    model = schemas.validate(chapter, values)  # a wrong value fails here, before anything is loaded or trained
    if model is None:
        raise schemas.ParamsError(f"chapter {chapter!r} has parameters ({base_path(chapter)}) but no schema: register "
                                  f"one with @lib.schemas.schema({chapter!r}) beside the code that builds its runs "
                                  f"and name its module in lib.schemas.CHAPTER_SCHEMAS")
    model._scale = scale
    model._overridden = tuple(sorted(overrides or {}))
    return model
