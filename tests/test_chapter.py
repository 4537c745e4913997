"""The chapter harness (lib.book.chapter): typed parameters, papers, claims whose section is the heading above the
registering cell, the thread setting and the opening box."""

from __future__ import annotations

import pytest
import torch

from lib.book import chapter as harness
from lib.book.chapter import Chapter, code_cells, heading_id, section_of_source
from lib.book.claims import data_size, rule
from lib.schemas import ChapterParams

MARKDOWN = """---
jupytext: {}
---

# A chapter

```{code-cell} ipython3
:tags: [remove-cell]

x = 1
```

## Figure 2: subspaces from the *true* labels

Some prose with a fence inside a directive:

````{admonition} Note
```python
# not a heading
y = 2
```
````

```{code-cell} ipython3
claims.value(figure="Figure 2", claim="c")
```

### Figures 16–18: dimensions, {cite}`zhang2017rethinking`

```{code-cell} ipython3
z = 3
```
"""


def test_code_cells_know_the_heading_above_them():
    cells = code_cells(MARKDOWN)
    assert [body for body, _ in cells] == ["x = 1", 'claims.value(figure="Figure 2", claim="c")', "z = 3"]
    assert [h for _, h in cells] == ["a-chapter", "figure-2-subspaces-from-the-true-labels",
                                     "figures-1618-dimensions-zhang2017rethinking"]
    assert section_of_source(MARKDOWN, "z = 3\n") == "figures-1618-dimensions-zhang2017rethinking"
    assert section_of_source(MARKDOWN, "not a cell of this chapter") == ""
    assert heading_id("Tables 2 and 3: the models memorize") == "tables-2-and-3-the-models-memorize"


def test_a_chapter_loads_typed_parameters_papers_and_threads(monkeypatch):
    threads = torch.get_num_threads()
    try:
        ch = Chapter("weng-double-descent", "smoke", {"torch_threads": 1}, papers=["belkin2019", "weng2019"],
                     paper="Belkin et al. 2019", data=lambda P: data_size("mnist", P.n_train), show_box=False)
        assert isinstance(ch.params, ChapterParams) and ch.params.scale == "smoke"
        assert ch.params.overridden == ["torch_threads"] and torch.get_num_threads() == 1
        assert set(ch.papers) == {"belkin2019", "weng2019"}
        assert ch.claims.data.ours == ch.params.n_train  # the default data size, from the loaded parameters
    finally:
        torch.set_num_threads(threads)
    with pytest.raises(KeyError, match="torch_thread"):
        Chapter("weng-double-descent", "smoke", {"torch_thread": 1}, show_box=False)


def test_a_claim_links_to_the_heading_above_the_cell_that_registers_it(monkeypatch):
    ch = Chapter("zhang-kernels", "smoke", papers=["zhang2017"], paper="Zhang et al. 2017", data=(100, 60_000),
                 show_box=False)
    source = ch.source.read_text()
    body, heading = next((b, h) for b, h in code_cells(source) if h and "claims" in b)
    monkeypatch.setattr(harness, "_running_cell", lambda: body)
    claim = ch.claims.trend(figure="Table 3", claim="a claim", paper_value="x", ours="y",
                            criterion=rule("a > b", "a exceeds b", a=2, b=1))
    assert claim.section == heading and claim.verdict == "same trend"
    explicit = ch.claims.trend(figure="Table 3", claim="another", paper_value="x", ours="y", section="setup",
                               criterion=rule("a > b", "a exceeds b", a=1, b=2))
    assert explicit.section == "setup" and explicit.verdict == "differs"
    monkeypatch.setattr(harness, "_running_cell", lambda: "")
    assert ch.claims.trend(figure="T", claim="outside a notebook", paper_value="x", ours="y",
                           criterion=rule("a > b", "a exceeds b", a=2, b=1)).section == ""
