"""No placeholder reaches readers: lib.book.prose finds "NaN", "+nan", "nanx", reasons cut off after their colon and run
hashes as row labels in what a reader sees of an executed chapter (the book test runs it on every page of the smoke
book, tests/test_book.py), and lets words through."""

from __future__ import annotations

from pathlib import Path

import nbformat

from lib.book import prose

REPO = Path(__file__).resolve().parents[1]


def test_placeholders_are_found_in_what_a_reader_sees():
    text = ("rank correlation +nan; small factor nanx; <td>NaN</td>; not tested because not: ; "
            "<th>0011e400270041d9fe8c</th>")
    kinds = [kind for kind, _ in prose.placeholders(text)]
    assert kinds == ["NaN", "NaN", "NaN", "a reason cut off after its colon", "a run hash as a row label"]
    words = ("financial nanoseconds, infinite: no run at p = 1 because none converged. Store entry "
             "runs/0011e400270041d9fe8c.json")
    assert prose.placeholders(words) == []


def test_shown_outputs_are_what_the_page_renders():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("x", outputs=[nbformat.v4.new_output(
            "display_data", data={"text/markdown": "ratio 1.5x", "text/html": "<b>ratio nanx</b>"})]),
        nbformat.v4.new_code_cell("y", metadata={"tags": ["remove-cell"]}, outputs=[
            nbformat.v4.new_output("stream", text="nan")]),
        nbformat.v4.new_code_cell("z", outputs=[nbformat.v4.new_output("stream", text="mean +nan\n")]),
    ])
    assert prose.shown_outputs(nb) == [(0, "ratio 1.5x"), (2, "mean +nan\n")]  # the page ranks Markdown first
    assert prose.notebook_placeholders(nb) == ["cell 2: NaN: mean +nan"]


def test_a_recorded_scales_runs_are_named_by_what_they_trained(monkeypatch):
    """The committed `full` record of zhang-randomization: its runs table names each row by model and corruption, and
    keeps the store key as the entry's file, never as the row's label."""
    from lib import results
    from lib.book import recorded

    monkeypatch.setenv("LIB_RESULTS_DIR", str(REPO / "results"))
    record = results.chapter_record("zhang-randomization", "full")
    table = recorded.runs_table(record)
    assert table.index.names == ["model", "corruption"] and len(table) == len(record.runs)
    assert set(table["store entry"]) == {f"runs/{key}.json" for key in record.runs}
    assert prose.placeholders(table.to_html()) == []
