"""Schemas of the chapters' parameter files (``params/<scale>/<chapter>.yaml``), checked before anything runs.

Each chapter's parameters are a pydantic model registered under the chapter's name with :func:`schema`;
:func:`lib.params.load_params` validates the file with its overrides against it, so a wrong value fails at once,
before any data is loaded or any run trained, with a message that names the key, the value given and what is
allowed, e.g. ``max_epochs: -3 — must be a positive integer``. Unknown keys are errors too (``extra="forbid"``),
also inside nested entries (a model entry of a grid). Every chapter with a parameters file must have a schema.

A new chapter adds its class here::

    @schema("my-chapter")
    class MyChapter(ChapterParams):
        n_train: PositiveInt | None   # None = the whole training set
        lr: PositiveFloat
        corruption: list[Probability]

Value types (each fails with the words in quotes): ``PositiveInt`` ("must be a positive integer"),
``NonNegativeInt``, ``Seed``, ``PositiveFloat``, ``NonNegativeFloat``, ``Probability`` (in [0, 1]),
``Fraction`` (in (0, 1], e.g. ``stop_train_acc``), ``ModelName`` (a model :func:`lib.models.build_model`
builds), ``DatasetName`` (:data:`lib.data.DATASETS` and the synthetic ones), ``RandomizationName``
(:data:`lib.corrupt.RANDOMIZATIONS`), ``NoiseType`` (Theunissen et al.'s three), ``PreprocessingName``,
``OptimizerName``, ``InitName``. Sizes of subsets are checked against the data set with
:func:`check_subset` (in a ``model_validator``), cheaply, from :data:`lib.data.SIZES`.

The same rules guard :class:`lib.train.RunConfig` (:func:`check_run_config`), so code that builds
configurations directly gets the same messages.
"""

from __future__ import annotations

import ast
import functools
import numbers
import re
from pathlib import Path
from typing import Annotated, Any, Callable

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

SCHEMAS: dict[str, type["ChapterParams"]] = {}


class ParamsError(ValueError):
    """A chapter's parameters do not fit its schema; the message names every bad key, its value and what is allowed."""


# --- rules: one predicate and one message per kind of value, shared by the schemas and RunConfig ------------------

def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _constants(module: str) -> dict[str, Any]:
    """Name tables of a lib module (``models``, ``data``, ``corrupt``, ``train``): its live values if it is
    imported already, else read from its source without importing it (they import torch, seconds on a busy
    machine, and a bad parameter must fail at once)."""
    import sys

    live = sys.modules.get(f"lib.{module}")
    return vars(live) if live is not None else _source_constants(module)


@functools.lru_cache(maxsize=None)
def _source_constants(module: str) -> dict[str, Any]:
    """The literal assignments of ``lib/<module>.py`` (dict keys for dicts, the pattern of ``re.compile``)."""
    source = Path(__file__).with_name(f"{module}.py")
    values: dict[str, Any] = {}
    for node in ast.parse(source.read_text()).body:
        target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else (
            node.target if isinstance(node, ast.AnnAssign) else None)
        if not isinstance(target, ast.Name) or node.value is None:
            continue
        name, value = target.id, node.value
        if isinstance(value, ast.Dict):  # a literal dict, or the keys of one whose values are code
            try:
                values[name] = ast.literal_eval(value)
            except ValueError:
                values[name] = tuple(ast.literal_eval(k) for k in value.keys if isinstance(k, ast.Constant))
        elif isinstance(value, ast.Call) and getattr(value.func, "attr", "") == "compile" and value.args:
            values[name] = re.compile(ast.literal_eval(value.args[0]))
        else:
            try:
                values[name] = ast.literal_eval(value)
            except ValueError:
                continue
    return values


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
ModelName = _checked("model", str)
DatasetName = _checked("dataset", str)
RandomizationName = _checked("randomization", str)
NoiseType = _checked("noise_type", str)
PreprocessingName = _checked("preprocessing", str)
OptimizerName = _checked("optimizer", str)
InitName = _checked("init", str)
BnStatisticsName = _checked("bn_statistics", str)


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
            problems.append(f"{name}: {value!r} — {rule_message(kind)}" + (" or null" if optional else ""))
    if not problems and all(k in values for k in ("dataset", "n_train", "n_test")):
        try:
            check_subset(values["dataset"], values["n_train"], values["n_test"], values.get("split", "standard"))
        except PydanticCustomError as error:
            problems.append(error.message())
    if problems:
        raise ParamsError(f"invalid {owner}:\n  " + "\n  ".join(problems))


RUN_CONFIG_RULES: dict[str, tuple[str, bool]] = {  # field → (rule, None allowed)
    "dataset": ("dataset", False), "n_train": ("positive_int", True), "n_test": ("positive_int", True),
    "randomization": ("randomization", False), "corruption": ("probability", False), "corrupt_test": ("boolean", False),
    "preprocessing": ("preprocessing", False), "data_seed": ("seed", False), "split": ("split", False),
    "model": ("model", False), "seed": ("seed", False), "init": ("init", False), "optimizer": ("optimizer", False),
    "lr": ("positive_float", False), "momentum": ("probability", False), "lr_decay": ("positive_float", False),
    "weight_decay": ("non_negative_float", False), "batch_size": ("positive_int", False), "loss": ("loss", False),
    "max_epochs": ("positive_int", False), "stop_train_acc": ("fraction", True), "precision": ("precision", False),
    "test_every": ("positive_int", False), "bn_statistics": ("bn_statistics", False),
}


# --- the mechanism ----------------------------------------------------------------------------------------------

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


def format_errors(chapter: str, error: ValidationError) -> str:
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


# --- the chapters' schemas (a new chapter appends its own class below) -----------------------------------------

NonEmpty = Field(min_length=1)


def _must_name(value: Any, names, key: str, what: str) -> None:
    if value not in names:
        raise _located(f"{key}: {value!r} — must be one of {what}: {', '.join(map(str, names)) or '(none)'}")


class ZhangModel(Entry):
    """One architecture of Zhang et al.'s Figure 1 grid (keyed by its model name)."""

    lr: PositiveFloat
    n_train: PositiveInt | None
    lr_decay: PositiveFloat
    corruption_levels: Annotated[list[Probability], NonEmpty]


class ZhangDataSizes(Entry):
    """The data-size panel: true-label runs of these models on growing subsets."""

    models: Annotated[list[ModelName], NonEmpty]
    sizes: Annotated[list[PositiveInt], NonEmpty]


@schema("zhang-randomization")
class ZhangRandomization(ChapterParams):
    """Zhang et al. 2017, Figure 1: label-corruption grid per model and the pixel randomizations."""

    dataset: DatasetName
    n_test: PositiveInt | None
    batch_size: PositiveInt
    max_epochs: PositiveInt
    stop_train_acc: Fraction | None
    test_every: PositiveInt
    seed: Seed
    data_seed: Seed
    models: Annotated[dict[ModelName, ZhangModel], NonEmpty]
    loss_curve_model: ModelName
    data_sizes: ZhangDataSizes

    @model_validator(mode="after")
    def _consistent(self):
        _must_name(self.loss_curve_model, list(self.models), "loss_curve_model", "the models")
        for i, name in enumerate(self.data_sizes.models):
            _must_name(name, list(self.models), f"data_sizes.models.{i}", "the models")
        for n in self.data_sizes.sizes:
            check_subset(self.dataset, n, None, where="data_sizes.sizes.")
        check_subset(self.dataset, None, self.n_test)
        for name, entry in self.models.items():
            check_subset(self.dataset, entry.n_train, None, where=f"models.{name}.")
        return self


class TheunissenFigure1(Entry):
    model: ModelName
    lr: PositiveFloat
    max_epochs: PositiveInt
    stop_train_acc: Fraction | None


class TheunissenFigure4(Entry):
    model: ModelName
    dataset: DatasetName
    corruption: Probability
    n_train: PositiveInt | None
    max_epochs: PositiveInt
    stop_train_acc: Fraction | None


@schema("theunissen-noise")
class TheunissenNoise(ChapterParams):
    """Theunissen, Davel & Barnard 2019, Appendix A: 10x512 MLPs under label, Gaussian and structured noise."""

    datasets: Annotated[list[DatasetName], NonEmpty]
    noise_types: Annotated[list[NoiseType], NonEmpty]
    corruption_levels: Annotated[list[Probability], NonEmpty]
    n_train: PositiveInt | None
    n_test: PositiveInt | None
    data_seed: Seed
    model: ModelName
    init: InitName
    lr: PositiveFloat
    batch_size: PositiveInt
    max_epochs: PositiveInt
    stop_train_acc: Fraction | None
    test_every: PositiveInt
    seeds: Annotated[list[Seed], NonEmpty]
    enough: Fraction | None
    fit_threshold: Probability
    probe_chunk: PositiveInt
    figure1: TheunissenFigure1
    figure4: TheunissenFigure4

    @model_validator(mode="after")
    def _consistent(self):
        for dataset in self.datasets:
            check_subset(dataset, self.n_train, self.n_test, split="theunissen")
        check_subset(self.figure4.dataset, self.figure4.n_train, None, split="theunissen", where="figure4.")
        return self


class MascModel(Entry):
    """One model entry of the MASC grid: architecture, data, optimizer and stopping criterion (section 3.1, A.2)."""

    dataset: DatasetName
    model: ModelName
    preprocessing: PreprocessingName
    optimizer: OptimizerName
    lr: PositiveFloat
    momentum: Probability
    batch_size: PositiveInt
    n_train: PositiveInt | None
    max_epochs: PositiveInt
    stop_train_acc: Fraction | None
    corruption_levels: Annotated[list[Probability], NonEmpty] | None = None  # None: the chapter's levels
    paper: Annotated[list[str], NonEmpty]  # the paper's names: architecture, data set, optimizer


class MascDataSizes(Entry):
    """The data-size panel: the clean model on growing subsets, and MASC on the raw input at corruption ``p``."""

    model: str
    p: Probability
    sizes: Annotated[list[PositiveInt], NonEmpty]
    input_sizes: Annotated[list[PositiveInt], NonEmpty]


@schema("masc-decoding")
class MascDecoding(ChapterParams):
    """MASC ("Decoding generalization from memorization"): the grid of models × corruption degrees × seeds."""

    n_test: PositiveInt | None
    seeds: Annotated[list[Seed], NonEmpty]
    data_seed: Seed
    test_every: PositiveInt
    corruption_levels: Annotated[list[Probability], NonEmpty]
    control_levels: list[Probability]
    variances: Annotated[list[Fraction], NonEmpty]
    variance_model: str
    decode_seed_only: Seed | None
    torch_threads: PositiveInt | None
    models: Annotated[dict[str, MascModel], NonEmpty]
    extra_models: dict[str, MascModel]
    optimizer_pairs: list[Annotated[list[str], Field(min_length=2, max_length=2)]]
    data_sizes: MascDataSizes

    @model_validator(mode="after")
    def _consistent(self):
        names = [*self.models, *self.extra_models]
        _must_name(self.data_sizes.model, list(self.models), "data_sizes.model", "the models")
        dataset = self.models[self.data_sizes.model].dataset
        for n in [*self.data_sizes.sizes, *self.data_sizes.input_sizes]:
            check_subset(dataset, n, None, where="data_sizes.")
        _must_name(self.variance_model, list(self.models), "variance_model", "the models")
        if self.decode_seed_only is not None:
            _must_name(self.decode_seed_only, self.seeds, "decode_seed_only", "the seeds")
        for i, pair in enumerate(self.optimizer_pairs):
            for j, name in enumerate(pair):
                _must_name(name, names, f"optimizer_pairs.{i}.{j}", "the models and extra_models")
        for group, entries in (("models", self.models), ("extra_models", self.extra_models)):
            for name, entry in entries.items():
                check_subset(entry.dataset, entry.n_train, self.n_test, where=f"{group}.{name}.")
        return self


@schema("synthesis")
class Synthesis(ChapterParams):
    """Cross-paper synthesis: MASC on Theunissen et al.'s networks and their layer metrics on MASC's MLP."""

    theunissen_datasets: Annotated[list[DatasetName], NonEmpty]
    theunissen_noise_types: Annotated[list[NoiseType], NonEmpty]
    theunissen_levels: Annotated[list[Probability], NonEmpty] | None
    masc_model: str
    masc_levels: Annotated[list[Probability], NonEmpty] | None
    masc_seeds: Annotated[list[Seed], NonEmpty] | None
    variance: Fraction
    probe_chunk: PositiveInt
    torch_threads: PositiveInt | None


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


class ZhangRegularizationModel(Entry):
    """One model of Zhang et al.'s Table 1 (``book/zhang-regularization.md``); optional keys replace the chapter-wide
    value for this model's runs (see :func:`lib.protocols.zhang_config`)."""

    lr: PositiveFloat
    n_train: PositiveInt | None  # None = all 50,000 training images
    lr_decay: Annotated[float, Field(gt=0, le=1)]
    weight_decay: NonNegativeFloat  # used by the rows that turn weight decay on
    n_test: PositiveInt | None = None
    max_epochs: PositiveInt | None = None
    test_every: PositiveInt | None = None
    regularized_max_epochs: PositiveInt | None = None  # epoch cap of the runs the randomization chapter does not share
    augmented_max_epochs: PositiveInt | None = None  # epoch cap of Table 1's random-crop runs
    init: InitName | None = None  # an initialization of lib.models.initialize (None = PyTorch's default)
    bn_statistics: BnStatisticsName | None = None  # BatchNorm's statistics at evaluation (lib.train.RunConfig)


@schema("zhang-regularization")
class ZhangRegularization(ChapterParams):
    dataset: str
    n_test: PositiveInt | None
    batch_size: PositiveInt
    max_epochs: PositiveInt
    stop_train_acc: Probability
    test_every: PositiveInt
    seed: Seed
    data_seed: Seed
    models: dict[str, ZhangRegularizationModel]
    figure2b_test_every: PositiveInt
    table4_augmented_lr_decay: Annotated[float, Field(gt=0, le=1)]
    table4_augmented_max_epochs: PositiveInt


class KernelSolverEntry(Entry):
    """Settings of the iterative kernel solve (lib.kernels.KernelInterpolant)."""

    solver: str = "pcg"
    max_iter: PositiveInt
    tol: PositiveFloat = 1e-6
    m: PositiveInt  # Nyström subsample for the preconditioner
    q: PositiveInt  # eigen-directions flattened by it


@schema("zhang-kernels")
class ZhangKernels(ChapterParams):
    """Zhang et al. 2017, Section 5 and Table 3: minimum-norm Gaussian-kernel interpolation."""

    gamma: PositiveFloat  # exp(−γ‖x − y‖²) on MNIST pixels in [0, 1]
    n_full: PositiveInt | None  # the MNIST headline fit; None = the largest n that fits in memory (at most 60,000)
    n_curve: list[PositiveInt]  # exact (Cholesky) fits on the way
    n_check: PositiveInt  # exact and iterative on the same subset
    n_test: PositiveInt | None  # None = all 10,000
    exact_max: PositiveInt  # Cholesky up to this n
    iterative: KernelSolverEntry
    random_label_seed: Seed
    gabor_n: list[PositiveInt]
    gabor_scales: PositiveInt
    gabor_orientations: PositiveInt
    gabor_pool: PositiveInt
    cifar_n: PositiveInt
    cifar_n_test: PositiveInt
    rcf_filters: list[PositiveInt]
    rcf_n: PositiveInt
    rcf_patch: PositiveInt
    rcf_alpha: NonNegativeFloat
    seed: Seed


class LayerRobustnessNet(Entry):
    """One network of the layer-robustness chapter: its model, data and SGD settings, and its checkpoints."""

    model: str
    dataset: str
    n_train: PositiveInt | None   # None = the whole training set
    n_test: PositiveInt | None
    preprocessing: str
    init: str
    lr: PositiveFloat
    momentum: Probability
    lr_decay: PositiveFloat
    batch_size: PositiveInt
    max_epochs: PositiveInt
    checkpoints: list[NonNegativeInt]   # epochs whose weights are kept (0 = initial); re-initialization targets
    draws: PositiveInt                  # re-randomization draws per layer
    label: str                          # what the chapter calls it


@schema("weng-layer-robustness")
class WengLayerRobustness(ChapterParams):
    """Zhang, Bengio & Singer (2019) layer robustness, as toured by Weng (2019)."""

    seed: Seed
    data_seed: Seed
    fc: dict[str, LayerRobustnessNet]     # the fully connected nets on MNIST; the first is the claims' net
    weng: LayerRobustnessNet              # the essay's variant: the same net trained with dropout
    conv: dict[str, LayerRobustnessNet]   # VGG-style nets on CIFAR-10
    torch_threads: PositiveInt | None


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
