"""Schemas of the chapters' parameter files (``params/<scale>/<chapter>.yaml``), checked before anything runs.

Each chapter's parameters are a pydantic model registered under the chapter's name with :func:`schema`;
:func:`lib.params.load_params` validates the file with its overrides against it, so a wrong value fails at once,
before any data is loaded or any run trained, with a message that names the key, the value given and what is
allowed, e.g. ``max_epochs: -3 — must be a positive integer``. Unknown keys are errors too (``extra="forbid"``),
also inside nested entries (a model entry of a grid).

A new chapter adds its class here::

    @schema("my-chapter")
    class MyChapter(ChapterParams):
        n_train: PositiveInt | None   # None = the whole training set
        lr: PositiveFloat
        corruption: list[Probability]
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

SCHEMAS: dict[str, type["ChapterParams"]] = {}

PositiveInt = Annotated[int, Field(gt=0, strict=True)]
NonNegativeInt = Annotated[int, Field(ge=0, strict=True)]
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
Probability = Annotated[float, Field(ge=0, le=1)]
Seed = Annotated[int, Field(ge=0, strict=True)]


class ParamsError(ValueError):
    """A chapter's parameters do not fit its schema; the message names every bad key, its value and what is allowed."""


class ChapterParams(BaseModel):
    """Base of every chapter's schema: unknown keys are errors, values are checked, nothing is coerced silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Entry(BaseModel):
    """Base of nested entries (a model of a grid): unknown keys are errors there too."""

    model_config = ConfigDict(extra="forbid", frozen=True)


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
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "string_type": "must be a string",
    "list_type": "must be a list",
    "dict_type": "must be a mapping",
    "extra_forbidden": "is not a known parameter",
    "missing": "is required",
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


def format_errors(chapter: str, error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"] if not str(part).startswith(("function-", "union[")))
        location = ".".join(p for p in location.split(".") if p not in ("int", "float", "str", "none", "list", "dict",
                                                                        "bool", "constrained-int", "constrained-float"))
        given = item.get("input")
        shown = "" if item["type"] in ("missing",) else f": {given!r}"
        lines.append(f"{location}{shown} — {_describe(item)}")
    unique = list(dict.fromkeys(lines))
    return f"invalid parameters for {chapter!r}:\n  " + "\n  ".join(unique)


def validate(chapter: str, values: dict[str, Any]) -> ChapterParams | None:
    """Check ``values`` against ``chapter``'s schema; raise :class:`ParamsError` naming each bad key.

    Returns the validated model, or ``None`` where the chapter has no schema (a plain page)."""
    cls = SCHEMAS.get(chapter)
    if cls is None:
        return None
    try:
        return cls.model_validate(values)
    except ValidationError as error:
        raise ParamsError(format_errors(chapter, error)) from None


class DoubleDescentTraining(Entry):
    """How one side of the threshold trains (lib.double_descent.TrainSpec fields)."""

    epochs: PositiveInt
    lr: PositiveFloat
    optimizer: str = "sgd"
    momentum: Probability = 0.95
    batch_size: PositiveInt | None = None      # null: full batch
    lr_decay: Annotated[float, Field(gt=0, le=1)] = 1.0
    lr_decay_every: NonNegativeInt = 0
    stop_at_zero_error: bool = False
    loss_on: str = "linear"                    # "linear" (Belkin) or "softmax" (Weng's code)


class DoubleDescentWeng(Entry):
    widths: list[PositiveInt]
    training: DoubleDescentTraining


class DoubleDescentRFF(Entry):
    n_train: PositiveInt
    features: list[PositiveInt]
    sigma: PositiveFloat
    seed: Seed


@schema("weng-double-descent")
class WengDoubleDescent(ChapterParams):
    n_train: PositiveInt                # Belkin et al.: 4,000 MNIST images, sampled once
    n_test: PositiveInt | None          # null: the full 10,000-image test set
    split_seed: Seed
    seeds: list[Seed]                   # repetitions (Belkin et al.: 5), averaged
    widths: list[PositiveInt]           # hidden units H, increasing
    training: DoubleDescentTraining     # decay and stop at zero error apply below the threshold n K only
    chain_epochs: PositiveInt           # the reuse chain's per-net budget (Belkin: to zero error or 6,000 epochs)
    label_noise: Probability            # fraction of training labels redrawn in the label-noise variant
    noise_seed: Seed
    weng: DoubleDescentWeng
    rff: DoubleDescentRFF
    torch_threads: NonNegativeInt       # 0: torch's default
