"""A page's view of another scale's recorded results (:mod:`lib.results`): where they came from, the recorded frames
beside the page's own in one chart, and the claims at both scales side by side.

A chapter's section "At the paper's data size" is::

    full = ch.recorded("full")                       # the record (claims adopted), or None
    display(Markdown(recorded.intro(full, ch)))       # where it came from, or how to record it
    recorded.scale_chart(recorded.with_scale(errors, ch, full, "figure1c"), "corruption", "test_error", "model")
    recorded.claims_side_by_side(ch.claims, full)
"""

from __future__ import annotations

import json

import altair as alt
import pandas as pd

from lib import results


def intro(record: results.ChapterRecord | None, ch, scale: str = "full") -> str:
    """Markdown: where the recorded results of ``scale`` come from (store entry, date, machine, time), or, when
    nothing is recorded, the command that records them; on the page of that scale itself, that it is this page."""
    if ch.scale == scale:
        return (f"This page *is* the `{scale}` scale: its runs and claims above are the ones the `cpu` page shows "
                f"from the results store once recorded with `python -m lib run {ch.name} --scale {scale} --record`.")
    if record is None and scale in ch.refused:
        return (f"**The recorded `{scale}` results were refused**, so none is shown: {ch.refused[scale]}")
    if record is None:
        return (f"Nothing is recorded at scale `{scale}` for this chapter in the results store "
                f"(`{results.chapter_path(scale, ch.name).relative_to(results.results_dir().parent)}` does not exist). "
                f"Record it on a machine that affords it with `python -m lib run {ch.name} --scale {scale} --record` "
                "and commit `results/`; this page then shows it without training it.")
    return (f"The `{scale}` results below were not trained by this build: they come from the results store, "
            f"{record.provenance()}. Every run was trained with this checkout's training code (the store refuses "
            "an entry recorded with other code).")


def changes(chapter: str, scale: str = "full") -> str:
    """Markdown: what ``scale`` changes from the paper's protocol for ``chapter``, read from the comment that opens
    ``params/<scale>/<chapter>.yaml`` (the one place it is written), with the file's path; empty when the chapter
    has no file of its own there."""
    from lib.params import PARAMS_DIR, own_scale_file

    if not own_scale_file(chapter, scale):
        return ""
    path = PARAMS_DIR / scale / f"{chapter}.yaml"
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line[2:] if line.startswith("# ") else line[1:])
    text = "\n".join(lines).strip()
    text = text.replace("\n- ", "\n\n- ", 1)  # the first item opens a list after the paragraph
    return f"From `params/{scale}/{chapter}.yaml`: {text}"


def runs_table(record: results.ChapterRecord | None) -> pd.DataFrame | None:
    """One row per recorded run the chapter used, named by its model and corruption: what it trained, how far, its
    accuracies, when, in how long, and its entry in the store."""
    if record is None:
        return None
    rows = []
    for key, provenance in record.runs.items():
        payload = json.loads(results.run_path(record.scale, key).read_text())
        config, summary = payload["config"], payload["summary"]
        rows.append({"data set": config["dataset"],
                     "training images": f"{summary.get('n_train') or config['n_train'] or 'all'}",
                     "model": config["model"], "corruption": f"{config['randomization']} {config['corruption']:g}",
                     "precision": config.get("precision", "fp32"), "epochs": summary.get("epochs"),
                     "train acc": round(float(summary.get("final_train_acc", float("nan"))), 4),
                     "test acc": round(float(summary.get("final_test_acc", float("nan"))), 4),
                     "trained": (provenance or {}).get("trained") or "",
                     "train time": f"{float((provenance or {}).get('train_seconds') or 0) / 60:.1f} min",
                     "store entry": f"runs/{key}.json"})
    return pd.DataFrame(rows).set_index(["model", "corruption"])  # rows named by what they trained, not by hash


def with_scale(here: pd.DataFrame, ch, record: results.ChapterRecord | None, name: str) -> pd.DataFrame:
    """The page's frame ``here`` (column ``scale`` = the page's scale) and, when recorded, the same frame ``name``
    of the record (its scale), stacked, for one chart of both. The page's frame is published under ``name`` too."""
    ch.publish(name, here)
    frames = [here.assign(scale=ch.scale)]
    if record is not None and name in record.frames:
        frames.append(record.frame(name).assign(scale=record.scale))
    return pd.concat(frames, ignore_index=True)


def scale_chart(frame: pd.DataFrame, x: str, y: str, color: str, *, title: str = "", x_title: str = "",
                y_title: str = "", y_domain=None, tooltip=()) -> alt.Chart:
    """One line chart of ``frame`` (:func:`with_scale`) with the scales told apart: solid for the page's, dashed for
    the recorded one; points at every measurement."""
    y_scale = alt.Scale(domain=list(y_domain)) if y_domain else alt.Undefined
    base = alt.Chart(frame).encode(
        x=alt.X(f"{x}:Q", title=x_title or x),
        y=alt.Y(f"{y}:Q", title=y_title or y, scale=y_scale),
        color=alt.Color(f"{color}:N", title=color),
        # the page's scale (first in the frame) solid, the recorded one dashed, and the legend draws the dashes
        strokeDash=alt.StrokeDash("scale:N", title="scale", legend=alt.Legend(symbolType="stroke"),
                                  scale=alt.Scale(domain=list(dict.fromkeys(frame["scale"])), range=[[1, 0], [6, 4]])),
        shape=alt.Shape("scale:N", title="scale", legend=None),  # one legend for the scales: the dashes'
        tooltip=["scale", color, x, y, *tooltip])
    return (base.mark_line() + base.mark_point(filled=True, size=50)).properties(title=title, width=420, height=260)


def claims_side_by_side(claims, record: results.ChapterRecord | None) -> pd.DataFrame:
    """The page's claims beside the recorded scale's (joined on figure and claim): the paper's value, ours and the
    verdict at each scale, and what each was measured on. Claims only one scale registered have blanks at the
    other."""
    here = claims.table()
    if record is None:
        return here
    there = claims.table(record.scale)
    if here.empty or there.empty:
        return there if here.empty else here
    left = here[["paper", "ours", "verdict", "measured on"]]
    right = there[["paper", "ours", "verdict", "measured on"]]
    joined = left.join(right, how="outer", lsuffix=f" ({claims.scale})", rsuffix=f" ({record.scale})")
    joined["paper"] = joined[f"paper ({claims.scale})"].fillna(joined[f"paper ({record.scale})"])
    columns = ["paper"] + [f"{c} ({s})" for s in (claims.scale, record.scale) for c in ("ours", "verdict", "measured on")]
    return joined[columns].fillna("")
