"""Paper-vs-ours claims and their verdicts: the science of judging a reproduction, apart from publishing it.

Chapters register claims here (through :class:`ClaimBook`); the scorecard (:mod:`lib.book.scorecard`) only reads them.

A chapter creates a :class:`ClaimBook` and adds one claim per quantitative statement of the paper
it reproduces (a table cell, a number in the text, a trend a figure shows), with our value computed
from its runs. **The verdict is computed, never typed**, from a machine-checkable criterion: an
expression over named numbers (:func:`rule`), stored with the numbers so that anyone (the scorecard,
a test) can evaluate it again.

- :meth:`ClaimBook.value`, a numeric claim: *reproduced* when ``abs(ours - paper) <= tolerance``,
  else *differs*;
- :meth:`ClaimBook.trend`, a qualitative claim (a trend, an ordering, a threshold): *same trend*
  when its criterion holds, else *differs*;
- both take ``requires``: the **preconditions** that make the criterion meaningful (the model
  fitted its labels, the base network is above chance, there are enough levels to see a trend, the
  run was evaluated more than once, the run was not stopped by a cap before the paper's setting).
  When one fails the verdict is *not tested*, whatever the criterion says: a trend on an untrained
  network is not evidence either way. :func:`fitted`, :func:`above_chance`, :func:`enough`,
  :func:`reached` build the usual ones.

**Kind.** :data:`KIND_RULE` is the one rule every chapter follows: a claim holds *by construction*
when its verdict is fixed before any network is trained, for one of the reasons of
:data:`BY_CONSTRUCTION` (chance, a definition, a solver's mathematics); every claim whose verdict a
network that learned something else could change is *substantive*, including whether a run fits
its training labels within its epoch cap.

**Source.** Claims are the paper's. A number from a third-party reproduction or the authors' code
is registered with ``source="reproduction"`` (shown as that reproduction's, not the paper's), and a
check of our own implementation (one solver against another, a target we set ourselves) with
:meth:`ClaimBook.check`: both appear in the chapter's table and apart in the scorecard, never in
the counts of the paper's claims.

**Data.** Every claim says what it was measured on, against the paper (``data=(ours, paper)`` in
training images, or :func:`data_size` from the data set's name, whose sizes are :data:`lib.data.SIZES`,
the one place denominators come from). A chapter usually gives it once, ``ClaimBook(chapter, scale,
data=...)``, and overrides it per claim where it differs.

**Tolerances come from noise** (:class:`Tolerance`): a value claim is *reproduced* when
``|ours - paper| <= max(parts)``, the parts being two standard errors of the comparison (binomial on our test-set
size and, where known, the paper's: :func:`accuracy_tolerance`), the spread of our seeds where there are several,
the paper's rounding (half a unit of the last digit it printed) and the resolution of our measurement (a grid
step). The criterion keeps every part, so the scorecard shows why the band is as wide as it is.

**Tests and confirmations.** A claim is a *test* when, given the preconditions that held, an outcome existed that
would have made it *differs*. It is a *confirmation* when it could only agree: it holds by construction, its
criterion cannot be false for any value of its measured numbers (:func:`could_fail`), or it is a claim about a fit
(``fit=True``) whose runs stopped at the stopping rule before the paper's epochs (the rule stops a run only once it
fits, so the run could not end unfitted). Confirmations are shown and counted apart from tests.

**Protocol distance** (:class:`Protocol`): each claim lists how its measurement departs from the paper's protocol
(training and test images, epochs or stopping rule, optimizer and learning rate, model, seeds); a claim is *at the
paper's protocol* when it has no departure other than ones the chapter documents as equivalent.

**Sources.** ``paper`` (the paper's claims), ``reproduction`` (a third party's number), ``check`` (a check of our
code) and ``ours`` (our extensions: networks a figure does not show, cross-paper synthesis, questions the papers do
not ask). Only ``paper`` claims are counted as the papers'.

**Prose.** :meth:`ClaimBook.closing` writes a chapter's "what agrees and what does not" from the
verdicts, so no chapter states a result its runs did not produce.

Saved claims live in ``$LIB_CLAIMS_DIR/<scale>/<chapter>.json`` (default ``<repo>/_build/claims``);
the book build points that variable into its build folder, and :func:`scorecard` reads them all.
"""

from __future__ import annotations

import ast
import json
import math
import operator
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import itertools

import pandas as pd

from lib import settings

__all__ = [
    "VERDICTS",
    "SOURCES",
    "EVIDENCE",
    "ONE_SIDED",
    "KIND_RULE",
    "BY_CONSTRUCTION",
    "claims_dir",
    "evaluate",
    "Criterion",
    "rule",
    "fitted",
    "all_fitted",
    "above_chance",
    "enough",
    "reached",
    "converged_or_reached",
    "holds",
    "TOLERANCE_PARTS",
    "Tolerance",
    "decimals_of",
    "rounding_of",
    "binomial_se",
    "difference_se",
    "accuracy_tolerance",
    "FIXED_NAMES",
    "could_fail",
    "PROTOCOL_FIELDS",
    "Protocol",
    "run_protocol",
    "compare_runs",
    "DataSize",
    "data_size",
    "test_size",
    "Claim",
    "NUMERIC",
    "NOISE",
    "VALUE_CRITERIA",
    "CONVERGED_OR_REACHED",
    "REACHED",
    "evidence_of",
    "ClaimBook",
    "kind_of",
    "standing_of",
    "load_claims",
    "scorecard",
    "write_scorecard",
]

VERDICTS = ("reproduced", "same trend", "differs", "not tested")
SOURCES = ("paper", "reproduction", "check", "ours")
EVIDENCE = ("test", "confirmation")
#: Why a claim could only agree, when it could (a claim's ``one_sided``); by-construction reasons are BY_CONSTRUCTION's.
ONE_SIDED = {
    "stopping rule": "every run stopped when it reached the stopping rule's training accuracy, before the paper's "
                     "epochs: a run that stops only once it fits cannot end unfitted",
    "criterion": "no value of the measured numbers makes the criterion false",
}

KIND_RULE = (
    "A claim holds *by construction* when its verdict is fixed before any network is trained: by chance "
    "(an accuracy on labels that carry no information about the inputs), by a definition (one quantity bounded "
    "by another through how both are defined), or by a solver's mathematics (an exact interpolating solve fits "
    "its training labels; a closed-form estimator's known behaviour). Every claim whose verdict a network that "
    "learned something else could change is *substantive*, including whether a run fits its training labels "
    "within its epoch cap: a stopping threshold does not make fitting automatic. A run stopped by a cap before "
    "it could reach the paper's setting does not test the claim at all: its verdict is *not tested*.")
BY_CONSTRUCTION = {
    "chance": "an accuracy on labels that carry no information about the inputs is chance for any classifier",
    "definition": "the quantities are bounded by one another through their definitions",
    "solver": "an exact or closed-form solve has this property whatever the data",
}


def claims_dir() -> Path:
    """``$LIB_CLAIMS_DIR`` (:func:`lib.settings.claims_dir`; default ``<repo>/_build/claims``)."""
    return settings.claims_dir()


# ---------------------------------------------------------------------------------------------------------------
# Criteria: expressions over named numbers, evaluated by a small whitelist evaluator (no eval())

_COMPARE = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
            ast.Eq: operator.eq, ast.NotEq: operator.ne}
_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}
_FUNCTIONS = {"abs": abs, "min": min, "max": max}


def evaluate(expr: str, values: Mapping[str, float]):
    """The value of ``expr`` (comparisons, ``and``/``or``/``not``, + - * /, ``abs``/``min``/``max``, names of
    ``values``, numbers). A NaN anywhere makes a comparison false, so a missing measurement never passes."""

    def walk(node):
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.BoolOp):
            parts = [bool(walk(v)) for v in node.values]
            return all(parts) if isinstance(node.op, ast.And) else any(parts)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return not bool(walk(node.operand))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -walk(node.operand)
        if isinstance(node, ast.Compare):
            left = walk(node.left)
            for op, right_node in zip(node.ops, node.comparators):
                right = walk(right_node)
                if type(op) not in _COMPARE:
                    raise ValueError(f"operator {type(op).__name__} is not allowed in a criterion: {expr!r}")
                if _nan(left) or _nan(right) or not _COMPARE[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            left, right = walk(node.left), walk(node.right)
            if isinstance(node.op, ast.Div) and right == 0:
                return float("nan")
            return _BINARY[type(node.op)](left, right)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS:
            return _FUNCTIONS[node.func.id](*(walk(a) for a in node.args))
        if isinstance(node, ast.Name):
            if node.id in ("True", "False"):
                return node.id == "True"
            if node.id not in values:
                raise ValueError(f"criterion {expr!r} names {node.id!r}, which is not among its values {sorted(values)}")
            return values[node.id]
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, bool)):
            return node.value
        raise ValueError(f"{ast.dump(node)} is not allowed in a criterion: {expr!r}")

    return walk(ast.parse(expr, mode="eval"))


def _nan(value) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _number(value) -> float | int | bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"a criterion's values are numbers, got {value!r}") from None


@dataclass(frozen=True)
class Criterion:
    """A machine-checkable condition: ``expr`` over ``values`` (names to numbers), and what it means in words."""

    expr: str
    values: dict
    meaning: str = ""

    def holds(self) -> bool:
        return bool(evaluate(self.expr, self.values))

    def text(self) -> str:
        shown = ", ".join(f"{k} = {_format(v)}" for k, v in self.values.items())
        words = f"{self.meaning}: " if self.meaning else ""
        return f"{words}{self.expr}" + (f" ({shown})" if shown else "")


def rule(expr: str, meaning: str = "", **values) -> Criterion:
    """A criterion: ``rule("rho >= 0.7", "rank correlation of p and slowdown", rho=0.83)``."""
    criterion = Criterion(expr, {k: _number(v) for k, v in values.items()}, meaning)
    evaluate(expr, criterion.values)  # a typo in a name fails now, not in the scorecard
    return criterion


# The usual preconditions, each a (what, Criterion) pair for ``requires=``

def fitted(train_acc: float, threshold: float, what: str = "the model fitted its training labels"):
    """The network reached ``threshold`` training accuracy (its labels are memorized: the claim is about a fit)."""
    return what, rule("train_acc >= threshold", train_acc=train_acc, threshold=threshold)


def all_fitted(train_accs, threshold: float, what: str):
    """Every network of a set reached ``threshold`` training accuracy: :func:`fitted` of the lowest of
    ``train_accs`` (an empty set fails: its lowest is NaN)."""
    values = [float(v) for v in train_accs]
    return fitted(min(values) if values else float("nan"), threshold, what)


def above_chance(acc: float, chance: float, margin: float = 0.1, what: str = "the network is above chance"):
    """A test accuracy clearly above chance (by ``margin``): there is something for a change to destroy."""
    return what, rule("acc >= chance + margin", acc=acc, chance=chance, margin=margin)


def enough(count: float, needed: float, what: str):
    """At least ``needed`` of something: levels to fit a trend, evaluations of a curve, seeds, points."""
    return what, rule("count >= needed", count=count, needed=needed)


def reached(epochs: float, needed: float, what: str = "the run was trained as long as the paper's setting needs"):
    """The run was not stopped by a cap before the paper's setting: ``epochs`` trained ≥ ``needed``."""
    return what, rule("epochs >= needed", epochs=epochs, needed=needed)


def converged_or_reached(converged: bool, epochs: float, needed: float,
                         what: str = "the run converged, or trained as long as the paper's setting allows"):
    """The run reached its stopping criterion, or trained the epochs the paper's setting allows (``needed``): a run
    that a smaller scale's epoch cap stopped earlier, unconverged, does not test a claim about the paper's setting."""
    return what, rule("converged == 1 or epochs >= needed", converged=int(bool(converged)), epochs=epochs,
                      needed=needed)


def holds(condition: bool, what: str):
    """A precondition that is a plain yes/no our code computed (``ok == 1``)."""
    return what, rule("ok == 1", ok=int(bool(condition)))


# ---------------------------------------------------------------------------------------------------------------
# Tolerances from noise

#: The parts of a tolerance, in the order the criterion lists them: each a half-width in the claim's unit.
TOLERANCE_PARTS = {"two_se": "2 standard errors", "seed_spread": "our seeds' spread", "rounding": "the paper's rounding",
                   "resolution": "our measurement's resolution"}


@dataclass(frozen=True)
class Tolerance:
    """How far our value may sit from the paper's and still reproduce it: the largest of its noise parts
    (:data:`TOLERANCE_PARTS`), each in the claim's unit. A part that does not apply is 0."""

    two_se: float = 0.0
    seed_spread: float = 0.0
    rounding: float = 0.0
    resolution: float = 0.0

    def __post_init__(self):
        for name in TOLERANCE_PARTS:
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"tolerance part {name} must be a finite number >= 0, got {value!r}")
        if self.value == 0:
            raise ValueError("a tolerance needs at least one noise part above 0 (standard error, seeds' spread, the "
                             "paper's rounding or our resolution)")

    @property
    def value(self) -> float:
        return max(getattr(self, name) for name in TOLERANCE_PARTS)

    def parts(self) -> dict:
        return {name: float(getattr(self, name)) for name in TOLERANCE_PARTS}

    def text(self, unit: str = "") -> str:
        shown = ", ".join(f"{words} {_format(getattr(self, name))}{unit}" for name, words in TOLERANCE_PARTS.items()
                          if getattr(self, name) > 0)
        return f"±{_format(self.value)}{unit}, the largest of {shown}"


def decimals_of(value: float) -> int:
    """The number of decimals the paper printed ``value`` with, as its reference data stores it (``97.87`` → 2,
    ``100.0`` → 1, ``100`` → 0)."""
    if isinstance(value, int) or float(value).is_integer() and "." not in repr(value):
        return 0
    text = repr(float(value))
    if "e" in text:
        return max(0, -int(text.split("e")[1]))
    return len(text.split(".")[1]) if "." in text else 0


def rounding_of(value: float) -> float:
    """Half a unit of the last digit the paper printed ``value`` with (:func:`decimals_of`)."""
    return 0.5 * 10.0 ** -decimals_of(value)


def binomial_se(accuracy: float, n: int | None) -> float:
    """The standard error of an accuracy (a fraction) measured on ``n`` independent images (0 where ``n`` is unknown)."""
    if not n or not math.isfinite(accuracy):
        return 0.0
    p = min(max(float(accuracy), 0.0), 1.0)
    return math.sqrt(p * (1 - p) / int(n))


def difference_se(a: float, n_a: int | None, b: float, n_b: int | None) -> float:
    """The standard error of ``a - b``, two accuracies (fractions) measured on ``n_a`` and ``n_b`` images, taken as
    independent (on one test set the two are positively correlated, so this over-states the error: the side of caution
    for a claim that a difference exists)."""
    return math.sqrt(binomial_se(a, n_a) ** 2 + binomial_se(b, n_b) ** 2)


def accuracy_tolerance(ours: float, paper: float, n_ours: int | None, n_paper: int | None = None,
                       seeds=(), percent: bool = True, resolution: float = 0.0) -> Tolerance:
    """The tolerance of an accuracy claim: two standard errors of ``ours - paper`` (binomial on ``n_ours`` of our test
    images and, where the paper says, ``n_paper`` of its), the spread (max - min) of ``seeds`` (our per-seed values,
    in the claim's unit) where there are several, and the paper's rounding of ``paper``. ``percent``: the values
    are in % (else fractions)."""
    unit = 100.0 if percent else 1.0
    se = difference_se(ours / unit, n_ours, paper / unit, n_paper) * unit if math.isfinite(ours) else 0.0
    values = [float(v) for v in seeds if math.isfinite(float(v))]
    spread = max(values) - min(values) if len(values) > 1 else 0.0
    return Tolerance(two_se=2 * se, seed_spread=spread, rounding=rounding_of(paper), resolution=resolution)


# ---------------------------------------------------------------------------------------------------------------
# Could a claim have failed?

#: Names that stand for fixed numbers in criteria (the paper's values, thresholds, tolerances); every other name is
#: a measured number of ours, which :func:`could_fail` varies.
FIXED_NAMES = frozenset({"paper", "tolerance", "threshold", "margin", "bound", "needed", "chance", "drop",
                         "n_settings", "expected", *TOLERANCE_PARTS})


def _constants(expr: str, values: Mapping[str, float], fixed) -> list[float]:
    literals = [n.value for n in ast.walk(ast.parse(expr, mode="eval"))
                if isinstance(n, ast.Constant) and isinstance(n.value, (int, float)) and not isinstance(n.value, bool)]
    return [float(v) for v in literals] + [float(values[k]) for k in fixed if k in values]


def could_fail(expr: str, values: Mapping[str, float], fixed=FIXED_NAMES) -> bool:
    """Whether some value of the measured numbers of ``values`` (every name not in ``fixed``) makes ``expr`` false:
    a criterion that no measurement could make false is no test. Searches each measured number over its own value,
    0, ±1, large values, halves and doubles, and every constant of the criterion and a hair either side of it; all
    combinations for up to three measured numbers, one and two at a time beyond."""
    measured = [k for k in values if k not in fixed]
    if not measured:
        return not bool(evaluate(expr, values))
    constants = _constants(expr, values, fixed)

    def candidates(v: float) -> list[float]:
        v = float(v)
        pool = {0.0, 1.0, -1.0, 1e9, -1e9}
        if math.isfinite(v):
            pool |= {v, 2 * v, v / 2, -v}
        for c in constants:
            eps = max(1e-6, 1e-3 * abs(c))
            pool |= {c, c - eps, c + eps, c - 1, c + 1}
        return sorted(pool)

    pools = {k: candidates(values[k]) for k in measured}
    if len(measured) <= 3:
        combos = itertools.product(*(pools[k] for k in measured))
        trials = ({**values, **dict(zip(measured, combo))} for combo in combos)
    else:
        singles = ({**values, k: c} for k in measured for c in pools[k])
        pairs = ({**values, a: ca, b: cb} for a, b in itertools.combinations(measured, 2)
                 for ca in pools[a] for cb in pools[b])
        trials = itertools.chain(singles, pairs)
    return any(not bool(evaluate(expr, trial)) for trial in trials)


# ---------------------------------------------------------------------------------------------------------------
# Protocol distance

#: The fields a protocol is compared on, in the order they are shown.
PROTOCOL_FIELDS = ("training images", "test images", "epochs", "optimizer", "model", "seeds")


@dataclass(frozen=True)
class Protocol:
    """How a measurement was made against the paper's protocol: ``ours`` and ``paper`` map fields of
    :data:`PROTOCOL_FIELDS` (or others) to short texts; ``equivalent`` maps a field whose difference the chapter
    documents as not changing the measurement to the reason (e.g. one seed of three)."""

    ours: dict
    paper: dict
    equivalent: dict = field(default_factory=dict)

    def departures(self) -> list[str]:
        """``"field: ours (paper: theirs)"`` for each field where ours differs and no equivalence is documented; a
        field the paper's side does not state is a departure too (we cannot say we followed it)."""
        out = []
        for key in dict.fromkeys([*self.ours, *self.paper]):
            mine, theirs = self.ours.get(key), self.paper.get(key)
            if mine == theirs or key in self.equivalent:
                continue
            out.append(f"{key}: {mine if mine is not None else 'not stated'} (paper: "
                       f"{theirs if theirs is not None else 'not stated'})")
        return out

    def equivalences(self) -> list[str]:
        return [f"{key}: {self.ours.get(key)} (paper: {self.paper.get(key)}; {why})" for key, why in
                self.equivalent.items() if self.ours.get(key) != self.paper.get(key)]

    @property
    def at_protocol(self) -> bool:
        return not self.departures()


def _images(n: int | None, total: int | None) -> str:
    if n is None or (total is not None and n >= total):
        return f"all {total:,}" if total else "all"
    return f"{int(n):,}"


def run_protocol(config, n_seeds: int, *, train_total: int | None = None, test_total: int | None = None,
                 converged: bool | None = None) -> dict:
    """The protocol fields (:data:`PROTOCOL_FIELDS`) of one run configuration (any object with the attributes of
    :class:`lib.train.RunConfig`). ``converged``: the run reached its stopping rule, so its epoch cap did not bind
    (its epochs read "to the stopping rule")."""
    stop = getattr(config, "stop_train_acc", None)
    rule_text = f"to {100 * stop:g}% training accuracy" if stop is not None else "no stopping rule"
    epochs = f"{rule_text}, reached" if converged and stop is not None else f"{rule_text} or {config.max_epochs} epochs"
    decay = getattr(config, "lr_decay", 1.0)
    optimizer = (f"{config.optimizer} lr {config.lr:g}" + (f" x{decay:g}/epoch" if decay != 1.0 else "")
                 + (f" momentum {config.momentum:g}" if config.optimizer == "sgd" and config.momentum else "")
                 + f" batch {config.batch_size}")
    return {"training images": _images(config.n_train, train_total), "test images": _images(config.n_test, test_total),
            "epochs": epochs, "optimizer": optimizer, "model": config.model, "seeds": str(n_seeds)}


def compare_runs(ours, paper, n_seeds: int, n_seeds_paper: int, *, train_total: int | None = None,
                 test_total: int | None = None, converged: bool | None = None, equivalent: Mapping | None = None,
                 ) -> Protocol:
    """The :class:`Protocol` of a claim measured on run ``ours`` against the paper's run ``paper`` (both run
    configurations). A run that reached the paper's stopping rule (``converged``, with the paper's threshold) is at the
    paper's epochs whatever its cap; fewer seeds than the paper are a departure unless ``equivalent`` says why not."""
    mine = run_protocol(ours, n_seeds, train_total=train_total, test_total=test_total, converged=converged)
    theirs = run_protocol(paper, n_seeds_paper, train_total=train_total, test_total=test_total)
    if converged and getattr(ours, "stop_train_acc", None) == getattr(paper, "stop_train_acc", None):
        theirs["epochs"] = mine["epochs"]
    return Protocol(mine, theirs, dict(equivalent or {}))


# ---------------------------------------------------------------------------------------------------------------
# Data sizes

@dataclass(frozen=True)
class DataSize:
    """How much data a claim was measured on, ours against the paper's (``None`` = not applicable)."""

    ours: int | None
    paper: int | None
    what: str = "training images"

    @classmethod
    def of(cls, value) -> "DataSize":
        if isinstance(value, DataSize):
            return value
        if isinstance(value, (tuple, list)) and len(value) in (2, 3):
            return cls(*value)
        raise TypeError(f"a claim's data size is (ours, paper[, what]) or a DataSize, got {value!r}")

    @property
    def at_paper_size(self) -> bool:
        return self.ours is None or self.paper is None or self.ours >= self.paper

    def text(self) -> str:
        if self.ours is None or self.paper is None:
            return "no training data" if self.ours is None and self.paper is None else f"{self.what}: n/a"
        if self.ours >= self.paper:
            return f"all {self.paper:,} {self.what}" if self.ours == self.paper else f"{self.ours:,} {self.what} (paper {self.paper:,})"
        return f"{self.ours:,} of {self.paper:,} {self.what}"


def data_size(dataset: str, n_train: int | None, split: str | None = None, paper: int | None = None,
              what: str = "training images") -> DataSize:
    """What a run on ``dataset`` used (``n_train``; ``None`` = the whole training set) against the paper's
    (``paper``; default the whole training set, or the training part of ``split``). Sizes from :data:`lib.data.SIZES`
    and :data:`lib.data.SPLIT_SIZES`, the one place the book's denominators come from."""
    from lib.data import SIZES, SPLIT_SIZES

    full = SPLIT_SIZES[split][0] if split else SIZES[dataset][0]
    return DataSize(int(n_train) if n_train else full, int(paper) if paper else full, what)


def test_size(dataset: str, n_test: int | None = None) -> int:
    """The number of test images a run used (``None`` = the whole test set of :data:`lib.data.SIZES`)."""
    from lib.data import SIZES

    return int(n_test) if n_test else SIZES[dataset][1]


# ---------------------------------------------------------------------------------------------------------------
# Claims

@dataclass
class Claim:
    """One statement of a paper, the paper's value, ours, and the verdict computed from them."""

    chapter: str
    paper: str
    figure: str
    claim: str
    paper_value: str
    our_value: str
    scale: str
    verdict: str
    rule: str  # the criterion in words and symbols (shown on hover in the scorecard)
    section: str = ""
    data: str = ""  # what it was measured on, relative to the paper (DataSize.text)
    n_ours: int | None = None
    n_paper: int | None = None
    at_paper_size: bool = False
    substantive: bool = True  # False: holds by construction (KIND_RULE), for the reason in `construction`
    construction: str = ""  # a key of BY_CONSTRUCTION, or ""
    criterion: str = ""  # the expression of the criterion
    values: dict = field(default_factory=dict)  # its numbers
    requires: list = field(default_factory=list)  # [{what, expr, values, holds}] the preconditions
    untested: str = ""  # the preconditions that failed, in words ("" when every one held)
    source: str = "paper"  # paper | reproduction | check | ours (SOURCES)
    note: str = ""  # why ours may differ (shown in the chapter's closing)
    evidence: str = "test"  # test | confirmation (EVIDENCE): could an outcome have made it differ?
    one_sided: str = ""  # why it could only agree: a key of ONE_SIDED or BY_CONSTRUCTION ("" for a test)
    fit: bool = False  # a claim that runs fit their training labels (one-sided when the stopping rule ended them)
    fixed: list = field(default_factory=list)  # the criterion's names that are fixed numbers, not measurements
    departures: list = field(default_factory=list)  # how the measurement departs from the paper's protocol
    equivalences: list = field(default_factory=list)  # departures the chapter documents as not changing it
    at_protocol: bool = False  # no departure from the paper's protocol but documented equivalences

    def recompute(self) -> str:
        """The verdict from the stored criterion and preconditions alone (a test checks it equals ``verdict``)."""
        if any(not evaluate(r["expr"], r["values"]) for r in self.requires):
            return "not tested"
        ok = bool(evaluate(self.criterion, self.values))
        if ok:
            return "reproduced" if self.criterion in VALUE_CRITERIA else "same trend"
        return "differs"

    def could_have_failed(self) -> bool:
        """Recomputed from the stored numbers: whether an outcome existed that would have made this claim *differs*
        (:func:`evidence_of`)."""
        return evidence_of(self.criterion, self.values, self.fixed, self.requires, self.fit,
                           self.construction)[0] == "test"


#: A value claim's criterion with a fixed tolerance, and with a tolerance from noise (:class:`Tolerance`).
NUMERIC = "abs(ours - paper) <= tolerance"
NOISE = "abs(ours - paper) <= max(" + ", ".join(TOLERANCE_PARTS) + ")"
VALUE_CRITERIA = (NUMERIC, NOISE)
CONVERGED_OR_REACHED = "converged == 1 or epochs >= needed"
REACHED = "epochs >= needed"


def evidence_of(expr: str, values: Mapping, fixed, requires: list[dict], fit: bool,
                construction: str = "") -> tuple[str, str]:
    """``("test", "")`` or ``("confirmation", reason)`` for a claim with criterion ``expr`` over ``values`` (the
    names in ``fixed`` are fixed numbers), stored preconditions ``requires`` and, for a claim about a fit (``fit``),
    the reason of :data:`ONE_SIDED` when only the stopping rule made its runs fit."""
    if construction:
        return "confirmation", construction
    if not could_fail(expr, values, FIXED_NAMES | set(fixed)):
        return "confirmation", "criterion"
    if fit:
        lengths = [r for r in requires if r["expr"] in (CONVERGED_OR_REACHED, REACHED)]
        if not lengths:
            raise ValueError(f"a claim about a fit ({expr!r}) needs a precondition on how long its runs trained "
                             "(converged_or_reached or reached): without it, whether it could fail is unknown")
        if all(r["values"]["epochs"] < r["values"]["needed"] and r["values"].get("converged") == 1 for r in lengths):
            return "confirmation", "stopping rule"
    return "test", ""


def _format(value) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def _requirements(requires) -> list[tuple[str, Criterion]]:
    items = list(requires.items()) if isinstance(requires, Mapping) else list(requires)
    for what, criterion in items:
        if not isinstance(criterion, Criterion):
            raise TypeError(f"precondition {what!r} must be a Criterion (lib.book.claims.rule), got {criterion!r}")
    return items


@dataclass
class ClaimBook:
    """The claims of one chapter at one scale."""

    chapter: str
    scale: str
    data: DataSize | tuple | None = None  # the default data size of this chapter's claims
    paper: str = ""  # the default paper of this chapter's claims ("Zhang et al. 2017")
    claims: list[Claim] = field(default_factory=list)
    section_of: Callable[[], str] | None = None  # the section of a claim given none (lib.book.chapter: the heading)
    protocol: Protocol | None = None  # the default protocol of this chapter's claims

    def value(self, *, figure: str, claim: str, paper_value: float, ours: float, tolerance: Tolerance | float,
              unit: str = "", section: str = "", data=None, requires=(), by_construction: str = "",
              source: str = "paper", paper: str = "", note: str = "", fit: bool = False,
              protocol: Protocol | None = None) -> Claim:
        """A numeric claim: *reproduced* when ``abs(ours - paper)`` is within the :class:`Tolerance` (the largest of
        its noise parts; and every precondition holds). A bare number is a fixed tolerance, not tied to noise."""
        if isinstance(tolerance, Tolerance):
            criterion = rule(NOISE, f"within {tolerance.text(unit)} of the paper", ours=ours, paper=paper_value,
                             **tolerance.parts())
        else:
            criterion = rule(NUMERIC, f"within a fixed ±{_format(tolerance)}{unit} of the paper", ours=ours,
                             paper=paper_value, tolerance=tolerance)
        return self._add(figure, claim, f"{_format(paper_value)}{unit}", f"{_format(ours)}{unit}", criterion,
                         section, data, requires, by_construction, source, paper, note, fit, protocol)

    def trend(self, *, figure: str, claim: str, paper_value: str, ours: str, criterion: Criterion,
              section: str = "", data=None, requires=(), by_construction: str = "", source: str = "paper",
              paper: str = "", note: str = "", fit: bool = False, protocol: Protocol | None = None,
              fixed=()) -> Claim:
        """A qualitative claim (a trend, an ordering): *same trend* when ``criterion`` holds (and the preconditions).
        ``fixed``: names of the criterion that are fixed numbers rather than measurements, beyond :data:`FIXED_NAMES`."""
        if not isinstance(criterion, Criterion):
            raise TypeError(f"claim {claim!r}: criterion must be a Criterion (lib.verdicts.rule), got {criterion!r}")
        return self._add(figure, claim, str(paper_value), str(ours), criterion, section, data, requires,
                         by_construction, source, paper, note, fit, protocol, fixed)

    def check(self, *, what: str, target: str, ours: str, criterion: Criterion, section: str = "", data=None,
              requires=(), figure: str = "our check", note: str = "", protocol: Protocol | None = None) -> Claim:
        """A check of our own implementation (not a claim of the paper): listed, never counted with the paper's."""
        return self.trend(figure=figure, claim=what, paper_value=target, ours=ours, criterion=criterion,
                          section=section, data=data, requires=requires, source="check", paper="ours", note=note,
                          protocol=protocol)

    def extension(self, *, figure: str, claim: str, expected: str, ours: str, criterion: Criterion, section: str = "",
                  data=None, requires=(), note: str = "", protocol: Protocol | None = None, fixed=()) -> Claim:
        """A claim of ours that the papers do not make (a network a figure does not show, a cross-paper comparison):
        listed in its own section of the scorecard, never counted with the papers' claims."""
        return self.trend(figure=figure, claim=claim, paper_value=expected, ours=ours, criterion=criterion,
                          section=section, data=data, requires=requires, source="ours", paper="ours", note=note,
                          protocol=protocol, fixed=fixed)

    def _add(self, figure, claim, paper_value, our_value, criterion, section, data, requires, by_construction,
             source, paper, note, fit=False, protocol=None, fixed=()) -> Claim:
        data = data if data is not None else self.data
        if data is None:
            raise ValueError(f"claim {claim!r} of {self.chapter!r} does not say what data it was measured on: pass "
                             "data=(ours, paper) to the claim or to ClaimBook")
        if by_construction and by_construction not in BY_CONSTRUCTION:
            raise ValueError(f"claim {claim!r}: by_construction must name a reason of {sorted(BY_CONSTRUCTION)} "
                             f"(lib.book.claims.KIND_RULE), got {by_construction!r}")
        if source not in SOURCES:
            raise ValueError(f"claim {claim!r}: source must be one of {SOURCES}, got {source!r}")
        paper = paper or self.paper
        if not section and self.section_of is not None:
            section = self.section_of()
        if not paper:
            raise ValueError(f"claim {claim!r} of {self.chapter!r} names no paper: pass paper= to it or to ClaimBook")
        size = DataSize.of(data)
        requirements = _requirements(requires)
        stored = [dict(what=what, expr=c.expr, values=c.values, holds=c.holds()) for what, c in requirements]
        failed = [r["what"] for r in stored if not r["holds"]]
        if failed:
            verdict = "not tested"
        elif criterion.holds():
            verdict = "reproduced" if criterion.expr in VALUE_CRITERIA else "same trend"
        else:
            verdict = "differs"
        text = criterion.text()
        if requirements:
            text += "; requires " + "; ".join(f"{what} [{c.text()}]" + ("" if c.holds() else " FAILED")
                                              for what, c in requirements)
        evidence, one_sided = evidence_of(criterion.expr, criterion.values, fixed, stored, fit, by_construction)
        protocol = protocol if protocol is not None else self.protocol
        departures = protocol.departures() if protocol is not None else ["protocol not stated"]
        item = Claim(self.chapter, paper, figure, claim, paper_value, our_value, self.scale, verdict, text, section,
                     size.text(), size.ours, size.paper, size.at_paper_size, not by_construction, by_construction,
                     criterion.expr, dict(criterion.values), stored, "; ".join(failed), source, note, evidence,
                     one_sided, bool(fit), sorted(set(fixed)), departures,
                     protocol.equivalences() if protocol is not None else [], not departures)
        self.claims.append(item)
        return item

    def adopt(self, claims: list[Claim]) -> None:
        """Add claims another scale of this chapter registered (recorded in :mod:`lib.results`), keeping their scale,
        verdicts and data sizes: the page lists them and the scorecard counts them at their own scale."""
        foreign = [c for c in claims if c.chapter != self.chapter or c.scale == self.scale]
        if foreign:
            raise ValueError(f"{self.chapter} at {self.scale}: cannot adopt claims of {foreign[0].chapter!r} at "
                             f"{foreign[0].scale!r} (only this chapter's, at another scale)")
        self.claims.extend(claims)

    def at(self, scale: str) -> list[Claim]:
        """The claims registered at ``scale``."""
        return [c for c in self.claims if c.scale == scale]

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(c) for c in self.claims], columns=list(Claim.__dataclass_fields__))

    def table(self, scale: str | None = None) -> pd.DataFrame:
        """The chapter's claims at ``scale`` (default: the page's own) as a table for the page (criterion and
        preconditions in the ``rule`` column)."""
        chosen = self.at(scale or self.scale)
        frame = pd.DataFrame([asdict(c) for c in chosen], columns=list(Claim.__dataclass_fields__))
        if frame.empty:
            return frame
        frame["kind"] = [standing_of(c) for c in chosen]
        frame["verdict"] = frame.verdict.where(frame.untested == "", "not tested: " + frame.untested)
        frame["data"] = [f"{c.data}; " + ("at the paper's protocol" if c.at_protocol else
                                          "departs from the paper's protocol in " + "; ".join(c.departures))
                         for c in chosen]
        return frame[["figure", "claim", "paper_value", "our_value", "verdict", "rule", "data", "kind"]].rename(columns={
            "paper_value": "paper", "our_value": "ours", "rule": "criterion", "data": "measured on"}
        ).set_index(["figure", "claim"])

    def closing(self) -> str:
        """"What agrees and what does not", written from the verdicts (Markdown): nothing typed can go stale. Claims
        of another scale (adopted from the results store) follow under their own heading."""
        text = self._closing(self.at(self.scale))
        for scale in dict.fromkeys(c.scale for c in self.claims if c.scale != self.scale):
            claims = self.at(scale)
            data = sorted({c.data for c in claims if c.substantive and c.source == "paper"})
            text += (f"\n\n**At scale `{scale}`** (recorded in the results store; measured on "
                     f"{'; '.join(data) or 'the recorded runs'}):\n\n" + self._closing(claims))
        return text

    def _closing(self, claims: list[Claim]) -> str:
        groups = {"agrees": [], "differs": [], "not tested": [], "by construction": [], "confirmations": [],
                  "extensions": [], "checks": []}
        for c in claims:
            if c.source == "check":
                groups["checks"].append(c)
            elif c.source == "ours":
                groups["extensions"].append(c)
            elif c.verdict == "not tested":
                groups["not tested"].append(c)
            elif not c.substantive:
                groups["by construction"].append(c)
            elif c.evidence == "confirmation":
                groups["confirmations"].append(c)
            elif c.verdict == "differs":
                groups["differs"].append(c)
            else:
                groups["agrees"].append(c)

        def line(c: Claim, why: str = "") -> str:
            source = " (a reproduction's number)" if c.source == "reproduction" else ""
            target = "target" if c.source == "check" else ("reproduction" if c.source == "reproduction" else "paper")
            text = f"{c.figure}: {c.claim}{source} — {target} {c.paper_value}, ours {c.our_value}, {c.data}"
            return f"  - {text}" + (f"; {why}" if why else "") + "."

        titles = {"agrees": "Agrees (tests: an outcome existed that would have made them differ)",
                  "differs": "Differs (tests)", "not tested": "Not tested (a precondition failed at this scale)",
                  "by construction": "Holds or fails by construction (confirmations)",
                  "confirmations": "Confirmations (they could only agree)",
                  "extensions": "Our extensions (claims the papers do not make, never counted as theirs)",
                  "checks": "Checks of our own implementation"}
        parts = []
        for key, items in groups.items():
            if not items:
                continue
            parts.append(f"- **{titles[key]}**, {len(items)} of {len(claims)}:")
            for c in items:
                why = {"not tested": f"not tested because not: {c.untested}",
                       "differs": c.note, "confirmations": ONE_SIDED.get(c.one_sided, c.one_sided),
                       "extensions": c.verdict + (f"; not tested because not: {c.untested}" if c.untested else ""), "checks": f"{c.verdict}" + (f"; {c.note}" if c.note else ""), "by construction": (f"{c.verdict}; " if c.verdict else "")
                       + BY_CONSTRUCTION.get(c.construction, "")}.get(key, "")
                parts.append(line(c, why))
        return "\n".join(parts) if parts else "No claims were registered."

    def save(self) -> Path:
        path = claims_dir() / self.scale / f"{self.chapter}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps([asdict(c) for c in self.claims], indent=1))
        os.replace(temporary, path)
        return path


def kind_of(claim: Claim) -> str:
    """The scorecard's kind of a claim: a check of ours, an extension of ours, a reproduction's number, substantive or
    by construction."""
    if claim.source == "check":
        return "our check"
    if claim.source == "ours":
        return "our extension"
    if claim.source == "reproduction":
        return "a reproduction's number"
    if not claim.substantive:
        return "by construction"
    return "substantive"


def standing_of(claim: Claim) -> str:
    """What a claim counts as, for a chapter's table: ``test``, ``confirmation (<why it could only agree>)``, or its
    kind where it is not the papers' (:func:`kind_of`)."""
    if claim.source != "paper":
        return kind_of(claim)
    if claim.evidence == "confirmation":
        return f"confirmation ({claim.one_sided or 'it could only agree'})"
    return "test"


def load_claims(scale: str) -> list[Claim]:
    """Every saved claim at ``scale``, chapter by chapter."""
    claims = []
    for path in sorted((claims_dir() / scale).glob("*.json")):
        claims.extend(Claim(**c) for c in json.loads(path.read_text()))
    return claims


def scorecard(scale: str) -> pd.DataFrame:
    """One row per claim of every chapter built at ``scale``."""
    columns = list(Claim.__dataclass_fields__)
    return pd.DataFrame([asdict(c) for c in load_claims(scale)], columns=columns)


def write_scorecard(path: Path, scale: str) -> pd.DataFrame:
    frame = scorecard(scale)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(frame.to_dict(orient="records"), indent=1))
    return frame
