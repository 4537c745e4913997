"""Prose that cannot go stale: numbers typed into a chapter's Markdown must be the papers' or the protocol's."""

from __future__ import annotations

from pathlib import Path

import pytest

from lib.book import prose

BOOK = Path(__file__).resolve().parents[1] / "book"
CHAPTERS = sorted(p.stem for p in BOOK.glob("*.md"))


def test_the_checker_finds_a_typed_result_and_lets_the_papers_numbers_through():
    text = ("The paper's small AlexNet reaches 76.07% (Table 1, 2017). With our runs it came out at 44.9% "
            "after 1.37 times as many steps.\n\n```{code-cell} ipython3\nx = 12.345\n```\n")
    found = prose.stale_sentences(text, "zhang-randomization")
    assert [number for number, _ in found] == ["44.9", "1.37"]
    assert prose.stale_sentences("Learning rate 0.01, batch size 128, decayed by 0.95.", "zhang-randomization") == []
    assert prose.stale_sentences("With $n = 4{,}000$ and `lr=0.123` in code.", "zhang-randomization") == []


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_no_chapter_types_a_result_into_its_prose(chapter):
    found = prose.stale_sentences((BOOK / f"{chapter}.md").read_text(), chapter)
    assert not found, "\n".join(f"{number!r}: {sentence[:160]}" for number, sentence in found)
