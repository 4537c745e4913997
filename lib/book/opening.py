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
The box is MyST markdown (the book renders ``text/markdown`` outputs as MyST, so citations and roles work).
"""

from __future__ import annotations

import shlex
import time
import uuid
from dataclasses import dataclass, field

import pandas as pd
import yaml

from lib.params import SCALE_NOTES, scale_path


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


@dataclass
class Opening:
    """The opening box of one chapter execution; :meth:`close` fills in the compute time."""

    chapter: str
    scale: str
    overrides: dict
    reproduces: str
    started: float = field(default_factory=time.perf_counter)
    display_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def markdown(self, compute_time: str) -> str:
        """The box as MyST markdown, with ``compute_time`` as its compute-time line."""
        parameters = f"`params/{self.chapter}.yaml`"
        if scale_path(self.chapter, self.scale).is_file():
            parameters += f" with `params/{self.scale}/{self.chapter}.yaml`"
        if self.overrides:
            parameters += ", overridden: " + ", ".join(f"`{k} = {v!r}`" for k, v in self.overrides.items())
        return "\n".join([
            "````{admonition} About this chapter",
            ":class: note chapter-opening",
            "",
            f"**Reproduces:** {self.reproduces}",
            "",
            f"**Scale:** `{self.scale}` ({SCALE_NOTES[self.scale]}); parameters {parameters}.",
            "",
            f"**Compute time:** {compute_time}",
            "",
            "**Run it again** (from the repository root, in its environment; other scales and overrides: "
            "{doc}`the introduction <intro>`):",
            "",
            "```bash",
            rerun_command(self.chapter, self.scale, self.overrides),
            "```",
            "````",
        ])

    def show(self, compute_time: str, update: bool = False) -> None:
        from IPython.display import display, update_display

        text = self.markdown(compute_time)
        bundle = {"text/markdown": text, "text/plain": text}
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
