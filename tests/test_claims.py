"""Claims: verdicts are computed from values, saved per chapter and scale, and gathered by the scorecard."""

from __future__ import annotations

import math

from lib.book.claims import ClaimBook, load_claims, scorecard


def test_numeric_verdicts_follow_the_tolerance():
    book = ClaimBook("ch", "cpu")
    assert book.value("P", "Table 1", "a", 10.0, 11.5, tolerance=2.0).verdict == "reproduced"
    assert book.value("P", "Table 1", "b", 10.0, 12.5, tolerance=2.0).verdict == "differs"
    assert book.value("P", "Table 1", "c", 10.0, math.nan, tolerance=2.0).verdict == "differs"
    assert book.trend("P", "Fig 1", "d", "up", "up", holds=True).verdict == "same trend"
    assert book.trend("P", "Fig 1", "e", "up", "down", holds=False).verdict == "differs"
    table = book.table()
    assert list(table.columns) == ["paper", "ours", "verdict", "tolerance / rule"] and len(table) == 5


def test_saved_claims_are_gathered_per_scale(tmp_path, monkeypatch):
    monkeypatch.setenv("LIB_CLAIMS_DIR", str(tmp_path))
    first = ClaimBook("alpha", "cpu")
    first.value("P", "T", "x", 1.0, 1.0, tolerance=0.1)
    first.save()
    second = ClaimBook("beta", "cpu")
    second.trend("P", "F", "y", "up", "up", holds=True, section="some-section")
    second.save()
    ClaimBook("gamma", "smoke").save()
    card = scorecard("cpu")
    assert list(card.chapter) == ["alpha", "beta"] and set(card.scale) == {"cpu"}
    assert {"chapter", "claim", "paper_value", "our_value", "scale", "verdict"} <= set(card.columns)
    second.value("P", "F", "z", 2.0, 3.0, tolerance=0.5)  # adding a claim adds its row
    second.save()
    assert len(load_claims("cpu")) == 3 and scorecard("smoke").empty
