"""The bibliography: every work the book cites is in references.bib and links to itself (a DOI, else a URL), and the
MASC paper is cited as published (Ketha and Ramaswamy, arXiv 2501.14687)."""

from __future__ import annotations

import re
from pathlib import Path

import pybtex.database
import yaml

REPO = Path(__file__).resolve().parents[1]
ENTRIES = pybtex.database.parse_file(REPO / "references.bib").entries


def cited_keys() -> set[str]:
    """Every key a chapter cites ({cite}`a,b`, {cite:t}`a`) or a paper's data file names (``cite:``)."""
    keys = set()
    for path in (REPO / "book").glob("*.md"):
        for group in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", path.read_text()):
            keys.update(k.strip() for k in group.split(","))
    for path in (REPO / "lib" / "papers").glob("*.yaml"):
        cite = yaml.safe_load(path.read_text()).get("cite")
        if cite:
            keys.add(cite)
    return keys


def test_every_cited_work_is_in_the_bibliography():
    keys = cited_keys()
    assert {"zhang2017rethinking", "masc2024decoding", "weng2019overfitted"} <= keys  # the search finds citations
    assert keys <= set(ENTRIES), sorted(keys - set(ENTRIES))


def test_every_reference_links_to_the_work():
    for key, entry in ENTRIES.items():
        doi, url = entry.fields.get("doi"), entry.fields.get("url")
        assert doi or url, f"{key} has neither a doi nor a url"
        assert doi is None or re.fullmatch(r"10\.\d{4,9}/\S+", doi), (key, doi)
        assert url is None or url.startswith("https://"), (key, url)


def test_the_masc_paper_is_cited_as_published():
    entry = ENTRIES["masc2024decoding"]
    assert [str(p) for p in entry.persons["author"]] == ["Ketha, Simran", "Ramaswamy, Venkatakrishnan"]
    assert entry.fields["url"] == "https://arxiv.org/abs/2501.14687" and entry.fields["year"] == "2025"
    assert not any("anonymous" in str(v).lower() or "review" in str(v).lower() for v in entry.fields.values())
