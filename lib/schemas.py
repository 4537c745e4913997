"""The shared vocabulary and the registry of the chapters' parameter schemas, checked before anything runs.

Each chapter's parameters (``params/<chapter>.yaml`` with ``params/<scale>/<chapter>.yaml``, :mod:`lib.params`)
are a pydantic model registered under the chapter's name with :func:`schema`, in the module that builds the
chapter's runs (``lib/studies/<paper>/protocol.py``; :data:`CHAPTER_SCHEMAS` names it). :func:`lib.params.load_params`
validates the parameters with their overrides against it, so a wrong value fails at once, before any data is loaded
or any run trained, with a message that names the key, the value given and what is allowed, e.g. ``max_epochs: -3 —
must be a positive integer``. Unknown keys are errors too (``extra="forbid"``), also inside nested entries (a model
entry of a grid). Every chapter with a parameters file must have a schema.

A new chapter adds its class beside the code that builds its runs, and its module to :data:`CHAPTER_SCHEMAS`::

    from lib.schemas import ChapterParams, PositiveFloat, PositiveInt, Probability, schema

    @schema("my-chapter")
    class MyChapter(ChapterParams):
        n_train: PositiveInt | None   # None = the whole training set
        lr: PositiveFloat
        corruption: list[Probability]

Value types (each fails with the words in quotes): ``PositiveInt`` ("must be a positive integer"),
``NonNegativeInt``, ``Seed``, ``PositiveFloat`` and ``NonNegativeFloat`` (finite: ``.inf`` and ``.nan`` fail),
``Probability`` (in [0, 1]), ``Fraction`` (in (0, 1], e.g. ``stop_train_acc``), ``Decay`` (a learning rate's
factor per epoch, in (0, 1]), ``Epochs`` (1 to :data:`MAX_EPOCHS`), ``Threads`` (0, torch's default, to
:data:`MAX_THREADS`), ``ModelName`` (a model :func:`lib.models.build_model`
builds), ``DatasetName`` (:data:`lib.data.DATASETS` and the synthetic ones), ``RandomizationName``
(:data:`lib.corrupt.RANDOMIZATIONS`), ``NoiseType`` (Theunissen et al.'s three), ``PreprocessingName``,
``OptimizerName``, ``InitName``. Sizes of subsets are checked against the data set with
:func:`check_subset` (in a ``model_validator``), cheaply, from :data:`lib.data.SIZES`.

The same rules guard :class:`lib.train.RunConfig` (:func:`check_run_config`), so code that builds
configurations directly gets the same messages.

Messages: one line per bad key (a single problem is one line in all); an unknown key names the nearest known key
("did you mean max_epochs?"); a number given as text (``'1e-3'``, as papermill's YAML reads ``1e-3``) says so. In a
notebook a :class:`ParamsError` shows as its message alone, not as a traceback.
"""

from __future__ import annotations

import difflib
import importlib
import math
import numbers
import re
import typing
from typing import Annotated, Any, Callable

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, ValidationError
from pydantic_core import PydanticCustomError

SCHEMAS: dict[str, type["ChapterParams"]] = {}


class ParamsError(ValueError):
    """A chapter's parameters do not fit its schema; the message names every bad key, its value and what is allowed.

    Raised in a notebook (a chapter's first cell), it shows as its message, not as a traceback (IPython's
    ``_render_traceback_``)."""

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {line}" if i == 0 else line for i, line in enumerate(str(self).splitlines())]


class UnknownParameter(ParamsError, KeyError):
    """A key that is not a parameter (an override, a papermill parameter); the message suggests the nearest one.
    Also a ``KeyError``, as an unknown override always was."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def nearest(word: Any, choices) -> str | None:
    """The choice closest to ``word`` in spelling (``max_epoch`` → ``max_epochs``), or ``None`` if none is close."""
    found = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return found[0] if found else None


def did_you_mean(word: Any, choices) -> str:
    """`` (did you mean max_epochs?)`` for a near miss, else ``""``."""
    match = nearest(word, choices)
    return f" (did you mean {match}?)" if match else ""


#: Bounds that no chapter's protocol comes near (the papers train at most a few thousand epochs): a value past them is
#: a typo (``max_epochs: 10**12``), refused before anything runs.
MAX_EPOCHS = 100_000
MAX_THREADS = 1024


# --- rules: one predicate and one message per kind of value, shared by the schemas and RunConfig ------------------

def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    """A finite real number (not a bool; ``inf`` and ``nan`` are not numbers a setting can take)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _numeric_text(value: Any) -> bool:
    """Text that reads as a number (``'1e-3'``: papermill's YAML reads ``1e-3`` as a string)."""
    if not isinstance(value, str):
        return False
    try:
        float(value)
    except ValueError:
        return False
    return True


def _constants(module: str) -> dict[str, Any]:
    """Name tables of a lib module (``models``, ``data``, ``corrupt``, ``train``): the module's own values."""
    return vars(importlib.import_module(f"lib.{module}"))


def _known_model(name: Any) -> bool:
    models = _constants("models")
    # every name pattern lib.models compiles (mlp{depth}x{width}, mlp-W1-W2-..., vgg11-divN, ...) and its named models
    patterns = [value for value in models.values() if isinstance(value, re.Pattern)]
    return isinstance(name, str) and (any(p.match(name) for p in patterns) or name in models["NAMED_MODELS"])


def _model_message() -> str:
    return (f"is not a known model: use mlp{{depth}}x{{width}}, mlp-W1-W2-..., vgg11[-divN], or one of "
            f"{sorted(_constants('models')['NAMED_MODELS'])}")


def _datasets() -> tuple[str, ...]:
    data = _constants("data")
    return tuple(data["DATASETS"]) + tuple(data["SYNTHETIC"])


def _randomizations() -> tuple[str, ...]:
    return tuple(_constants("corrupt")["RANDOMIZATIONS"])


def _preprocessings() -> tuple[str, ...]:
    return tuple(_constants("data")["PREPROCESSING"])


def _initializations() -> tuple[str, ...]:
    return tuple(_constants("models")["INITIALIZATIONS"])


def _splits() -> tuple[str, ...]:
    return tuple(_constants("train")["SPLITS"])


NOISE_TYPES = ("label_noise", "gaussian_input", "structured_input")  # Theunissen et al., Algorithms 1-3
OPTIMIZERS = ("sgd", "adam")
LOSSES = ("cross_entropy", "mse")
PRECISIONS = ("fp32", "bf16")
BN_STATISTICS = ("running", "population")  # lib.train.RunConfig.bn_statistics


def _one_of(choices: Callable[[], tuple[str, ...]] | tuple[str, ...]) -> tuple[Callable[[Any], bool], Callable[[], str]]:
    get = choices if callable(choices) else (lambda: choices)
    return (lambda v: isinstance(v, str) and v in get()), (lambda: f"must be one of {', '.join(get())}")


RULES: dict[str, tuple[Callable[[Any], bool], Callable[[], str] | str]] = {
    "positive_int": (lambda v: _is_int(v) and v > 0, "must be a positive integer"),
    "non_negative_int": (lambda v: _is_int(v) and v >= 0, "must be a non-negative integer"),
    "seed": (lambda v: _is_int(v) and v >= 0, "must be a non-negative integer (a seed)"),
    "positive_float": (lambda v: _is_number(v) and v > 0, "must be a positive number"),
    "non_negative_float": (lambda v: _is_number(v) and v >= 0, "must be a number at least 0"),
    "probability": (lambda v: _is_number(v) and 0 <= v <= 1, "must be a probability in [0, 1]"),
    "fraction": (lambda v: _is_number(v) and 0 < v <= 1, "must be a number in (0, 1] (greater than 0, at most 1)"),
    "decay": (lambda v: _is_number(v) and 0 < v <= 1,
              "must be a number in (0, 1] (a factor per epoch: greater than 0, at most 1, which is no decay)"),
    "epochs": (lambda v: _is_int(v) and 0 < v <= MAX_EPOCHS,
               f"must be a positive integer, at most {MAX_EPOCHS:,} epochs"),
    "threads": (lambda v: _is_int(v) and 0 <= v <= MAX_THREADS,
                f"must be a non-negative integer, at most {MAX_THREADS} threads (0: torch's default)"),
    "boolean": (lambda v: isinstance(v, bool), "must be true or false"),
    "model": (_known_model, _model_message),
    "dataset": _one_of(_datasets),
    "randomization": _one_of(_randomizations),
    "noise_type": _one_of(NOISE_TYPES),
    "preprocessing": _one_of(_preprocessings),
    "optimizer": _one_of(OPTIMIZERS),
    "loss": _one_of(LOSSES),
    "precision": _one_of(PRECISIONS),
    "bn_statistics": _one_of(BN_STATISTICS),
    "split": _one_of(_splits),
    "init": _one_of(_initializations),
}


def rule_message(kind: str) -> str:
    message = RULES[kind][1]
    return message() if callable(message) else message


def _checked(kind: str, base: type) -> Any:
    """An ``Annotated`` type that accepts ``base`` and fails with :data:`RULES`' message for ``kind``."""
    ok = RULES[kind][0]

    def check(value: Any) -> Any:
        if not ok(value):
            raise PydanticCustomError(kind, rule_message(kind))
        return value

    return Annotated[base, BeforeValidator(check)]


PositiveInt = _checked("positive_int", int)
NonNegativeInt = _checked("non_negative_int", int)
Seed = _checked("seed", int)
PositiveFloat = _checked("positive_float", float)
NonNegativeFloat = _checked("non_negative_float", float)
Probability = _checked("probability", float)
Fraction = _checked("fraction", float)  # (0, 1]: a training-accuracy threshold, an explained variance
Decay = _checked("decay", float)  # (0, 1]: a learning rate's factor per epoch
Epochs = _checked("epochs", int)  # 1 to MAX_EPOCHS
Threads = _checked("threads", int)  # 0 (torch's default) to MAX_THREADS
ModelName = _checked("model", str)
DatasetName = _checked("dataset", str)
RandomizationName = _checked("randomization", str)
NoiseType = _checked("noise_type", str)
PreprocessingName = _checked("preprocessing", str)
OptimizerName = _checked("optimizer", str)
InitName = _checked("init", str)
BnStatisticsName = _checked("bn_statistics", str)
PrecisionName = _checked("precision", str)


def _located(message: str) -> PydanticCustomError:
    """An error of a check across keys; its message names its own keys (no context: braces stay as written)."""
    return PydanticCustomError("located", message)


def check_subset(dataset: str, n_train: Any, n_test: Any, split: str = "standard", where: str = "") -> None:
    """Fail if ``n_train`` / ``n_test`` ask for more images than ``dataset`` (with ``split``) holds.

    Sizes come from :data:`lib.data.SIZES` (no data is read). ``where`` prefixes the keys in the message
    (e.g. ``models.alexnet.``)."""
    data = _constants("data")
    if dataset not in data["SIZES"]:
        return
    sizes = data["SPLIT_SIZES"].get(split, data["SIZES"][dataset])  # as lib.data.split_sizes
    for key, value, size, part in (("n_train", n_train, sizes[0], "training"), ("n_test", n_test, sizes[1], "test")):
        if _is_int(value) and value > size:
            raise _located(f"{where}{key}: {value!r} — must be at most {size} ({dataset} has {size:,} {part} images"
                           + (f" in the {split} split" if split != "standard" else "") + ")")


def check_run_config(values: dict[str, Any], owner: str = "RunConfig") -> None:
    """Check the fields of a :class:`lib.train.RunConfig` (as a dict) with the schemas' rules; raise
    :class:`ParamsError` naming every bad field, its value and what is allowed. Fields not listed in
    :data:`RUN_CONFIG_RULES` are not checked here."""
    problems = []
    for name, (kind, optional) in RUN_CONFIG_RULES.items():
        if name not in values:
            continue
        value = values[name]
        if value is None and optional:
            continue
        if not RULES[kind][0](value):
            problems.append(f"{name}: {value!r} — {rule_message(kind)}" + (" or null" if optional else "")
                            + _text_hint(value))
    if not problems and all(k in values for k in ("dataset", "n_train", "n_test")):
        try:
            check_subset(values["dataset"], values["n_train"], values["n_test"], values.get("split", "standard"))
        except PydanticCustomError as error:
            problems.append(error.message())
    if problems:
        raise ParamsError(_listed(f"invalid {owner}", problems))


def _listed(header: str, problems: list[str]) -> str:
    """``header: problem`` on one line for one problem; else the header, then one indented line per problem."""
    if len(problems) == 1:
        return f"{header}: {problems[0]}"
    return f"{header}:\n  " + "\n  ".join(problems)


def _text_hint(value: Any) -> str:
    """For a number written as text (``'1e-3'``), a hint that it is text and how to write it as a number; for an
    infinite or NaN number, that it is not one a setting takes."""
    if isinstance(value, float) and not math.isfinite(value):
        return " (a finite number: no setting takes an infinite or NaN value)"
    if not _numeric_text(value):
        return ""
    return f" (that is text, as YAML 1.1 (papermill) reads 1e-3: write {float(value)!r})"


RUN_CONFIG_RULES: dict[str, tuple[str, bool]] = {  # field → (rule, None allowed)
    "dataset": ("dataset", False), "n_train": ("positive_int", True), "n_test": ("positive_int", True),
    "randomization": ("randomization", False), "corruption": ("probability", False), "corrupt_test": ("boolean", False),
    "preprocessing": ("preprocessing", False), "data_seed": ("seed", False), "split": ("split", False),
    "model": ("model", False), "seed": ("seed", False), "init": ("init", False), "optimizer": ("optimizer", False),
    "lr": ("positive_float", False), "momentum": ("probability", False), "lr_decay": ("decay", False),
    "weight_decay": ("non_negative_float", False), "batch_size": ("positive_int", False), "loss": ("loss", False),
    "max_epochs": ("epochs", False), "stop_train_acc": ("fraction", True), "precision": ("precision", False),
    "test_every": ("positive_int", False), "bn_statistics": ("bn_statistics", False),
}


# --- the mechanism ----------------------------------------------------------------------------------------------

class _Typed(BaseModel):
    """Frozen, checked, read by attribute (``P.n_train``, the schema's default where the file is silent).
    ``P["n_train"]``, ``"n_train" in P``, ``P.get(...)`` and ``dict(P)`` read it as the file's mapping, so code
    written against the raw YAML (:mod:`lib.studies.protocols`) reads a typed object unchanged."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def __getitem__(self, key: str) -> Any:
        if key not in type(self).model_fields:
            raise KeyError(f"{type(self).__name__} has no parameter {key!r}; known: {sorted(type(self).model_fields)}")
        return getattr(self, key)

    def keys(self):
        """The keys the parameter file gave (``dict(P)`` is the file's mapping, typed; attributes add defaults)."""
        return [key for key in type(self).model_fields if key in self.model_fields_set]

    def get(self, key: str, default: Any = None) -> Any:
        """The value the parameter file gave for ``key``, else ``default``: for an entry that inherits a chapter-wide
        value unless it sets its own (``m.get("n_test", P.n_test)``). A plain default belongs in the schema."""
        return getattr(self, key) if key in self.model_fields_set else default

    def __contains__(self, key: object) -> bool:
        return key in self.model_fields_set


class ChapterParams(_Typed):
    """Base of every chapter's schema: unknown keys are errors, values are checked, nothing is coerced silently.

    :func:`lib.params.load_params` returns an instance, with :attr:`scale` and :attr:`overridden` set."""

    _scale: str = PrivateAttr("cpu")
    _overridden: tuple[str, ...] = PrivateAttr(())

    @property
    def scale(self) -> str:
        """The scale these parameters were loaded at (``smoke``, ``cpu`` or ``paper``)."""
        return self._scale

    @property
    def overridden(self) -> list[str]:
        """The keys given as overrides, sorted."""
        return list(self._overridden)


class Entry(_Typed):
    """Base of nested entries (a model of a grid): unknown keys are errors there too."""


def schema(chapter: str):
    """Register the decorated class as the schema of ``chapter``'s parameter files."""

    def register(cls: type[ChapterParams]) -> type[ChapterParams]:
        SCHEMAS[chapter] = cls
        return cls

    return register


_MESSAGES = {  # pydantic's words for a constraint, in the book's words
    "greater_than": "must be greater than {gt}",
    "greater_than_equal": "must be at least {ge}",
    "less_than": "must be less than {lt}",
    "less_than_equal": "must be at most {le}",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be a string",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "extra_forbidden": "is not a known parameter",
    "missing": "is required",
    "too_short": "must have at least {min_length} item(s)",
    "none_required": "must be null",
    "literal_error": "must be one of {expected}",
}


def _describe(error: dict) -> str:
    context = error.get("ctx") or {}
    kind = error["type"]
    if kind in ("greater_than",) and context.get("gt") == 0:
        text = "must be positive"
    elif kind in _MESSAGES:
        text = _MESSAGES[kind].format(**context)
    else:
        text = error["msg"][0].lower() + error["msg"][1:]
    return text


_TYPE_TAGS = ("int", "float", "str", "none", "list", "dict", "bool", "constrained-int", "constrained-float",
              "function-before", "function-after", "function-plain", "function-wrap", "tuple")


def _location(parts: tuple) -> str:
    kept = []
    for part in parts:
        text = str(part)
        if text.startswith(("function-", "union[", "nullable[", "lax-or-strict[", "json-or-python[")) or text in _TYPE_TAGS:
            continue
        if text == "[key]":  # a bad key of a mapping: the key itself was already named
            continue
        kept.append(text)
    return ".".join(kept)


def _unwrap(annotation: Any) -> list[Any]:
    """The types an annotation stands for: ``Annotated[X, ...]`` → X, ``X | None`` → X."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin is typing.Union or type(annotation).__name__ == "UnionType":
        return [t for arg in typing.get_args(annotation) if arg is not type(None) for t in _unwrap(arg)]
    return [annotation]


def _fields_at(cls: type, location: list) -> list[str]:
    """The field names of the model found by following ``location`` (field names, mapping keys, list indices) from
    ``cls``; empty where the location is not a model's."""
    current = [cls]
    for part in location:
        following = []
        for annotation in current:
            for kind in _unwrap(annotation):
                origin, args = typing.get_origin(kind), typing.get_args(kind)
                if isinstance(kind, type) and issubclass(kind, BaseModel):
                    if part in kind.model_fields:
                        following.append(kind.model_fields[part].annotation)
                elif origin is dict and args:
                    following.append(args[1])
                elif origin in (list, tuple) and args and isinstance(part, int):
                    following.append(args[0])
        current = following
    return [name for annotation in current for kind in _unwrap(annotation)
            if isinstance(kind, type) and issubclass(kind, BaseModel) for name in kind.model_fields]


def _path(parts: tuple) -> list:
    """An error's location without pydantic's type tags (what :func:`_location` keeps), integers kept as integers."""
    return [part for part in parts if _location((part,)) != "" or part == ""]


def format_errors(chapter: str, error: ValidationError, cls: type | None = None) -> str:
    """The message of a :class:`ParamsError`: one line per problem, each naming the key, the value and what is
    allowed; an unknown key names the nearest known one at its place (with ``cls``, the chapter's schema)."""
    lines = []
    items = error.errors()
    # a union (X | None) reports one error per branch; "must be null" is noise beside the real one
    located = {_location(i["loc"]) for i in items if i["type"] != "none_required"}
    for item in items:
        location = _location(item["loc"])
        if item["type"] == "none_required" and location in located:
            continue
        if item["type"] == "located":  # a cross-field check: its message names its own keys
            lines.append(item["msg"])
            continue
        given = item.get("input")
        shown = "" if item["type"] in ("missing",) else f": {given!r}"
        hint = _text_hint(given) if item["type"] not in ("missing", "extra_forbidden") else ""
        if item["type"] == "extra_forbidden" and cls is not None:
            path = _path(item["loc"])
            hint = did_you_mean(path[-1], _fields_at(cls, path[:-1]))
        lines.append(f"{location}{shown} — {_describe(item)}{hint}")
    unique = list(dict.fromkeys(lines))
    return _listed(f"invalid parameters for {chapter!r}", unique)


def validate(chapter: str, values: dict[str, Any]) -> ChapterParams | None:
    """Check ``values`` against ``chapter``'s schema; raise :class:`ParamsError` naming each bad key.

    Returns the validated model, or ``None`` where the chapter has no schema (a plain page)."""
    cls = schema_of(chapter)
    if cls is None:
        return None
    try:
        return cls.model_validate(values)
    except ValidationError as error:
        raise ParamsError(format_errors(chapter, error, cls)) from None


# --- where each chapter's schema lives ------------------------------------------------------------------------

#: The module that registers each chapter's schema (``@schema(chapter)``), beside the code that builds its runs.
CHAPTER_SCHEMAS = {
    "zhang-randomization": "lib.studies.zhang2017.protocol",
    "zhang-regularization": "lib.studies.zhang2017.protocol",
    "zhang-expressivity": "lib.studies.zhang2017.protocol",
    "zhang-kernels": "lib.studies.zhang2017.protocol",
    "theunissen-noise": "lib.studies.theunissen2019.protocol",
    "masc-decoding": "lib.studies.masc.protocol",
    "synthesis": "lib.studies.synthesis",
    "weng-double-descent": "lib.studies.weng2019.protocol",
    "weng-intrinsic-dimension": "lib.studies.weng2019.protocol",
    "weng-layer-robustness": "lib.studies.weng2019.protocol",
}


def schema_of(chapter: str) -> type[ChapterParams] | None:
    """The schema class of ``chapter`` (its module imported on first use), or ``None`` for a plain page."""
    if chapter not in SCHEMAS and chapter in CHAPTER_SCHEMAS:
        importlib.import_module(CHAPTER_SCHEMAS[chapter])
        if chapter not in SCHEMAS:
            raise ParamsError(f"{CHAPTER_SCHEMAS[chapter]} does not register a schema for {chapter!r} "
                              f"(@schema({chapter!r}) on its class)")
    return SCHEMAS.get(chapter)


def all_schemas() -> dict[str, type[ChapterParams]]:
    """Every chapter's schema, by chapter."""
    return {chapter: schema_of(chapter) for chapter in CHAPTER_SCHEMAS}


# --- vocabulary the chapters' schemas share ---------------------------------------------------------------------

NonEmpty = Field(min_length=1)


def _must_include(values, required, key: str, why: str) -> None:
    """Fail unless the list ``values`` holds every value of ``required`` (what a figure needs)."""
    missing = [v for v in required if v not in values]
    if missing:
        raise _located(f"{key}: {list(values)!r} — must include {', '.join(map(repr, missing))} ({why})")


def _distinct(values, key: str) -> None:
    """Fail if the list ``values`` repeats a value (a grid that would train, or count, one setting twice)."""
    repeated = sorted({v for v in values if list(values).count(v) > 1}, key=str)
    if repeated:
        raise _located(f"{key}: {list(values)!r} — must not repeat {', '.join(map(repr, repeated))}")


def _must_name(value: Any, names, key: str, what: str) -> None:
    if value not in names:
        raise _located(f"{key}: {value!r} — must be one of {what}: {', '.join(map(str, names)) or '(none)'}")


