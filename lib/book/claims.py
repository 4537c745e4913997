"""Paper-vs-ours claims: chapters register them, the scorecard collects them.

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

import pandas as pd

from lib import settings

REPO_ROOT = Path(__file__).resolve().parents[2]
VERDICTS = ("reproduced", "same trend", "differs", "not tested")
SOURCES = ("paper", "reproduction", "check")

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
    source: str = "paper"  # paper | reproduction | check (SOURCES)
    note: str = ""  # why ours may differ (shown in the chapter's closing)

    def recompute(self) -> str:
        """The verdict from the stored criterion and preconditions alone (a test checks it equals ``verdict``)."""
        if any(not evaluate(r["expr"], r["values"]) for r in self.requires):
            return "not tested"
        ok = bool(evaluate(self.criterion, self.values))
        if ok:
            return "reproduced" if self.criterion == NUMERIC else "same trend"
        return "differs"


NUMERIC = "abs(ours - paper) <= tolerance"


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

    def value(self, *, figure: str, claim: str, paper_value: float, ours: float, tolerance: float,
              unit: str = "", section: str = "", data=None, requires=(), by_construction: str = "",
              source: str = "paper", paper: str = "", note: str = "") -> Claim:
        """A numeric claim: *reproduced* when ``abs(ours - paper) <= tolerance`` (and every precondition holds)."""
        criterion = rule(NUMERIC, f"within ±{_format(tolerance)}{unit} of the paper", ours=ours, paper=paper_value,
                         tolerance=tolerance)
        return self._add(figure, claim, f"{_format(paper_value)}{unit}", f"{_format(ours)}{unit}", criterion,
                         section, data, requires, by_construction, source, paper, note)

    def trend(self, *, figure: str, claim: str, paper_value: str, ours: str, criterion: Criterion,
              section: str = "", data=None, requires=(), by_construction: str = "", source: str = "paper",
              paper: str = "", note: str = "") -> Claim:
        """A qualitative claim (a trend, an ordering): *same trend* when ``criterion`` holds (and the preconditions)."""
        if not isinstance(criterion, Criterion):
            raise TypeError(f"claim {claim!r}: criterion must be a Criterion (lib.book.claims.rule), got {criterion!r}")
        return self._add(figure, claim, str(paper_value), str(ours), criterion, section, data, requires,
                         by_construction, source, paper, note)

    def check(self, *, what: str, target: str, ours: str, criterion: Criterion, section: str = "", data=None,
              requires=(), figure: str = "our check", note: str = "") -> Claim:
        """A check of our own implementation (not a claim of the paper): listed, never counted with the paper's."""
        return self.trend(figure=figure, claim=what, paper_value=target, ours=ours, criterion=criterion,
                          section=section, data=data, requires=requires, source="check", paper="ours", note=note)

    def _add(self, figure, claim, paper_value, our_value, criterion, section, data, requires, by_construction,
             source, paper, note) -> Claim:
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
            verdict = "reproduced" if criterion.expr == NUMERIC else "same trend"
        else:
            verdict = "differs"
        text = criterion.text()
        if requirements:
            text += "; requires " + "; ".join(f"{what} [{c.text()}]" + ("" if c.holds() else " FAILED")
                                              for what, c in requirements)
        item = Claim(self.chapter, paper, figure, claim, paper_value, our_value, self.scale, verdict, text, section,
                     size.text(), size.ours, size.paper, size.at_paper_size, not by_construction, by_construction,
                     criterion.expr, dict(criterion.values), stored, "; ".join(failed), source, note)
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
        frame["kind"] = [kind_of(c) for c in chosen]
        frame["verdict"] = frame.verdict.where(frame.untested == "", "not tested: " + frame.untested)
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
        groups = {"agrees": [], "differs": [], "not tested": [], "by construction": [], "checks": []}
        for c in claims:
            if c.source == "check":
                groups["checks"].append(c)
            elif c.verdict == "not tested":
                groups["not tested"].append(c)
            elif not c.substantive:
                groups["by construction"].append(c)
            elif c.verdict == "differs":
                groups["differs"].append(c)
            else:
                groups["agrees"].append(c)

        def line(c: Claim, why: str = "") -> str:
            source = " (a reproduction's number)" if c.source == "reproduction" else ""
            target = "target" if c.source == "check" else ("reproduction" if c.source == "reproduction" else "paper")
            text = f"{c.figure}: {c.claim}{source} — {target} {c.paper_value}, ours {c.our_value}, {c.data}"
            return f"  - {text}" + (f"; {why}" if why else "") + "."

        titles = {"agrees": "Agrees (substantive)", "differs": "Differs (substantive)",
                  "not tested": "Not tested (a precondition failed at this scale)",
                  "by construction": "Holds or fails by construction", "checks": "Checks of our own implementation"}
        parts = []
        for key, items in groups.items():
            if not items:
                continue
            parts.append(f"- **{titles[key]}**, {len(items)} of {len(claims)}:")
            for c in items:
                why = {"not tested": f"not tested because not: {c.untested}",
                       "differs": c.note, "checks": f"{c.verdict}" + (f"; {c.note}" if c.note else ""), "by construction": (f"{c.verdict}; " if c.verdict else "")
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
    """The scorecard's kind of a claim: a check of ours, a reproduction's number, substantive or by construction."""
    if claim.source == "check":
        return "our check"
    if claim.source == "reproduction":
        return "a reproduction's number"
    if not claim.substantive:
        return "by construction"
    return "substantive"


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
