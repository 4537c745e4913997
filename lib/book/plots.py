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


def heatmap(frame: pd.DataFrame, x: str, y: str, value: str, title: str, x_title: str, y_title: str,
            value_title: str, facet: str | None = None, domain: tuple[float, float] | None = None,
            y_sort: list | None = None, scheme: str = "viridis", tooltip: list[str] | None = None,
            width: int = 160, height: int = 200) -> alt.Chart:
    """A grid of coloured cells (``x`` ordinal × ``y`` ordinal, colour ``value``), optionally one panel per ``facet``.

    ``domain`` fixes the colour scale (e.g. ``(0, 1)``) so panels and figures compare; ``y_sort``
    orders the rows (e.g. layers from first to last).
    """
    check_rows(frame, title)
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
                  width: int = 200, height: int = 180, row: str | None = None, facet_sort: list | None = None,
                  row_sort: list | None = None) -> alt.FacetChart:
    """:func:`line_chart` as small multiples, one panel per value of ``facet`` (and of ``row``) sharing the y axis;
    ``facet_sort`` and ``row_sort`` order the panels (default: alphabetical)."""
    check_rows(frame, title)
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
                    tooltip: list[str] | None = None, width: int = 220, height: int = 200, columns: int = 2,
                    facet_sort: list | None = None, zero_rule: bool = True) -> alt.FacetChart:
    """Scatter plots of ``y`` against ``x`` (quantitative, with axes), one panel per ``facet`` (``columns`` to a
    row, ordered by ``facet_sort``) with its own x axis (titled by the facet), coloured by ``color``;
    ``zero_rule`` draws a dashed line at y = 0."""
    check_rows(frame, title)
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
                            facet_sort: list | None = None, columns: int = 6, size: int = 140) -> alt.FacetChart:
    """Scatter plots of ``y`` against ``x`` coloured by ``color`` (nominal), one panel per ``facet``,
    each panel with its own axes (e.g. PCA projections of different layers)."""
    check_rows(frame, title)
    chart = alt.Chart(frame).mark_circle(size=30, opacity=0.8).encode(
        x=alt.X(f"{x}:Q", title=x, axis=alt.Axis(labels=False, ticks=False)),
        y=alt.Y(f"{y}:Q", title=y, axis=alt.Axis(labels=False, ticks=False)),
        color=alt.Color(f"{color}:N", title=color),
        tooltip=[facet, color, x, y],
    ).properties(width=size, height=size)
    return (chart.facet(facet=alt.Facet(f"{facet}:N", title=None, sort=facet_sort), columns=columns)
            .resolve_scale(x="independent", y="independent").properties(title=title))


def stacked_bars(frame: pd.DataFrame, x: str, y: str, stack: str, facet: str, title: str, x_title: str,
                 y_title: str, colors: dict[str, str], columns: int = 5, width: int = 170,
                 height: int = 110) -> alt.FacetChart:
    """Bars of ``y`` at each ``x`` stacked by ``stack`` (colours given per value), one panel per ``facet``."""
    check_rows(frame, title)
    chart = alt.Chart(frame).mark_bar().encode(
        x=alt.X(f"{x}:O", title=x_title, axis=alt.Axis(labels=False, ticks=False)),
        y=alt.Y(f"{y}:Q", title=y_title, stack="zero"),
        color=alt.Color(f"{stack}:N", title=None,
                        scale=alt.Scale(domain=list(colors), range=list(colors.values()))),
        order=alt.Order(f"{stack}:N", sort="descending"),
        tooltip=[facet, x, stack, y],
    ).properties(width=width, height=height)
    return chart.facet(facet=alt.Facet(f"{facet}:N", title=None), columns=columns).properties(title=title)

def faceted_layers(lines: pd.DataFrame, references: pd.DataFrame | None, x: str, y: str, color: str,
                   row: str, column: str, title: str, y_title: str, x_order: list[str] | None = None,
                   y_scale: alt.Scale | None = None, width: int = 200, height: int = 130,
                   band: tuple[str, str] | None = None) -> alt.FacetChart:
    """Lines of ``y`` over the (nominal, ordered) ``x`` per ``color``, faceted into ``row`` x ``column``,
    with dashed horizontal reference lines (e.g. a model's own accuracies) in each panel.

    ``references`` has the ``row`` and ``column`` columns, ``reference`` (its legend label) and
    ``value``. ``band=(low, high)`` shades the range between two columns of ``lines`` (e.g. the
    minimum and maximum over seeds). The x axis of each column is independent, so each model keeps its own layer names.
    """
    check_rows(lines, title)
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
            x=alt.X(f"{x}:N", sort=sort), y=f"{band[0]}:Q", y2=f"{band[1]}:Q", color=f"{color}:N"))
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
    text = base.mark_text(fontSize=9).encode(
        text="label:N", color=alt.condition(f"datum.{value} > 0.5", alt.value("black"), alt.value("white")))
    return (rect + text).properties(title=title, width=width or 34 * len(columns), height=height or 24 * len(layers))
