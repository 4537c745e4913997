"""The papers' numbers are data (lib/papers/*.yaml): every value says where it comes from, and no chapter types one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from lib.papers import paper, papers

BOOK = Path(__file__).resolve().parents[1] / "book"


def test_every_paper_file_loads_and_every_value_names_its_source():
    assert {"zhang2017", "masc"} <= set(papers())
    for name in papers():
        reference = paper(name)
        assert reference.entries, name
        for key in reference.keys():
            assert reference.source(key), (name, key)


def test_reading_values_tables_and_errors():
    Z = paper("zhang2017")
    assert Z["table1.mlp3x512.none.test"] == 52.39 and Z.source("table1.mlp3x512.none.test") == "Table 1"
    table = Z.table("table1.inception")
    assert set(table.level0) >= {"crop_wd", "crop", "wd", "none", "random_labels", "params"}
    with pytest.raises(KeyError, match="table1.inception"):
        Z["table1.inception.nothing"]
    with pytest.raises(FileNotFoundError, match="known"):
        paper("no-such-paper")


def test_a_value_without_a_source_is_rejected(tmp_path, monkeypatch):
    from lib import papers as module

    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({"paper": "bad", "values": {"x": {"value": 1.5}}}))
    monkeypatch.setattr(module, "PAPERS_DIR", tmp_path)
    module.paper.cache_clear()
    try:
        with pytest.raises(ValueError, match="source"):
            module.paper("bad")
    finally:
        module.paper.cache_clear()


def _numbers(value) -> list[float]:
    if isinstance(value, bool):
        return []
    if isinstance(value, (int, float)):
        return [value]
    if isinstance(value, (list, tuple)):
        return [n for v in value for n in _numbers(v)]
    if isinstance(value, dict):
        return [n for v in value.values() for n in _numbers(v)]
    return []


def _distinctive(number: float) -> bool:
    """A number specific enough that finding it in a chapter means it was typed there (89.05, 1,649,402)."""
    if isinstance(number, int):
        return abs(number) >= 1000 and number % 1000 != 0
    text = f"{number:.10g}"
    digits = re.sub(r"[^0-9]", "", text).strip("0")
    return len(digits) >= 4


def _spellings(number: float) -> list[str]:
    if isinstance(number, int):
        return [str(number), f"{number:_}", f"{number:,}"]
    text = f"{number:.10g}"
    return [text] + ([text + "0"] if "." in text and len(text.split(".")[1]) == 1 else [])


def _code_cells(source: str) -> str:
    return "\n".join(re.findall(r"```\{code-cell\}[^\n]*\n(.*?)\n```", source, re.S))


def test_no_chapter_types_a_papers_number():
    numbers = {n for name in papers() for key in paper(name).keys() for n in _numbers(paper(name)[key])
               if _distinctive(n)}
    assert 97.87 in numbers and 1_649_402 in numbers  # the scan covers the tables the chapters used to type
    found = []
    for chapter in sorted(BOOK.glob("*.md")):
        code = _code_cells(chapter.read_text())
        for number in numbers:
            for spelling in _spellings(number):
                if re.search(rf"(?<![\w.]){re.escape(spelling)}(?![\w])", code):
                    found.append((chapter.name, spelling))
    assert not found, f"paper numbers typed into chapters' code (read them from lib/papers instead): {found}"


def test_chapters_read_the_papers_numbers_from_the_data():
    """Through the harness (``Chapter(..., papers=[...])``, which reads lib/papers) or lib.papers directly."""
    for chapter, key in (("zhang-randomization", "zhang2017"), ("masc-decoding", "masc")):
        text = (BOOK / f"{chapter}.md").read_text()
        assert re.search(rf"papers=\[[^\]]*\"{key}\"", text) or "from lib.papers import paper" in text, chapter
        assert f'ch.papers["{key}"]' in text or f'paper("{key}")' in text, chapter
