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


class ExpressivityDepthK(Entry):
    n: PositiveInt                  # points (the first n of the chapter's MNIST subset)
    groups: list[PositiveInt]       # g: depth k = g + 3 linear layers


class ExpressivitySGD(Entry):
    n_train: PositiveInt
    generous_model: str             # a lib.models name far larger than the construction (e.g. mlp1x512); the chapter
                                    # adds the 784-H-10 MLP with the fewest weights >= 2n + d
    lr: PositiveFloat
    lr_decay: PositiveFloat
    max_epochs: PositiveInt
    batch_size: PositiveInt


@schema("zhang-expressivity")
class ZhangExpressivity(ChapterParams):
    dataset: str
    sizes: list[PositiveInt]        # n of Theorem 1's fits (nested subsets of one random-label subset)
    data_seed: Seed
    projection_seed: Seed
    best_of_draws: PositiveInt      # random directions tried by the best_of projection
    bias_positions: list[Annotated[float, Field(gt=0, lt=1)]]   # θ of b_i = x_{i-1} + θ h_i, compared at max n
    sv_iterations: PositiveInt      # power-iteration steps of the σ_max / σ_min estimates
    svd_max_n: PositiveInt          # exact singular values (full SVD) up to this n
    exact_n: PositiveInt            # n of the exact rational (Fraction) solve
    depth_k: ExpressivityDepthK
    sgd: ExpressivitySGD


class _SubspaceRuns(Entry):
    """One network's subspace runs in the intrinsic-dimension chapter."""

    model: str
    n_train: PositiveInt | None          # None = all 60,000 training images
    n_test: PositiveInt | None = None    # None = all 10,000 test images
    batch_size: PositiveInt
    lr: PositiveFloat                    # Adam's learning rate for θ_d
    epochs: PositiveInt                  # epochs per subspace run (all trained; the last one is reported)
    d: list[PositiveInt]
    seeds: list[Seed]
    projection: str = "auto"
    direct_lr: PositiveFloat = 0.001     # Adam's learning rate of the directly trained reference
    direct_epochs: PositiveInt = 10


class _MnistRuns(_SubspaceRuns):
    long_d: PositiveInt | None = None    # one d trained for long_epochs, to show what the epoch cut costs
    long_epochs: PositiveInt | None = None


class _EssayRuns(_SubspaceRuns):
    models: list[str]
    model: str = ""


class _ShuffledRuns(Entry):
    model: str
    n_train: list[PositiveInt]           # subset sizes whose labels are all shuffled
    n_test: PositiveInt = 1000
    batch_size: PositiveInt
    lr: PositiveFloat
    epochs: PositiveInt
    d: list[PositiveInt]
    seed: Seed
    criterion: Probability               # the training accuracy that counts as memorized


@schema("weng-intrinsic-dimension")
class WengIntrinsicDimension(ChapterParams):
    torch_threads: PositiveInt | None    # None = torch's default
    data_seed: Seed
    mnist: _MnistRuns
    essay: _EssayRuns
    shuffled: _ShuffledRuns
    lenet: _SubspaceRuns | None          # None = not trained at this scale (the paper's values are shown)
