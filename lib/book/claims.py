"""Paper-vs-ours claims: chapters register them, the scorecard collects them.

A chapter creates a :class:`ClaimBook`, adds one :class:`Claim` per quantitative statement of
the paper it reproduces (a table cell, a number in the text, a trend a figure shows) with our
value computed from its runs, and saves the book. The verdict is computed, never typed:

- a numeric claim with a ``tolerance`` is *reproduced* when |ours − paper| ≤ tolerance, else it
  *differs*;
- a trend claim (``holds`` given) shows the *same trend* when it holds, else it *differs*.

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


def _format(value) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.4g}"
    return str(value)


@dataclass
class ClaimBook:
    """The claims of one chapter at one scale."""

    chapter: str
    scale: str
    claims: list[Claim] = field(default_factory=list)

    def value(self, paper: str, figure: str, claim: str, paper_value: float, our_value: float, tolerance: float,
              section: str = "", unit: str = "") -> Claim:
        """A numeric claim: reproduced when |ours − paper| ≤ tolerance."""
        ok = not math.isnan(our_value) and abs(our_value - paper_value) <= tolerance
        return self._add(paper, figure, claim, f"{_format(paper_value)}{unit}", f"{_format(our_value)}{unit}",
                         "reproduced" if ok else "differs", f"within ±{_format(tolerance)}{unit}", section)

    def trend(self, paper: str, figure: str, claim: str, paper_value: str, our_value: str, holds: bool,
              section: str = "", rule: str = "the trend holds in our runs") -> Claim:
        """A qualitative claim (a trend, an ordering): same trend when ``holds``."""
        return self._add(paper, figure, claim, paper_value, our_value, "same trend" if holds else "differs", rule, section)

    def _add(self, paper, figure, claim, paper_value, our_value, verdict, rule, section) -> Claim:
        item = Claim(self.chapter, paper, figure, claim, paper_value, our_value, self.scale, verdict, rule, section)
        self.claims.append(item)
        return item

    def table(self) -> pd.DataFrame:
        """The chapter's claims as a table for the page."""
        frame = pd.DataFrame([asdict(c) for c in self.claims])
        if frame.empty:
            return frame
        return frame[["figure", "claim", "paper_value", "our_value", "verdict", "rule"]].rename(columns={
            "paper_value": "paper", "our_value": "ours", "rule": "tolerance / rule"}).set_index(["figure", "claim"])

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
