"""Altair charts for the book, drawn offline, in one look, and checked.

:func:`setup` makes altair emit self-contained HTML (the ``html`` renderer) and enables the book's theme
(:func:`theme`): a colour-blind-safe palette (:data:`PALETTE`, Okabe and Ito's) for every categorical colour, and
text sizes that stay legible when a chart is scaled to a phone; every chart it renders is the text column's width
(:func:`fit_to_column`). The book ships vega, vega-lite and vega-embed in
``_static`` (see :mod:`lib.book`), and sets ``VEGA_DEBUG`` so the HTML's loader never reaches for a CDN. Altair
refuses data over 5,000 rows, so every chart here takes already-aggregated frames and :func:`check_rows` says so
clearly when one is too big.

Charts are checked, not only drawn: :func:`chart_problems` lists what is wrong with a chart as vega draws it
(vega-lite's warnings; a mark vega cannot place on its scale, such as a zero on a log axis; an axis without labels,
the sign of an empty or invalid domain; marks drawn outside their panel, cut by a fixed domain; a legend shown
twice; a facet whose panels each draw every panel's rows because a layer brings its own data; a colour outside the
palette).
:func:`notebook_chart_problems` runs it over every chart an executed chapter displays.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

import altair as alt
import numpy as np
import pandas as pd

MAX_ROWS = 5000
WIDTH, HEIGHT = 300, 220
# The width a chart may take in the book's text column (a figure's chart is 756 px wide at a 1400 px window, less
# a margin: a browser's text measures can differ from vl-convert's): small
# multiples share it between their panels and a single view takes all of it (fit_to_column, panel_width).
COLUMN = 740
# Okabe & Ito (2008), "Color Universal Design": eight colours told apart with every common colour-vision
# deficiency; ordered so that the first few series (most charts have two to four) differ most in hue and lightness.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]


def theme() -> dict:
    """The book's altair theme: :data:`PALETTE` for every categorical colour (the colour-blind-safe ``viridis``
    for sequential ones), and text sizes (11-13 px) that stay legible when a chart is scaled down."""
    return {"config": {
        "range": {"category": PALETTE, "ordinal": {"scheme": "viridis"}, "heatmap": {"scheme": "viridis"},
                  "ramp": {"scheme": "viridis"}},
        "view": {"continuousWidth": WIDTH, "continuousHeight": HEIGHT},
        "axis": {"labelFontSize": 11, "titleFontSize": 12},
        "legend": {"labelFontSize": 11, "titleFontSize": 12, "labelLimit": 240},
        "header": {"labelFontSize": 12, "titleFontSize": 12},
        "title": {"fontSize": 13},
        "text": {"fontSize": 11},
    }}


_COMPOSED = ("facet", "hconcat", "vconcat", "concat", "repeat")


def _panels(spec: dict) -> list[dict]:
    """The views of a composed ``spec`` whose ``width`` is a number of pixels (a facet's panel, each concatenated
    view, recursively)."""
    encoding = spec.get("encoding", {})
    if any(k in encoding for k in ("row", "column", "facet")):  # faceted by an encoding channel: width is a panel's
        return [spec] if isinstance(spec.get("width"), (int, float)) else []
    if "spec" in spec and isinstance(spec["spec"], dict) and "facet" in spec:
        return _panels(spec["spec"]) or ([spec["spec"]] if isinstance(spec["spec"].get("width"), (int, float)) else [])
    views = [v for key in ("hconcat", "vconcat", "concat") for v in spec.get(key, [])]
    if views:
        return [panel for view in views for panel in (_panels(view) or
                                                      ([view] if isinstance(view.get("width"), (int, float)) else []))]
    return []


def _drawn_width(spec: dict) -> float | None:
    try:
        import vl_convert
    except ImportError:  # outside the `book` extra (which has vl-convert) panels keep the widths they were given
        return None
    try:
        return float(vl_convert.vegalite_to_scenegraph(spec)["width"])
    except ValueError:
        return None


def fit_to_column(spec: dict, smallest: int = 60) -> dict:
    """``spec`` as wide as the text column it is shown in (:data:`COLUMN`), at any screen width for a single view
    (one mark, or layers of marks: vega-lite's ``width: "container"``); small multiples and concatenations have
    every panel widened or narrowed by the same number of pixels (never below ``smallest``) so that the whole
    figure, axes, headers and legends included, is the column's width as vega draws it."""
    import copy

    encoding = spec.get("encoding", {})
    if not any(key in spec for key in _COMPOSED) and not any(k in encoding for k in ("row", "column", "facet")):
        return {**spec, "width": "container"}
    fitted = copy.deepcopy(spec)
    panels = _panels(fitted)
    widths = [p["width"] for p in panels]
    before = _drawn_width(fitted)
    if not panels or before is None:
        return spec
    for panel in panels:
        panel["width"] += 10
    after = _drawn_width(fitted)
    slope = (after - before) / 10 if after is not None else 0
    if slope <= 0:
        return spec
    delta = max((COLUMN - before) / slope, smallest - min(widths))
    for panel, width in zip(panels, widths):
        panel["width"] = int(width + delta)
    return fitted


def _render(spec: dict, **options):
    """Altair's HTML renderer, every chart passed through :func:`fit_to_column` first."""
    from altair.vegalite.v6.display import html_renderer

    return html_renderer(fit_to_column(spec), **options)


def setup() -> None:
    """Render charts as HTML that works with the book's vendored vega bundle (and in Jupyter), in the book's theme,
    each as wide as the text column (:func:`fit_to_column`)."""
    if "book" not in alt.renderers.names():
        alt.renderers.register("book", _render)
    alt.renderers.enable("book", embed_options={"renderer": "svg", "actions": False})
    if "book" not in alt.theme.names():
        alt.theme.register("book", enable=False)(theme)
    alt.theme.enable("book")


def panel_width(columns: int, legend: int = 110, gap: int = 20, axis: int = 50, smallest: int = 110) -> int:
    """The width of each of ``columns`` panels side by side so that the row fills the text column (:data:`COLUMN`):
    a y axis ``axis`` px wide on the left, ``gap`` px between panels (add a panel's own y axis where each has one)
    and a legend ``legend`` px wide on the right; never below ``smallest``. An estimate, for a chart drawn outside the
    book's renderer; the renderer fits the figure as vega draws it (:func:`fit_to_column`)."""
    columns = max(columns, 1)
    return max(smallest, int((COLUMN - legend - axis - gap * (columns - 1)) / columns))


def check_rows(frame: pd.DataFrame, what: str) -> pd.DataFrame:
    if len(frame) > MAX_ROWS:
        raise ValueError(f"{what}: {len(frame)} rows is more than altair draws ({MAX_ROWS}); aggregate first")
    return frame


def note(title: str, text: str, width: int = COLUMN - 110, line: int = 70) -> alt.Chart:
    """A figure with nothing to draw: ``text`` (why, in words, wrapped at ``line`` characters so that it fits a
    phone's column too) under ``title``, with no axes to stand empty."""
    import textwrap

    lines = textwrap.wrap(text, line)
    return (alt.Chart(pd.DataFrame({"text": ["\n".join(lines)]}))
            .mark_text(align="left", baseline="top", fontSize=13, lineBreak="\n", lineHeight=18, color="#444")
            .encode(x=alt.value(0), y=alt.value(4), text="text:N")
            .properties(title=title, width=width, height=18 * len(lines) + 8))


def has_points(frame: pd.DataFrame, *columns: str) -> bool:
    """Whether some row of ``frame`` has a finite value in every one of ``columns`` (something a chart can place);
    a column may be given as altair's shorthand (``"n:Q"``)."""
    names = [re.sub(r":[QNOT]$", "", c) for c in columns]
    values = frame[names].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    return bool(np.isfinite(values).all(axis=1).any())


def line_chart(frame: pd.DataFrame, x: str, y: str, color: str, title: str, x_title: str, y_title: str,
               y_scale: alt.Scale | None = None, points: bool = True, tooltip: list[str] | None = None,
               width: int = WIDTH, height: int = HEIGHT, empty: str | None = None) -> alt.Chart:
    """Lines (optionally with points) of ``y`` against ``x``, one per value of ``color``; where no row has both
    values, a :func:`note` saying ``empty`` (default: that no value of the y axis was measured)."""
    check_rows(frame, title)
    if not has_points(frame, x, y):
        return note(title, empty or f"Nothing to draw: no value of {y_title!r} was measured in this execution.")
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


def heatmap(frame: pd.DataFrame, x: str, y: str, value: str, title: str, x_title: str, y_title: str,
            value_title: str, facet: str | None = None, domain: tuple[float, float] | None = None,
            y_sort: list | None = None, scheme: str = "viridis", tooltip: list[str] | None = None,
            width: int | None = None, height: int = 200) -> alt.Chart:
    """A grid of coloured cells (``x`` ordinal × ``y`` ordinal, colour ``value``), optionally one panel per ``facet``
    (``width`` each; by default the panels share the column's width, :func:`panel_width`).

    ``domain`` fixes the colour scale (e.g. ``(0, 1)``) so panels and figures compare; ``y_sort``
    orders the rows (e.g. layers from first to last).
    """
    check_rows(frame, title)
    width = width or panel_width(frame[facet].nunique() if facet else 1, legend=90)
    scale = alt.Scale(scheme=scheme, domain=list(domain)) if domain else alt.Scale(scheme=scheme)
    chart = alt.Chart(frame).mark_rect().encode(
        x=alt.X(f"{x}:O", title=x_title),
        y=alt.Y(f"{y}:O", title=y_title, sort=y_sort),
        color=alt.Color(f"{value}:Q", title=value_title, scale=scale),
        tooltip=tooltip or [c for c in (facet, x, y, value) if c],
    ).properties(width=width, height=height)
    if facet:
        return chart.facet(column=alt.Column(f"{facet}:N", title=None)).properties(title=title)
    return chart.properties(title=title)


def faceted_lines(frame: pd.DataFrame, x: str, y: str, color: str, facet: str, title: str, x_title: str,
                  y_title: str, y_scale: alt.Scale | None = None, tooltip: list[str] | None = None,
                  width: int | None = None, height: int = 180, row: str | None = None, facet_sort: list | None = None,
                  row_sort: list | None = None) -> alt.FacetChart:
    """:func:`line_chart` as small multiples, one panel per value of ``facet`` (and of ``row``) sharing the y axis;
    ``facet_sort`` and ``row_sort`` order the panels (default: alphabetical); ``width`` of each panel (default: the
    panels share the column's width, :func:`panel_width`)."""
    check_rows(frame, title)
    width = width or panel_width(frame[facet].nunique())
    chart = alt.Chart(frame).mark_line(point=True).encode(
        x=alt.X(f"{x}:Q", title=x_title),
        y=alt.Y(f"{y}:Q", title=y_title, scale=y_scale or alt.Scale(zero=False)),
        color=alt.Color(f"{color}:N", title=color.replace("_", " ")),
        tooltip=tooltip or [c for c in (row, facet, color, x, y) if c],
    ).properties(width=width, height=height)
    rows = dict(row=alt.Row(f"{row}:N", title=None, sort=row_sort or "ascending")) if row else {}
    return chart.facet(column=alt.Column(f"{facet}:N", title=None, sort=facet_sort or "ascending"),
                       **rows).properties(title=title)


def faceted_scatter(frame: pd.DataFrame, x: str, y: str, color: str, facet: str, title: str, y_title: str,
                    tooltip: list[str] | None = None, width: int | None = None, height: int = 200, columns: int = 2,
                    facet_sort: list | None = None, zero_rule: bool = True) -> alt.FacetChart:
    """Scatter plots of ``y`` against ``x`` (quantitative, with axes), one panel per ``facet`` (``columns`` to a
    row, ordered by ``facet_sort``) with its own x axis (titled by the facet), coloured by ``color``;
    ``zero_rule`` draws a dashed line at y = 0; ``width`` of each panel (default: a row of panels fills the column)."""
    check_rows(frame, title)
    width = width or panel_width(min(frame[facet].nunique(), columns))
    points = alt.Chart().mark_circle(size=35, opacity=0.7).encode(
        x=alt.X(f"{x}:Q", title=None, scale=alt.Scale(zero=False)),
        y=alt.Y(f"{y}:Q", title=y_title),
        color=alt.Color(f"{color}:N", title=color.replace("_", " ")),
        tooltip=tooltip or [facet, color, x, y],
    )
    layers = [points]
    if zero_rule:
        layers.append(alt.Chart().mark_rule(strokeDash=[4, 4], color="gray").encode(y=alt.datum(0)))
    return (alt.layer(*layers, data=frame).properties(width=width, height=height)
            .facet(facet=alt.Facet(f"{facet}:N", title=None, sort=facet_sort or "ascending"), columns=columns)
            .resolve_scale(x="independent")
            .properties(title=title))


def scatter_small_multiples(frame: pd.DataFrame, x: str, y: str, color: str, facet: str, title: str,
                            facet_sort: list | None = None, columns: int = 3, size: int | None = None) -> alt.FacetChart:
    """Scatter plots of ``y`` against ``x`` coloured by ``color`` (nominal), one panel per ``facet`` (``columns`` to a
    row, each ``size`` px square; by default a row fills the column), each panel with its own axes (e.g. PCA
    projections of different layers)."""
    check_rows(frame, title)
    size = size or panel_width(min(frame[facet].nunique(), columns), legend=80, gap=30, axis=20)
    chart = alt.Chart(frame).mark_circle(size=30, opacity=0.8).encode(
        x=alt.X(f"{x}:Q", title=x, axis=alt.Axis(labels=False, ticks=False)),
        y=alt.Y(f"{y}:Q", title=y, axis=alt.Axis(labels=False, ticks=False)),
        color=alt.Color(f"{color}:N", title=color),
        tooltip=[facet, color, x, y],
    ).properties(width=size, height=size)
    return (chart.facet(facet=alt.Facet(f"{facet}:N", title=None, sort=facet_sort), columns=columns)
            .resolve_scale(x="independent", y="independent").properties(title=title))


def stacked_bars(frame: pd.DataFrame, x: str, y: str, stack: str, facet: str, title: str, x_title: str,
                 y_title: str, colors: dict[str, str], columns: int = 5, width: int | None = None,
                 height: int = 110) -> alt.FacetChart:
    """Bars of ``y`` at each ``x`` stacked by ``stack`` (colours given per value), one panel per ``facet``
    (``columns`` to a row, ``width`` each; by default a row fills the column). The x axis has no labels, so its title
    ``x_title`` is said once, under the chart's title, rather than under every panel."""
    check_rows(frame, title)
    width = width or panel_width(min(frame[facet].nunique(), columns), legend=90, smallest=90)
    chart = alt.Chart(frame).mark_bar().encode(
        x=alt.X(f"{x}:O", title=None, axis=alt.Axis(labels=False, ticks=False)),
        y=alt.Y(f"{y}:Q", title=y_title, stack="zero"),
        color=alt.Color(f"{stack}:N", title=None,
                        scale=alt.Scale(domain=list(colors), range=list(colors.values()))),
        order=alt.Order(f"{stack}:N", sort="descending"),
        tooltip=[facet, x, stack, y],
    ).properties(width=width, height=height)
    return chart.facet(facet=alt.Facet(f"{facet}:N", title=None), columns=columns).properties(
        title=alt.TitleParams(title, subtitle=f"each panel's bars: {x_title}"))


def faceted_layers(lines: pd.DataFrame, references: pd.DataFrame | None, x: str, y: str, color: str,
                   row: str, column: str, title: str, y_title: str, x_order: list[str] | None = None,
                   y_scale: alt.Scale | None = None, width: int | None = None, height: int = 130,
                   band: tuple[str, str] | None = None) -> alt.FacetChart:
    """Lines of ``y`` over the (nominal, ordered) ``x`` per ``color``, faceted into ``row`` x ``column``,
    with dashed horizontal reference lines (e.g. a model's own accuracies) in each panel.

    ``references`` has the ``row`` and ``column`` columns, ``reference`` (its legend label) and
    ``value``. ``band=(low, high)`` shades the range between two columns of ``lines`` (e.g. the
    minimum and maximum over seeds). The x axis of each column is independent, so each model keeps its own layer names.
    ``width`` of each panel: by default a row of panels fills the column (:func:`panel_width`).
    """
    check_rows(lines, title)
    width = width or panel_width(lines[column].nunique(), legend=150)
    lines = lines.assign(_kind="line")
    frames = [lines]
    if references is not None and len(references):
        frames.append(references.assign(_kind="reference").rename(columns={"value": y}))
    data = pd.concat(frames, ignore_index=True)
    check_rows(data, title)
    sort = x_order if x_order is not None else "ascending"
    line = (alt.Chart().transform_filter(alt.datum._kind == "line").mark_line(point=True).encode(
        x=alt.X(f"{x}:N", title=None, sort=sort, axis=alt.Axis(labelAngle=-45)),
        y=alt.Y(f"{y}:Q", title=y_title, scale=y_scale or alt.Scale(domain=[0, 1])),
        color=alt.Color(f"{color}:N", title=color.replace("_", " ")),
        tooltip=[row, column, x, color, alt.Tooltip(f"{y}:Q", format=".3f")]))
    layers = [line]
    if band is not None:
        layers.insert(0, alt.Chart().transform_filter(alt.datum._kind == "line").mark_area(opacity=0.2).encode(
            x=alt.X(f"{x}:N", sort=sort), y=f"{band[0]}:Q", y2=f"{band[1]}:Q",
            color=alt.Color(f"{color}:N", legend=None)))  # the legend is the lines', in full colour
    if references is not None and len(references):
        layers.append(alt.Chart().transform_filter(alt.datum._kind == "reference").mark_rule(strokeDash=[5, 3]).encode(
            y=f"{y}:Q", strokeDash=alt.StrokeDash("reference:N", title="model (reference)"),
            color=alt.value("black"), size=alt.value(1),
            tooltip=[row, column, "reference", alt.Tooltip(f"{y}:Q", format=".3f")]))
    return (alt.layer(*layers, data=data).properties(width=width, height=height)
            .facet(row=alt.Row(f"{row}:O", title=row.replace("_", " ")), column=alt.Column(f"{column}:N", title=None))
            .resolve_scale(x="independent").properties(title=title))


def data_size_chart(frame: pd.DataFrame, y: str, color: str, references: dict[str, float], title: str,
                    y_title: str, x: str = "n_train", x_title: str = "training images (log scale)",
                    paper_size: int | None = None) -> alt.LayerChart:
    """How a measured value moves with the training-set size: one line per ``color`` value (log x axis), the
    paper's value of each as a dashed line in the same colour, and the paper's data size as a vertical rule."""
    check_rows(frame, title)
    domain = list(dict.fromkeys(frame[color]))
    colour = alt.Color(f"{color}:N", title=color.replace("_", " "), scale=alt.Scale(domain=domain))
    lines = alt.Chart(frame).mark_line(point=True).encode(
        x=alt.X(f"{x}:Q", title=x_title, scale=alt.Scale(type="log")),
        y=alt.Y(f"{y}:Q", title=y_title, scale=alt.Scale(zero=False)), color=colour,
        tooltip=[color, x, alt.Tooltip(f"{y}:Q", format=".3f")])
    paper = pd.DataFrame([{color: k, "paper": v} for k, v in references.items() if k in domain])
    layers = [lines]
    if len(paper):
        layers.append(alt.Chart(paper).mark_rule(strokeDash=[5, 4]).encode(
            y="paper:Q", color=colour, tooltip=[color, alt.Tooltip("paper:Q", title="paper's value")]))
    if paper_size:
        size = pd.DataFrame({x: [paper_size], "label": ["paper's data size"]})
        layers.append(alt.Chart(size).mark_rule(color="gray").encode(x=f"{x}:Q"))
        layers.append(alt.Chart(size).mark_text(align="right", dx=-4, dy=8, color="gray", baseline="top").encode(
            x=f"{x}:Q", y=alt.value(0), text="label:N"))
    return alt.layer(*layers).properties(title=title, width=WIDTH, height=HEIGHT)


def robustness_heatmap(frame: pd.DataFrame, title: str, columns: list[str], layers: list[str], value: str = "error",
                       width: int | None = None, height: int | None = None) -> alt.LayerChart:
    """Zhang, Bengio & Singer's layer-robustness figure: layers as rows (first at the top), columns in the order
    given (re-randomization first, then the checkpoints), each cell coloured by the test ``value`` on [0, 1] and
    labelled with it in percent (± the spread over draws where ``std`` > 0)."""
    check_rows(frame, title)
    frame = frame.assign(label=[f"{100 * v:.0f}" + (f"±{100 * s:.0f}" if s >= 0.005 else "")
                                for v, s in zip(frame[value], frame.get("std", pd.Series(0.0, index=frame.index)))])
    base = alt.Chart(frame).encode(
        x=alt.X("column:O", title="re-randomization | re-initialization to epoch τ", sort=columns,
                axis=alt.Axis(labelAngle=0)),
        y=alt.Y("layer:O", title="layer", sort=layers))
    rect = base.mark_rect().encode(
        color=alt.Color(f"{value}:Q", title="test error", scale=alt.Scale(scheme="viridis", domain=[0, 1])),
        tooltip=["layer", "column", alt.Tooltip(f"{value}:Q", format=".3f")] +
                (["std:Q", "count:Q"] if "std" in frame else []))
    text = base.mark_text(fontSize=11).encode(
        text="label:N", color=alt.condition(f"datum.{value} > 0.5", alt.value("black"), alt.value("white")))
    return (rect + text).properties(title=title, width=width or 34 * len(columns), height=height or 24 * len(layers))


# --- checks: what is wrong with a chart as vega draws it -------------------------------------------------------------

_SPEC_CALL = re.compile(r"\}\)\(\s*(?=\{)")  # altair's HTML: (function(spec, embedOpt){ ... })({spec}, {options})
_POSITION = ("x", "y", "x2", "y2", "width", "height")


def specs_in_html(html: str) -> list[dict]:
    """The vega-lite specifications embedded in altair's HTML output (one per chart), in order."""
    decoder, specs = json.JSONDecoder(), []
    for match in _SPEC_CALL.finditer(html):
        spec, _ = decoder.raw_decode(html, match.end())
        if isinstance(spec, dict) and ("$schema" in spec or "datasets" in spec):
            specs.append(spec)
    return specs


def _rows(data: dict, datasets: dict) -> list[dict] | None:
    if "values" in data:
        return data["values"] if isinstance(data["values"], list) else None
    if "name" in data:
        return datasets.get(data["name"])
    return None


def _facet_fields(spec: dict) -> list[str]:
    facet = spec.get("facet", {})
    channels = [facet] if "field" in facet else [facet.get(k, {}) for k in ("row", "column")]
    return [c["field"] for c in channels if isinstance(c, dict) and "field" in c]


def facet_problems(spec: dict) -> list[str]:
    """Facets whose panels do not each hold only their own rows: a layer or view inside a facet that brings its own
    data is drawn whole in every panel, so where that data has the facet's field, each panel draws every panel's rows.
    (A layer with its own data without the field, such as a reference line, is the same in every panel by design.)"""
    datasets, problems = spec.get("datasets", {}), []

    def inner(node, fields: list[str], where: str):
        if isinstance(node, dict):
            if "facet" in node and "spec" in node:
                outer(node)
                return
            if "data" in node and fields:
                rows = _rows(node["data"], datasets)
                made = {t.get("as") for t in node.get("transform", []) if isinstance(t.get("as"), str)}
                columns = set(rows[0]) if rows else set()
                overlap = [f for f in fields if f in columns or f in made]
                if overlap:
                    problems.append(f"{where}: a layer brings its own data with the facet's field {overlap[0]!r}, so "
                                    f"every panel draws all {len(rows or [])} of its rows instead of its own")
            for key in ("layer", "hconcat", "vconcat", "concat"):
                for child in node.get(key, []):
                    inner(child, fields, where)
            if "spec" in node:
                inner(node["spec"], fields, where)

    def outer(node):
        title = node.get("title")
        title = title.get("text") if isinstance(title, dict) else title
        inner(node["spec"], _facet_fields(node), f"facet {title!r}" if title else "facet")

    def find(node):
        if isinstance(node, dict):
            if "facet" in node and "spec" in node:
                outer(node)
                return
            for key in ("layer", "hconcat", "vconcat", "concat"):
                for child in node.get(key, []):
                    find(child)

    find(spec)
    return problems


def _vega_lite_warnings(call):
    """Run ``call`` (a vl-convert conversion with ``show_warnings=True``) and return (its result, the warnings
    vega-lite printed on the process's standard error)."""
    with tempfile.TemporaryFile(mode="w+b") as sink:
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            result = call()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        sink.seek(0)
        text = sink.read().decode(errors="replace")
    return result, [line[5:].strip() for line in text.splitlines() if line.startswith("WARN")]


def _walk(node: dict, panel: tuple[float, float] | None, found: dict) -> None:
    """Collect, from a vega scenegraph, the marks' items placed at no position or outside their panel, the axes
    without labels and the legends' entries."""
    for item in node.get("items", []):
        if node.get("marktype") == "group":
            size = (item.get("width") or 0, item.get("height") or 0)
            here = size if size[0] > 0 and size[1] > 0 else panel
            role = node.get("role")
            if role == "axis":
                groups = {g.get("role"): g for g in item.get("items", []) if isinstance(g, dict)}
                title = [t.get("text") for t in groups.get("axis-title", {}).get("items", [])]
                if "axis-label" in groups and not groups["axis-label"].get("items"):
                    found["axes"].append(f"{item.get('orient', '')} axis {title[0] if title else ''!r}".strip())
                continue
            if role == "legend":
                labels, title = [], []
                _legend_text(item, labels, title)
                found["legends"].append((title[0] if title else "", tuple(sorted(map(str, labels)))))
                continue
            for child in item.get("items", []):
                _walk(child, here, found)
        elif node.get("role") == "mark":
            name = node.get("name") or node.get("marktype")
            if any(k in item and item[k] is None for k in _POSITION):
                found["unplaced"][name] = found["unplaced"].get(name, 0) + 1
            elif panel and not node.get("clip") and node.get("marktype") not in ("text", "group"):
                if _outside(item, panel):
                    found["outside"][name] = found["outside"].get(name, 0) + 1


def _legend_text(node: dict, labels: list, title: list) -> None:
    for child in node.get("items", []):
        if not isinstance(child, dict):
            continue
        if child.get("role") == "legend-label":
            labels.extend(i.get("text") for i in child.get("items", []))
        elif child.get("role") == "legend-title":
            title.extend(i.get("text") for i in child.get("items", []))
        else:
            _legend_text(child, labels, title)


def _outside(item: dict, panel: tuple[float, float], slack: float = 1.5) -> bool:
    """Whether a mark item lies beyond its panel (``panel``: width, height) by more than ``slack`` pixels."""
    width, height = panel
    xs = [item[k] for k in ("x", "x2") if isinstance(item.get(k), (int, float))]
    ys = [item[k] for k in ("y", "y2") if isinstance(item.get(k), (int, float))]
    if isinstance(item.get("width"), (int, float)) and xs:
        xs.append(xs[0] + item["width"])
    if isinstance(item.get("height"), (int, float)) and ys:
        ys.append(ys[0] + item["height"])
    return (any(x < -slack or x > width + slack for x in xs) or any(y < -slack or y > height + slack for y in ys))


def render_problems(spec: dict) -> list[str]:
    """What goes wrong when vega draws ``spec`` (vl-convert, the vega-lite and vega the book ships): vega-lite's
    warnings, marks vega could not place on their scale (a log scale over zero or negative values), axes without
    labels (an empty or invalid domain), marks drawn outside their panel (a fixed domain that cuts the data) and
    legends that show the same entries twice."""
    import vl_convert

    if spec.get("width") == "container":  # drawn as in the book: the whole view, legend included, fits the column
        spec = {**spec, "width": COLUMN, "autosize": {"type": "fit-x", "contains": "padding"}}
    version = re.search(r"/v(\d+)\.(\d+)", spec.get("$schema", ""))  # the vega-lite the spec was written for
    try:
        scene, warnings = _vega_lite_warnings(lambda: vl_convert.vegalite_to_scenegraph(
            spec, vl_version=f"v{version[1]}_{version[2]}" if version else None, show_warnings=True))
    except ValueError as error:
        return [f"vega-lite cannot draw it: {error}"]
    problems = [f"vega-lite warns: {w}" for w in dict.fromkeys(warnings)]
    found = {"unplaced": {}, "outside": {}, "axes": [], "legends": []}
    _walk(scene["scenegraph"], None, found)
    problems += [f"{n} item(s) of mark {name!r} have no position on their scale (a log scale over zero or negative "
                 "values?)" for name, n in found["unplaced"].items()]
    problems += [f"{axis} has no labels: its domain is empty or invalid" for axis in dict.fromkeys(found["axes"])]
    problems += [f"{n} item(s) of mark {name!r} are drawn outside their panel (a fixed scale domain cuts the data)"
                 for name, n in found["outside"].items()]
    seen: dict[tuple, str] = {}
    for title, labels in found["legends"]:
        if labels and labels in seen:
            problems.append(f"legend {title!r} repeats legend {seen[labels]!r} (entries {', '.join(labels)})")
        seen.setdefault(labels, title)
    return problems


# Colour schemes a chart may name (sequential and diverging schemes readable with every common colour-vision deficiency)
SCHEMES = {"viridis", "cividis", "magma", "inferno", "plasma", "greys", "blues", "redblue", "blueorange"}
_NEUTRAL = {"black", "white", "gray", "grey", "lightgray", "lightgrey", "darkgray", "darkgrey", "silver", "transparent"}


def _allowed_colour(colour) -> bool:
    """Whether ``colour`` is one of :data:`PALETTE` or a neutral grey (black and white included)."""
    if not isinstance(colour, str):
        return True  # not a colour (a gradient or an expression): nothing to judge
    c = colour.strip().lower()
    if c in _NEUTRAL or c in (p.lower() for p in PALETTE):
        return True
    if re.fullmatch(r"#[0-9a-f]{6}", c):
        r, g, b = (int(c[i:i + 2], 16) for i in (1, 3, 5))
        return max(r, g, b) - min(r, g, b) <= 12
    if re.fullmatch(r"#[0-9a-f]{3}", c):
        r, g, b = (int(ch, 16) for ch in c[1:])
        return max(r, g, b) - min(r, g, b) <= 1
    return False


def palette_problems(spec: dict) -> list[str]:
    """Colours a chart sets outside the book's palette: a mark's colour, an encoded colour value or range that is
    neither a :data:`PALETTE` colour nor a neutral grey, or a colour scheme not in :data:`SCHEMES`."""
    found: list[str] = []

    def colours_of(channel) -> list:
        if not isinstance(channel, dict):
            return []
        out = [channel.get("value")]
        conditions = channel.get("condition", [])
        for condition in conditions if isinstance(conditions, list) else [conditions]:
            if isinstance(condition, dict):
                out.append(condition.get("value"))
        scale = channel.get("scale") or {}
        if isinstance(scale.get("range"), list):
            out.extend(scale["range"])
        scheme = scale.get("scheme")
        scheme = scheme.get("name") if isinstance(scheme, dict) else scheme
        if scheme is not None and scheme not in SCHEMES:
            found.append(f"colour scheme {scheme!r} is not one of the book's ({', '.join(sorted(SCHEMES))})")
        return [c for c in out if c is not None]

    def walk(node):
        if isinstance(node, dict):
            mark = node.get("mark")
            if isinstance(mark, dict):
                found.extend(f"mark colour {mark[k]!r} is not in the palette" for k in ("color", "fill", "stroke")
                             if k in mark and not _allowed_colour(mark[k]))
            for name in ("color", "fill", "stroke"):
                found.extend(f"{name} {c!r} is not in the palette"
                             for c in colours_of(node.get("encoding", {}).get(name)) if not _allowed_colour(c))
            for key, value in node.items():
                if key not in ("config", "datasets", "data", "encoding", "mark"):
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(spec)
    return list(dict.fromkeys(found))


def chart_problems(chart: alt.TopLevelMixin | dict) -> list[str]:
    """Everything :func:`facet_problems`, :func:`palette_problems` and :func:`render_problems` find in a chart (an
    altair chart or its vega-lite specification); empty when the chart is right."""
    spec = chart if isinstance(chart, dict) else chart.to_dict()
    return facet_problems(spec) + palette_problems(spec) + render_problems(spec)


def notebook_chart_problems(notebook) -> list[str]:
    """:func:`chart_problems` of every chart an executed notebook (a path or an ``nbformat`` notebook) displays, each
    prefixed with the chart's figure name (its cell's ``mystnb`` metadata) or title."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4) if isinstance(notebook, (str, Path)) else notebook
    problems = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        figure = cell.metadata.get("mystnb", {}).get("figure", {}).get("name")
        for output in cell.get("outputs", []):
            for spec in specs_in_html(output.get("data", {}).get("text/html", "")):
                title = spec.get("title", "")
                title = title.get("text", "") if isinstance(title, dict) else title
                label = figure or title or f"cell {index}"
                problems += [f"{label}: {problem}" for problem in chart_problems(spec)]
    return problems
