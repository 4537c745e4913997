"""Altair charts for the book, drawn offline.

:func:`setup` makes altair emit self-contained HTML (the ``html`` renderer). The book ships
vega, vega-lite and vega-embed in ``_static`` (see :mod:`lib.book`), and sets ``VEGA_DEBUG`` so
the HTML's loader never reaches for a CDN. Altair refuses data over 5,000 rows, so every chart
here takes already-aggregated frames and :func:`check_rows` says so clearly when one is too big.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

MAX_ROWS = 5000
WIDTH, HEIGHT = 300, 220


def setup() -> None:
    """Render charts as HTML that works with the book's vendored vega bundle (and in Jupyter)."""
    alt.renderers.enable("html", embed_options={"renderer": "svg", "actions": False})


def check_rows(frame: pd.DataFrame, what: str) -> pd.DataFrame:
    if len(frame) > MAX_ROWS:
        raise ValueError(f"{what}: {len(frame)} rows is more than altair draws ({MAX_ROWS}); aggregate first")
    return frame


def line_chart(frame: pd.DataFrame, x: str, y: str, color: str, title: str, x_title: str, y_title: str,
               y_scale: alt.Scale | None = None, points: bool = True, tooltip: list[str] | None = None,
               width: int = WIDTH, height: int = HEIGHT) -> alt.Chart:
    """Lines (optionally with points) of ``y`` against ``x``, one per value of ``color``."""
    check_rows(frame, title)
    encoding = dict(
        x=alt.X(x, title=x_title),
        y=alt.Y(y, title=y_title, scale=y_scale or alt.Scale(zero=False)),
        color=alt.Color(f"{color}:N", title=color.replace("_", " ")),
        tooltip=tooltip or [color, x, y],
    )
    return (alt.Chart(frame).mark_line(point=points).encode(**encoding)
            .properties(title=title, width=width, height=height))


def reference_rule(value: float, label: str, axis: str = "y") -> alt.LayerChart:
    """A dashed horizontal (or vertical) line with a text label, e.g. chance level."""
    frame = pd.DataFrame({axis: [value], "label": [label]})
    rule = alt.Chart(frame).mark_rule(strokeDash=[4, 4], color="gray").encode(**{axis: f"{axis}:Q"})
    text = alt.Chart(frame).mark_text(align="left", dx=4, dy=-6, color="gray").encode(
        **{axis: f"{axis}:Q"}, text="label:N")
    return rule + text


def comparison_table(rows: list[dict]) -> pd.DataFrame:
    """A paper-vs-ours table: rows of ``claim``, ``paper``, ``ours`` (and optional ``note``)."""
    frame = pd.DataFrame(rows)
    return frame.set_index(frame.columns[0])
