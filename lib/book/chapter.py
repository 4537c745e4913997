"""The chapter harness: what every computational chapter does before and after its own work, in one object.

A chapter's second cell is::

    from lib.book.chapter import Chapter

    ch = Chapter("zhang-kernels", scale, overrides, papers=["zhang2017"], reproduces="Section 5 and Table 3 of ...")
    P, zhang = ch.params, ch.papers["zhang2017"]

which, in order: refuses a papermill parameter the notebook does not have (``-p scal smoke``, or ``-p max_epochs 3``
instead of ``overrides``: :func:`check_injected_parameters`), checks and loads the typed parameters
(:func:`lib.params.load_params`: a typo or a bad value fails here, before anything is loaded, in one line that names
the key and the nearest known one), shows the opening box (:mod:`lib.book.opening`), applies the thread setting
(``torch_threads``, where the chapter's parameters have one and it is not 0), sets up the plots
(:func:`lib.book.plots.setup`), reads the papers' numbers (:func:`lib.papers.paper`) and opens the chapter's claims
(:class:`lib.book.claims.ClaimBook`, keyword-only). A claim registered without ``section=`` links to the heading
above the cell that registers it, found in ``book/<chapter>.md``. The last cell is::

    ch.close(runs)   # saves the claims, fills in the box's compute time; returns the closing paragraph

Scales shown together: a chapter executed with ``$LIB_RECORD`` (``python -m lib run CHAPTER --scale full --record``)
writes, at ``close``, its claims, the frames it passed to :meth:`Chapter.publish` and the keys of its runs into the
committed results store (:mod:`lib.results`). Executed at another scale, :meth:`Chapter.recorded` reads that record
back, so the page draws the recorded scale's frames in its own charts and lists its claims (registered at their own
scale, so the scorecard counts both) without training anything.

Chapters keep only what is specific to them.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict
from typing import Iterable, Sequence

import pandas as pd


from lib.book.claims import ClaimBook
from lib.book.opening import Opening, open_chapter
from lib.params import has_params, load_params
from lib.settings import REPO_ROOT

BOOK_DIR = REPO_ROOT / "book"
_FENCE = re.compile(r"^(`{3,}|~{3,})")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def heading_id(title: str) -> str:
    """The HTML id Sphinx gives a heading (docutils' ``make_id``): ``"Figure 2: subspaces"`` → ``"figure-2-subspaces"``."""
    from docutils.nodes import make_id

    text = re.sub(r"\{[a-z:]+\}`([^`<]*)(?:<[^>]*>)?`", r"\1", title)  # {cite}`x`, {doc}`text <target>` → their text
    text = re.sub(r"[*_`$]", "", text)
    return make_id(text)


def code_cells(markdown: str) -> list[tuple[str, str]]:
    """Each ``{code-cell}`` of a MyST chapter as (its source, the id of the heading above it), in order."""
    cells, heading, lines = [], "", markdown.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = _FENCE.match(line)
        if fence:
            marker, is_code = fence.group(1), "{code-cell}" in line
            body = []
            i += 1
            while i < len(lines) and not lines[i].startswith(marker):
                body.append(lines[i])
                i += 1
            if is_code:
                while body and re.match(r"^:[\w-]+:", body[0]):  # the cell's options (:tags: ...)
                    body.pop(0)
                cells.append(("\n".join(body).strip(), heading))
        else:
            match = _HEADING.match(line)
            if match:
                heading = heading_id(match.group(2))
        i += 1
    return cells


def section_of_source(markdown: str, source: str) -> str:
    """The id of the heading above the code cell whose source is ``source`` ("" if no cell matches)."""
    source = source.strip()
    if not source:
        return ""
    cells = code_cells(markdown)
    for body, heading in cells:
        if body == source:
            return heading
    first = source.splitlines()[0]
    matches = [heading for body, heading in cells if first and first in body]
    return matches[0] if len(matches) == 1 else ""


#: The names a chapter's ``parameters`` cell defines, which papermill (``-p NAME VALUE``) may set.
NOTEBOOK_PARAMETERS = ("scale", "overrides")


def injected_parameters() -> list[str]:
    """The names papermill set in this kernel: the assignments of its injected cell (the last cell run whose source
    starts with papermill's ``# Parameters`` comment); empty outside papermill or IPython."""
    import ast

    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency of the book
        return []
    shell = get_ipython()
    for source in reversed(shell.user_ns.get("In", []) if shell is not None else []):
        if source.startswith("# Parameters\n"):
            try:
                tree = ast.parse(source)
            except SyntaxError:
                return []
            return [target.id for node in tree.body if isinstance(node, ast.Assign)
                    for target in node.targets if isinstance(target, ast.Name)]
    return []


def check_injected_parameters(name: str, injected: Sequence[str] | None = None) -> None:
    """Fail (:class:`lib.schemas.UnknownParameter`, one line) if papermill set a name that is not one of the
    notebook's parameters (:data:`NOTEBOOK_PARAMETERS`), instead of running the chapter with it ignored: a typo
    (``-p scal smoke``) names the nearest parameter; a key of the chapter's parameters file (``-p max_epochs 3``)
    says to give it through ``overrides``. ``injected``: the names set (default :func:`injected_parameters`)."""
    from lib.params import raw_params
    from lib.schemas import UnknownParameter, did_you_mean

    injected = injected_parameters() if injected is None else injected
    unknown = [n for n in injected if n not in NOTEBOOK_PARAMETERS and not n.startswith("PAPERMILL_")]
    if not unknown:
        return
    keys = list(raw_params(name, "paper")) if has_params(name) else []
    problems = []
    for key in unknown:
        if key in keys:
            problems.append(f"papermill parameter {key}: the notebook's parameters are {' and '.join(NOTEBOOK_PARAMETERS)}; "
                            f"{key} is a key of the chapter's parameters, so give it through overrides: "
                            f"-y 'overrides: {{{key}: ...}}'")
        else:
            problems.append(f"papermill parameter {key}: not a parameter of {name!r}"
                            f"{did_you_mean(key, NOTEBOOK_PARAMETERS) or did_you_mean(key, keys)}; "
                            f"its parameters are {' and '.join(NOTEBOOK_PARAMETERS)}")
    raise UnknownParameter("; ".join(problems))


def _running_cell() -> str:
    """The source of the cell IPython is executing now ("" outside IPython)."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency of the book
        return ""
    shell = get_ipython()
    history = shell.user_ns.get("In", []) if shell is not None else []
    return history[-1] if history else ""


class Chapter:
    """One execution of ``book/<name>.md`` at ``scale`` with ``overrides``: its parameters, papers, claims and box.

    ``papers``: names of :mod:`lib.papers` files (``"zhang2017"``), read into :attr:`papers`; ``paper``: how the
    chapter's claims name their paper by default (``"Zhang et al. 2017"``); ``data``: the default data size of its
    claims (:func:`lib.book.claims.data_size`; each claim may give its own), or a function of the parameters that
    returns it (``data=lambda P: data_size("mnist", P.n_train)``)."""

    def __init__(self, name: str, scale: str = "cpu", overrides: dict | None = None, *, papers: Sequence[str] = (),
                 reproduces: str = "", paper: str = "", data=None,
                 show_box: bool = True):
        from lib.book import plots
        from lib.papers import paper as read_paper

        check_injected_parameters(name)  # papermill's -p of a name the notebook does not have: an error, not ignored
        self.name, self.scale, self.overrides = name, scale, dict(overrides or {})
        self.params = load_params(name, scale, self.overrides) if has_params(name) else None
        self.opening: Opening | None = open_chapter(name, scale, self.overrides, reproduces) if show_box else None
        threads = getattr(self.params, "torch_threads", 0) if self.params is not None else 0
        if threads:
            import torch

            torch.set_num_threads(threads)
        plots.setup()
        self.papers = {key: read_paper(key) for key in papers}
        self.source = BOOK_DIR / f"{name}.md"
        if callable(data):  # a default data size that depends on the parameters: data=lambda P: data_size(...)
            data = data(self.params)
        self.claims = ClaimBook(name, scale, data=data, paper=paper, section_of=self.current_section)
        self.published: dict[str, pd.DataFrame] = {}
        self.records: dict = {}
        self.refused: dict[str, str] = {}  # scale -> why its record was refused (lib.results.RecordError)
        self._started = time.perf_counter()

    def publish(self, name: str, frame: pd.DataFrame) -> pd.DataFrame:
        """Keep ``frame`` under ``name`` for the pages of other scales: recorded with the chapter's claims when it is
        executed with ``--record`` (:func:`lib.results.record_chapter`). Returns ``frame``."""
        self.published[name] = frame.reset_index(drop=True)
        return frame

    def recorded(self, scale: str = "full"):
        """What this chapter recorded at ``scale`` in the results store (:class:`lib.results.ChapterRecord`), its
        claims adopted into this page's claims (at their own scale); ``None`` when nothing is recorded there, or when
        this page is that scale (it computes its own). A damaged or foreign record raises
        :class:`lib.results.RecordError`, which is warned about and kept in :attr:`refused` (the page says why);
        the record is then ``None``."""
        from lib import results

        if scale == self.scale:
            return None
        if scale not in self.records:
            try:
                record = results.chapter_record(self.name, scale)
            except results.RecordError as error:  # refused: the page says so (recorded.intro) and shows nothing of it
                import warnings

                warnings.warn(str(error), stacklevel=2)
                self.refused[scale] = str(error)
                record = None
            if record is not None:
                self.claims.adopt(record.claims)
            self.records[scale] = record
        return self.records[scale]

    def current_section(self) -> str:
        """The id of the heading above the cell executing now (claims link there)."""
        if not self.source.is_file():
            return ""
        return section_of_source(self.source.read_text(), _running_cell())

    def close(self, *runs: pd.DataFrame | Iterable) -> str:
        """Save the claims, fill in the opening box's compute time (with the training time of ``runs``, the
        chapter's :func:`lib.runs.run_grid` tables) and return the closing paragraph computed from the verdicts."""
        from lib import results, settings
        from lib.runs import USED_RUNS

        self.claims.save()
        if settings.record_scale() == self.scale:
            own = [c for c in self.claims.claims if c.scale == self.scale]
            results.record_chapter(self.scale, self.name, claims=[asdict(c) for c in own],
                                   frames={name: results.frame_payload(frame) for name, frame in self.published.items()},
                                   runs=list(USED_RUNS), seconds=time.perf_counter() - self._started,
                                   overrides=self.overrides)
        if self.opening is not None:
            self.opening.close(*runs)
        return self.claims.closing()
