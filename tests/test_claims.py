"""Claims: verdicts are computed from values, saved per chapter and scale, and gathered by the scorecard."""

from __future__ import annotations

import math

import pytest

from lib.book.claims import ClaimBook, load_claims, scorecard


def test_numeric_verdicts_follow_the_tolerance():
    book = ClaimBook("ch", "cpu", data=(500, 60_000))
    assert book.value("P", "Table 1", "a", 10.0, 11.5, tolerance=2.0).verdict == "reproduced"
    assert book.value("P", "Table 1", "b", 10.0, 12.5, tolerance=2.0).verdict == "differs"
    assert book.value("P", "Table 1", "c", 10.0, math.nan, tolerance=2.0).verdict == "differs"
    assert book.trend("P", "Fig 1", "d", "up", "up", holds=True).verdict == "same trend"
    assert book.trend("P", "Fig 1", "e", "up", "down", holds=False).verdict == "differs"
    table = book.table()
    assert list(table.columns) == ["paper", "ours", "verdict", "tolerance / rule", "measured on", "kind"]
    assert len(table) == 5 and set(table["measured on"]) == {"500 of 60,000 training images"}


def test_every_claim_states_its_data_size_and_kind():
    book = ClaimBook("ch", "cpu")
    with pytest.raises(ValueError, match="data"):
        book.value("P", "T", "no size", 1.0, 1.0, tolerance=0.1)
    full = book.value("P", "T", "full", 1.0, 1.0, tolerance=0.1, data=(60_000, 60_000))
    subset = book.trend("P", "F", "subset", "up", "up", holds=True, data=(500, 60_000), by_construction=True)
    assert full.data == "all 60,000 training images" and full.at_paper_size and full.substantive
    assert subset.data == "500 of 60,000 training images" and not subset.at_paper_size and not subset.substantive
    assert book.table().kind.tolist() == ["substantive", "by construction"]


def test_scorecard_counts_split_by_kind_and_data_size():
    from lib.book import scorecard as sc

    book = ClaimBook("ch", "cpu", data=(500, 60_000))
    book.value("P", "T", "a", 10.0, 10.5, tolerance=1.0)                       # substantive, subset, reproduced
    book.value("P", "T", "b", 10.0, 30.0, tolerance=1.0, data=(60_000, 60_000))  # substantive, full, differs
    book.value("P", "T", "c", 100.0, 100.0, tolerance=1.0, by_construction=True)  # by construction, reproduced
    import pandas as pd
    from dataclasses import asdict

    card = pd.DataFrame([asdict(c) for c in book.claims])
    counts = sc.counts(card, ["kind", "size"])
    assert counts.loc[("substantive", "subset"), "reproduced"] == 1
    assert counts.loc[("substantive", "paper's data size"), "differs"] == 1
    assert counts.loc[("by construction", "subset"), "reproduced"] == 1 and counts.total.sum() == 3
    lines = sc.summary_lines(card)
    assert lines[0].startswith("**2 substantive claims**") and "by construction" in lines[1]
    numeric = sc.numeric_claims(card).set_index("claim")
    assert numeric.loc["a", "offset"] == 0.5 and numeric.loc["b", "offset"] == 20.0 and numeric.loc["b", "shown"] == 10
    html = sc.claims_table(card)
    assert html.count("<tr data-chapter") == 3 and 'data-verdict="differs"' in html and "<script>" in html


def test_saved_claims_are_gathered_per_scale(tmp_path, monkeypatch):
    monkeypatch.setenv("LIB_CLAIMS_DIR", str(tmp_path))
    first = ClaimBook("alpha", "cpu", data=(1, 1))
    first.value("P", "T", "x", 1.0, 1.0, tolerance=0.1)
    first.save()
    second = ClaimBook("beta", "cpu", data=(1, 1))
    second.trend("P", "F", "y", "up", "up", holds=True, section="some-section")
    second.save()
    ClaimBook("gamma", "smoke").save()
    card = scorecard("cpu")
    assert list(card.chapter) == ["alpha", "beta"] and set(card.scale) == {"cpu"}
    assert {"chapter", "claim", "paper_value", "our_value", "scale", "verdict"} <= set(card.columns)
    second.value("P", "F", "z", 2.0, 3.0, tolerance=0.5)  # adding a claim adds its row
    second.save()
    assert len(load_claims("cpu")) == 3 and scorecard("smoke").empty
