"""The box that opens every computational chapter: what it reproduces, at which scale, in how much compute time,
and the command that runs it again.

A chapter calls :func:`open_chapter` in the cell after its ``parameters`` cell (tagged ``remove-input``, so the
reader sees the box and not the call) and :meth:`Opening.close` in its last cell::

    opening = open_chapter("zhang-randomization", scale, overrides,
                           reproduces="Figure 1 and Table 1 of {cite:t}`zhang2017rethinking`")
    ...
    opening.close(summary)  # the run tables (lib.runs) of the chapter's training runs

The time is only known at the end, so the box is shown with a display id and :meth:`Opening.close` replaces it in
place (Jupyter's ``update_display``, which papermill and nbclient write into the executed notebook). The box thus
always states the execution that produced the notebook: built by ``make book`` (a chapter the build reuses keeps
its time), run with papermill, or run in Jupyter; until ``close`` runs it says that the time is measured at the end.
The box is one output in two forms: MyST markdown (``text/markdown``: the book renders it as MyST, so citations and
roles work; ``_config.yml`` ranks it first) and HTML (``text/html``, which Jupyter, Colab and nbconvert rank first and
render as they are: the same box, its citations as author and year from ``references.bib``, its link to the
introduction as a link to ``intro.md``), so no reader sees raw MyST.
"""

from __future__ import annotations

import html
import re
import shlex
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from lib.params import SCALE_NOTES, scale_path
from lib.settings import REPO_ROOT

#: An inline MyST role (``{cite:t}`key```) or a code span (```text```) in the box's text.
_INLINE = re.compile(r"\{(?P<role>[\w:-]+)\}`(?P<target>[^`]*)`|`(?P<code>[^`]+)`")
#: A field of a BibTeX entry: ``name = {value with {braces {nested}} twice}``, ``name = "value"`` or ``name = 2017``.
_FIELD = re.compile(r'(\w+)\s*=\s*(?:\{((?:[^{}]|\{(?:[^{}]|\{[^{}]*\})*\})*)\}|"([^"]*)"|(\w+))')


def hardware() -> str:
    """What executes this kernel's training: the GPU's name, or the CPU and its thread count."""
    import torch

    from lib.train import default_device

    if default_device().type == "cuda":
        return torch.cuda.get_device_name(0)
    threads = torch.get_num_threads()
    return f"CPU ({threads} thread{'s' if threads != 1 else ''})"


def duration(seconds: float) -> str:
    """``seconds`` for a reader: ``"42 s"``, ``"3 min 05 s"``, ``"2 h 07 min"``."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def rerun_command(chapter: str, scale: str, overrides: dict | None = None) -> str:
    """The README's command that executes ``book/<chapter>.md`` at ``scale`` with ``overrides``, from the repository root."""
    command = (f"jupytext --to ipynb -o - book/{chapter}.md \\\n"
               f"  | papermill - {chapter}-{scale}.ipynb --cwd book -p scale {scale}")
    if overrides:
        flow = yaml.safe_dump(dict(overrides), default_flow_style=True, width=10_000).strip()
        command += " -y " + shlex.quote(f"overrides: {flow}")
    return command


def training_time(*runs: pd.DataFrame) -> tuple[int, int, float]:
    """The distinct training runs in :func:`lib.runs.run_grid`-style tables: how many, how many came from the
    run cache, and their summed training seconds (whenever they were trained)."""
    frame = pd.concat(runs, ignore_index=True).drop_duplicates("key")
    return len(frame), int(frame.cached.sum()), float(frame.train_seconds.sum())


def citations(bib: Path | None = None) -> dict[str, tuple[str, str]]:
    """Each entry of ``references.bib``: key → (authors as cited, year): ``"Zhang et al."`` for three authors or
    more, ``"Ketha and Ramaswamy"`` for two, the surname for one."""
    text = (bib or REPO_ROOT / "references.bib").read_text()
    found = {}
    for entry in re.finditer(r"@\w+\s*\{\s*([^,\s]+)\s*,(.*?)(?=\n@|\Z)", text, re.S):
        fields = {match[1].lower(): next(v for v in match.groups()[1:] if v is not None).replace("{", "").replace("}", "")
                  for match in _FIELD.finditer(entry[2])}
        names = [name.split(",")[0].strip() for name in fields.get("author", "").split(" and ") if name.strip()]
        authors = (names[0] if len(names) == 1 else f"{names[0]} and {names[1]}" if len(names) == 2
                   else f"{names[0]} et al." if names else entry[1])
        found[entry[1]] = (authors, fields.get("year", "n.d."))
    return found


def _role(role: str, target: str, as_html: bool, cited: dict[str, tuple[str, str]]) -> str:
    """A MyST role as a reader sees it: citations as author and year, a ``{doc}`` as a link to the page's source."""
    if role.startswith("cite"):
        works = [cited.get(key.strip(), (key.strip(), "")) for key in target.split(",")]
        if role == "cite:t":
            text = "; ".join(f"{authors} ({year})" for authors, year in works)
        else:
            text = "(" + "; ".join(f"{authors} {year}" for authors, year in works) + ")"
        return html.escape(text) if as_html else text
    label = re.match(r"(.*?)\s*<([^>]*)>$", target)
    text, page = (label[1], label[2]) if label else (target, target)
    if role == "doc" and as_html:
        return f'<a href="{html.escape(page)}.md">{html.escape(text)}</a>'
    return html.escape(text) if as_html else text


def _emphasis(text: str, as_html: bool) -> str:
    strong, em = (r"<strong>\1</strong>", r"<em>\1</em>") if as_html else (r"\1", r"\1")
    return re.sub(r"\*(.+?)\*", em, re.sub(r"\*\*(.+?)\*\*", strong, text))


def inline(text: str, as_html: bool = True, cited: dict[str, tuple[str, str]] | None = None) -> str:
    """The MyST inline markup the box uses (``**strong**``, ``*emphasis*``, ```code```, ``{cite}``, ``{cite:t}``,
    ``{doc}``) as HTML, or as plain text with ``as_html=False``; any other role shows its text."""
    cited = citations() if cited is None else cited
    escape = (lambda t: html.escape(t, quote=False)) if as_html else (lambda t: t)
    out, position = [], 0
    for match in _INLINE.finditer(text):
        out.append(_emphasis(escape(text[position:match.start()]), as_html))
        if match["code"] is not None:
            out.append(f"<code>{html.escape(match['code'])}</code>" if as_html else match["code"])
        else:
            out.append(_role(match["role"], match["target"], as_html, cited))
        position = match.end()
    out.append(_emphasis(escape(text[position:]), as_html))
    return "".join(out)


@dataclass
class Opening:
    """The opening box of one chapter execution; :meth:`close` fills in the compute time."""

    chapter: str
    scale: str
    overrides: dict
    reproduces: str
    started: float = field(default_factory=time.perf_counter)
    display_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def paragraphs(self, compute_time: str) -> list[str]:
        """The box's paragraphs before its command, in MyST inline markup, with ``compute_time`` as its compute-time
        line."""
        parameters = f"`params/{self.chapter}.yaml`"
        if scale_path(self.chapter, self.scale).is_file():
            parameters += f" with `params/{self.scale}/{self.chapter}.yaml`"
        if self.overrides:
            parameters += ", overridden: " + ", ".join(f"`{k} = {v!r}`" for k, v in self.overrides.items())
        return [
            f"**Reproduces:** {self.reproduces}",
            f"**Scale:** `{self.scale}` ({SCALE_NOTES[self.scale]}); parameters {parameters}.",
            f"**Compute time:** {compute_time}",
            "**Run it again** (from the repository root, in its environment; other scales and overrides: "
            "{doc}`the introduction <intro>`):",
        ]

    def markdown(self, compute_time: str) -> str:
        """The box as MyST markdown (what the book renders), with ``compute_time`` as its compute-time line."""
        return "\n".join([
            "````{admonition} About this chapter",
            ":class: note chapter-opening",
            "",
            "\n\n".join(self.paragraphs(compute_time)),
            "",
            "```bash",
            rerun_command(self.chapter, self.scale, self.overrides),
            "```",
            "````",
        ])

    def html(self, compute_time: str) -> str:
        """The same box as HTML (what Jupyter, Colab and nbconvert render), with no MyST left in it."""
        cited = citations()
        return "\n".join([
            '<div class="chapter-opening" style="border-left: 0.3em solid #0072b2; padding: 0.1em 1em; '
            'margin: 0.5em 0">',
            "<p><strong>About this chapter</strong></p>",
            *(f"<p>{inline(paragraph, cited=cited)}</p>" for paragraph in self.paragraphs(compute_time)),
            f"<pre><code>{html.escape(rerun_command(self.chapter, self.scale, self.overrides))}</code></pre>",
            "</div>",
        ])

    def text(self, compute_time: str) -> str:
        """The same box as plain text (a terminal's rendering)."""
        cited = citations()
        return "\n\n".join(["About this chapter",
                             *(inline(paragraph, as_html=False, cited=cited) for paragraph in self.paragraphs(compute_time)),
                             rerun_command(self.chapter, self.scale, self.overrides)])

    def show(self, compute_time: str, update: bool = False) -> None:
        from IPython.display import display, update_display

        bundle = {"text/html": self.html(compute_time), "text/markdown": self.markdown(compute_time),
                  "text/plain": self.text(compute_time)}
        (update_display if update else display)(bundle, raw=True, display_id=self.display_id)

    def close(self, *runs: pd.DataFrame) -> str:
        """Replace the box's compute time by the wall time since :func:`open_chapter` and, given the chapter's
        run tables, the training time of its runs; returns the compute-time line."""
        line = f"{duration(time.perf_counter() - self.started)} to execute this page on {hardware()}"
        if runs:
            count, cached, seconds = training_time(*runs)
            line += (f"; its {count} training runs took {duration(seconds)} of training in all "
                     f"({count - cached} trained in this execution, {cached} reused from the run cache).")
        else:
            line += "."
        self.show(line, update=True)
        return line


def open_chapter(chapter: str, scale: str, overrides: dict | None = None, reproduces: str = "") -> Opening:
    """Display the opening box of ``book/<chapter>.md`` executed at ``scale`` with ``overrides`` and return it;
    its compute time reads "measured at the end" until :meth:`Opening.close` runs."""
    if scale not in SCALE_NOTES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {sorted(SCALE_NOTES)}")
    opening = Opening(chapter, scale, dict(overrides or {}), reproduces)
    opening.show("measured when this page finishes executing (by `make book`, papermill or Jupyter).")
    return opening
