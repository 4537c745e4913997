"""Paper-vs-ours claims: chapters register them, the scorecard collects them.

A chapter creates a :class:`ClaimBook`, adds one :class:`Claim` per quantitative statement of
the paper it reproduces (a table cell, a number in the text, a trend a figure shows) with our
value computed from its runs, and saves the book. The verdict is computed, never typed:

- a numeric claim with a ``tolerance`` is *reproduced* when |ours − paper| ≤ tolerance, else it
  *differs*;
- a trend claim (``holds`` given) shows the *same trend* when it holds, else it *differs*.

Every claim also says what it was measured on, relative to the paper (``data=(ours, paper)``, numbers of training
images: "500 of 60,000 training images" or "all 60,000"), so the scorecard can split claims measured at the paper's
data size from claims measured on subsets; and whether it is *substantive* or holds *by construction*
(``by_construction=True``): a training accuracy where training runs until it reaches the paper's own threshold, or
chance-level test accuracy on random labels, agrees with the paper whatever the network does. A chapter usually
gives its data size once, ``ClaimBook(chapter, scale, data=(n, N))``, and overrides it per claim where it differs.

Saved claims live in ``$LIB_CLAIMS_DIR/<scale>/<chapter>.json`` (default ``<repo>/_build/claims``);
the book build points that variable into its build folder, and :func:`scorecard` reads them all.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

REPO_ROOT = Path(__file__).resolve().parents[2]
VERDICTS = ("reproduced", "same trend", "differs")


def claims_dir() -> Path:
    return Path(os.environ.get("LIB_CLAIMS_DIR", REPO_ROOT / "_build" / "claims"))


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
    rule: str
    section: str = ""
    data: str = ""  # what it was measured on, relative to the paper (DataSize.text)
    n_ours: int | None = None
    n_paper: int | None = None
    at_paper_size: bool = False
    substantive: bool = True  # False: holds by construction (a stopping threshold, chance on random labels)


def _format(value) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.4g}"
    return str(value)


@dataclass
class ClaimBook:
    """The claims of one chapter at one scale."""

    chapter: str
    scale: str
    data: DataSize | tuple | None = None  # the default data size of this chapter's claims
    claims: list[Claim] = field(default_factory=list)

    def value(self, paper: str, figure: str, claim: str, paper_value: float, our_value: float, tolerance: float,
              section: str = "", unit: str = "", data=None, by_construction: bool = False) -> Claim:
        """A numeric claim: reproduced when |ours − paper| ≤ tolerance."""
        ok = not math.isnan(our_value) and abs(our_value - paper_value) <= tolerance
        return self._add(paper, figure, claim, f"{_format(paper_value)}{unit}", f"{_format(our_value)}{unit}",
                         "reproduced" if ok else "differs", f"within ±{_format(tolerance)}{unit}", section, data,
                         by_construction)

    def trend(self, paper: str, figure: str, claim: str, paper_value: str, our_value: str, holds: bool,
              section: str = "", rule: str = "the trend holds in our runs", data=None,
              by_construction: bool = False) -> Claim:
        """A qualitative claim (a trend, an ordering): same trend when ``holds``."""
        return self._add(paper, figure, claim, paper_value, our_value, "same trend" if holds else "differs", rule,
                         section, data, by_construction)

    def _add(self, paper, figure, claim, paper_value, our_value, verdict, rule, section, data, by_construction) -> Claim:
        data = data if data is not None else self.data
        if data is None:
            raise ValueError(f"claim {claim!r} of {self.chapter!r} does not say what data it was measured on: pass "
                             "data=(ours, paper) to the claim or to ClaimBook")
        size = DataSize.of(data)
        item = Claim(self.chapter, paper, figure, claim, paper_value, our_value, self.scale, verdict, rule, section,
                     size.text(), size.ours, size.paper, size.at_paper_size, not by_construction)
        self.claims.append(item)
        return item

    def table(self) -> pd.DataFrame:
        """The chapter's claims as a table for the page."""
        frame = pd.DataFrame([asdict(c) for c in self.claims])
        if frame.empty:
            return frame
        frame["kind"] = frame.substantive.map({True: "substantive", False: "by construction"})
        return frame[["figure", "claim", "paper_value", "our_value", "verdict", "rule", "data", "kind"]].rename(columns={
            "paper_value": "paper", "our_value": "ours", "rule": "tolerance / rule", "data": "measured on"}
        ).set_index(["figure", "claim"])

    def save(self) -> Path:
        path = claims_dir() / self.scale / f"{self.chapter}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps([asdict(c) for c in self.claims], indent=1))
        os.replace(temporary, path)
        return path


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
