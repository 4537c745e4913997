"""Claims: verdicts are computed from checkable criteria and preconditions, saved per chapter and scale, and
gathered by the scorecard."""

from __future__ import annotations

import math
from dataclasses import asdict

import pandas as pd
import pytest

from lib.book.claims import (ClaimBook, DataSize, above_chance, data_size, enough, evaluate, fitted, holds,
                             load_claims, reached, rule, scorecard)


def book(**kwargs) -> ClaimBook:
    return ClaimBook("ch", "cpu", data=kwargs.pop("data", (500, 60_000)), paper="P", **kwargs)


def test_numeric_verdicts_follow_the_tolerance():
    b = book()
    assert b.value(figure="Table 1", claim="a", paper_value=10.0, ours=11.5, tolerance=2.0).verdict == "reproduced"
    assert b.value(figure="Table 1", claim="b", paper_value=10.0, ours=12.5, tolerance=2.0).verdict == "differs"
    assert b.value(figure="Table 1", claim="c", paper_value=10.0, ours=math.nan, tolerance=2.0).verdict == "differs"
    up = b.trend(figure="Fig 1", claim="d", paper_value="up", ours="+0.8", criterion=rule("rho >= 0.7", rho=0.8))
    down = b.trend(figure="Fig 1", claim="e", paper_value="up", ours="-0.2", criterion=rule("rho >= 0.7", rho=-0.2))
    assert (up.verdict, down.verdict) == ("same trend", "differs")
    table = b.table()
    assert list(table.columns) == ["paper", "ours", "verdict", "criterion", "measured on", "kind"]
    assert len(table) == 5 and set(table["measured on"]) == {
        "500 of 60,000 training images; departs from the paper's protocol in protocol not stated"}
    assert "rho >= 0.7 (rho = 0.8)" in table.loc[("Fig 1", "d"), "criterion"]


def test_a_failed_precondition_gives_not_tested_whatever_the_criterion():
    b = book()
    untrained = b.trend(figure="F", claim="error rises", paper_value="rises", ours="flat",
                        criterion=rule("rise >= 0", rise=0.0), requires=[fitted(0.12, 0.99), enough(5, 3, "levels")])
    assert untrained.verdict == "not tested" and untrained.untested == "the model fitted its training labels"
    numeric = b.value(figure="T", claim="acc", paper_value=50.0, ours=50.0, tolerance=1.0,
                      requires=[above_chance(0.11, 0.1)])
    assert numeric.verdict == "not tested" and "FAILED" in numeric.rule
    nan = b.trend(figure="F", claim="n", paper_value="x", ours="x", criterion=rule("a >= 0", a=1.0),
                  requires=[reached(math.nan, 10)])
    assert nan.verdict == "not tested"  # a missing measurement never passes a precondition
    ok = b.trend(figure="F", claim="m", paper_value="x", ours="x", criterion=rule("a >= 0", a=1.0),
                 requires=[fitted(1.0, 0.99), holds(True, "ran"), reached(30, 30)])
    assert ok.verdict == "same trend" and ok.untested == ""
    assert [c.verdict for c in b.claims] == [c.recompute() for c in b.claims]


def test_criteria_are_checkable_expressions_and_typos_fail_at_once():
    assert evaluate("abs(a - b) <= t and not c", {"a": 1.0, "b": 1.5, "t": 0.5, "c": False})
    assert not evaluate("a >= 0", {"a": float("nan")}) and not evaluate("a < 0", {"a": float("nan")})
    assert evaluate("min(a, b) > 1", {"a": 2, "b": 3}) and evaluate("0 < a < 2", {"a": 1})
    with pytest.raises(ValueError, match="not among its values"):
        rule("rho >= 0.7", rh0=0.8)
    with pytest.raises(ValueError, match="not allowed"):
        evaluate("__import__('os')", {})
    with pytest.raises(TypeError):
        rule("a > 1", a="big")


def test_kind_needs_a_reason_and_checks_are_not_the_papers_claims():
    b = book()
    with pytest.raises(ValueError, match="by_construction must name a reason"):
        b.value(figure="T", claim="x", paper_value=10.0, ours=10.0, tolerance=1.0, by_construction="yes")
    chance = b.value(figure="T", claim="random labels: test", paper_value=10.0, ours=10.2, tolerance=1.0,
                     by_construction="chance")
    assert not chance.substantive and chance.construction == "chance"
    check = b.check(what="solvers agree", target="same predictions", ours="99.9%",
                    criterion=rule("same >= 0.999", same=0.9995))
    reproduction = b.value(figure="notes", claim="someone's number", paper_value=54.3, ours=60.0, tolerance=5.0,
                           source="reproduction", paper="a public reproduction")
    assert check.source == "check" and check.verdict == "same trend" and reproduction.paper == "a public reproduction"
    assert b.table().kind.tolist() == ["confirmation (chance)", "our check", "a reproduction's number"]
    closing = b.closing()
    assert "Checks of our own implementation" in closing and "a reproduction's number" in closing
    assert "solvers agree" in closing and "random labels: test" in closing


def test_every_claim_states_its_data_size_from_the_data_sets_sizes():
    b = ClaimBook("ch", "cpu", paper="P")
    with pytest.raises(ValueError, match="data"):
        b.value(figure="T", claim="no size", paper_value=1.0, ours=1.0, tolerance=0.1)
    full = b.value(figure="T", claim="full", paper_value=1.0, ours=1.0, tolerance=0.1, data=data_size("mnist", None))
    subset = b.value(figure="T", claim="sub", paper_value=1.0, ours=1.0, tolerance=0.1, data=data_size("cifar10", 5000))
    split = data_size("mnist", 500, split="theunissen")
    assert full.data == "all 60,000 training images" and full.at_paper_size
    assert subset.data == "5,000 of 50,000 training images" and not subset.at_paper_size
    assert split == DataSize(500, 55_000) and DataSize(100, 100, "random vectors").text() == "all 100 random vectors"


def test_closing_is_written_from_the_verdicts():
    b = book()
    b.value(figure="T", claim="good", paper_value=10.0, ours=10.5, tolerance=1.0)
    b.value(figure="T", claim="bad", paper_value=10.0, ours=30.0, tolerance=1.0, note="subsets generalize worse")
    b.trend(figure="F", claim="untested", paper_value="x", ours="y", criterion=rule("a > 0", a=1),
            requires=[fitted(0.2, 0.99)])
    text = b.closing()
    agrees, differs, untested = (text.index(h) for h in ("Agrees", "Differs", "Not tested"))
    assert agrees < text.index("good") < differs < text.index("bad") < text.index("subsets generalize worse") < untested
    assert text.index("untested") > untested and "fitted its training labels" in text
    b.claims[1] = b.claims[0]  # another outcome, another text
    assert "Differs" not in b.closing()


def test_scorecard_counts_split_by_kind_and_data_size():
    from lib.book import scorecard as sc

    b = book()
    b.value(figure="T", claim="a", paper_value=10.0, ours=10.5, tolerance=1.0)                      # subset, reproduced
    b.value(figure="T", claim="b", paper_value=10.0, ours=30.0, tolerance=1.0, data=(60_000, 60_000))  # full, differs
    b.value(figure="T", claim="c", paper_value=10.0, ours=10.0, tolerance=1.0, by_construction="chance")
    b.trend(figure="F", claim="d", paper_value="up", ours="?", criterion=rule("a > 0", a=1),
            requires=[fitted(0.1, 0.99)])                                                             # not tested
    b.check(what="e", target="t", ours="o", criterion=rule("a > 0", a=1))
    card = pd.DataFrame([asdict(c) for c in b.claims])
    counts = sc.counts(card, ["kind", "size"])
    assert counts.loc[("substantive", "subset"), "reproduced"] == 1
    assert counts.loc[("substantive", "subset"), "not tested"] == 1
    assert counts.loc[("substantive", "paper's data size"), "differs"] == 1
    assert counts.loc[("by construction", "subset"), "reproduced"] == 1 and counts.total.sum() == 5
    lines = sc.summary_lines(card)
    # the headline: tests at the protocol (none states its protocol here), other tests, confirmations, not tested
    assert lines[0] == ("**0 claims of the papers tested at their protocol: 0 reproduced, 0 same trend, 0 differs**; "
                        "2 more tested departing from it (1 reproduced, 0 same trend, 1 differs); 1 confirmations "
                        "(could only agree); 1 not tested; 0 extensions of ours.")
    # the next line counts what was measured at the paper's data size: claim b alone, which differs
    assert lines[1].startswith("**1 substantive claims were measured at the paper's data size** (1 at `cpu`")
    assert "0 reproduce or hold in trend, 1 differ, 0 not tested" in lines[1]
    assert lines[2].startswith("**3 substantive claims of the papers**") and "1 not tested" in lines[2]
    assert any("checks of our own implementation" in line for line in lines)
    assert set(sc.papers_claims(card).claim) == {"a", "b", "c", "d"}
    # the same claim recorded at `full` too counts once, at the larger scale, with that scale's verdict
    full = ClaimBook("ch", "full", data=(60_000, 60_000), paper="P")
    full.value(figure="T", claim="b", paper_value=10.0, ours=10.2, tolerance=1.0)
    both = pd.concat([card, pd.DataFrame([asdict(c) for c in full.claims])], ignore_index=True)
    counted = sc.at_paper_size(both)
    assert list(counted.scale) == ["full"] and list(counted.verdict) == ["reproduced"]
    # ... while the summary below the headline counts verdicts, one per scale, and says how they split
    assert sc.by_scale(card) == ""
    lines = sc.summary_lines(both)
    assert lines[2].startswith("**4 verdicts on substantive claims of the papers** (3 at `cpu`, 1 at `full`; a claim "
                               "registered at two scales has a verdict at each)")
    assert "paper's data size: 1 reproduced, 0 same trend, 1 differs" in lines[2]
    assert sc.size_line(both).startswith("**1 substantive claims were measured at the paper's data size** (1 at `full`")
    assert "1 reproduce or hold in trend, 0 differ" in sc.size_line(both)
    assert "2 more tested departing from it (2 reproduced" in sc.headline(both)  # b once, at `full`
    numeric = sc.numeric_claims(card).set_index("claim")
    assert numeric.loc["a", "offset"] == 0.5 and numeric.loc["b", "offset"] == 20.0 and numeric.loc["b", "shown"] == 10
    html = sc.claims_table(card)
    assert html.count("<tr data-chapter") == 5 and 'data-verdict="not tested"' in html and "<script>" in html
    assert "abs(ours - paper) &lt;= tolerance" in html and "not tested: the model fitted" in html


def test_saved_claims_are_gathered_per_scale_and_their_verdicts_recompute(tmp_path, monkeypatch):
    monkeypatch.setenv("LIB_CLAIMS_DIR", str(tmp_path))
    first = ClaimBook("alpha", "cpu", data=(1, 1), paper="P")
    first.value(figure="T", claim="x", paper_value=1.0, ours=1.0, tolerance=0.1)
    first.save()
    second = ClaimBook("beta", "cpu", data=(1, 1), paper="P")
    second.trend(figure="F", claim="y", paper_value="up", ours="up", criterion=rule("a > 0", a=1),
                 requires=[fitted(0.5, 0.9)], section="some-section")
    second.save()
    ClaimBook("gamma", "smoke", paper="P").save()
    card = scorecard("cpu")
    assert list(card.chapter) == ["alpha", "beta"] and set(card.scale) == {"cpu"}
    assert list(card.verdict) == ["reproduced", "not tested"]
    assert [c.recompute() for c in load_claims("cpu")] == list(card.verdict)
    second.value(figure="F", claim="z", paper_value=2.0, ours=3.0, tolerance=0.5)  # adding a claim adds its row
    second.save()
    assert len(load_claims("cpu")) == 3 and scorecard("smoke").empty
