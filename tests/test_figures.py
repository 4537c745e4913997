"""Figures checked, not only drawn: lib.book.plots' checks (vega-lite and vega through vl-convert) find a facet whose
layer overrides its split, a log scale over zeros, an empty axis, data cut by a fixed domain, a doubled legend and a
colour outside the palette; the two figures that had such faults (zhang-regularization's Table 1 chart, weng-double-
descent's random-feature figure) are drawn from their chapters' own cells and pass; the palette stays apart under
simulated colour-vision deficiencies.

Every chart a chapter displays is checked where the suite executes the chapter (tests/conftest.py's executors and the
book build of tests/test_book.py), so this module adds no execution of its own."""

from __future__ import annotations

import ast
import itertools
import math
from pathlib import Path

import altair as alt
import jupytext
import pandas as pd
import pytest
import vl_convert

from lib.book import plots

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def book_setup():
    plots.setup()


def figure_cell(chapter: str, name: str) -> str:
    """The source of the code cell of ``book/<chapter>.md`` whose figure is named ``name``."""
    for cell in jupytext.read(REPO / "book" / f"{chapter}.md").cells:
        if cell.cell_type == "code" and cell.metadata.get("mystnb", {}).get("figure", {}).get("name") == name:
            return cell.source
    raise AssertionError(f"{chapter} has no figure {name}")


def run_cell(source: str, namespace: dict):
    """Execute a notebook cell's ``source`` in ``namespace`` and return the value of its last expression."""
    tree = ast.parse(source)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    exec(compile(tree, "<cell>", "exec"), namespace)
    return eval(compile(ast.Expression(last.value), "<cell>", "eval"), namespace) if last else None


def shown(chart) -> dict:
    """The vega-lite specification of ``chart`` as a chapter displays it (the book's renderer, in its HTML)."""
    bundle = chart._repr_mimebundle_()
    [spec] = plots.specs_in_html((bundle[0] if isinstance(bundle, tuple) else bundle)["text/html"])
    return spec


def drawn_width(spec: dict) -> float:
    return vl_convert.vegalite_to_scenegraph(spec)["width"]


def log_line(values) -> alt.Chart:
    frame = pd.DataFrame({"x": range(1, len(values) + 1), "y": values})
    return alt.Chart(frame).mark_line(point=True).encode(x="x:Q", y=alt.Y("y:Q", scale=alt.Scale(type="log")))


# --- the checks --------------------------------------------------------------------------------------------------

def test_the_html_a_chapter_shows_holds_the_spec_the_checks_read():
    chart = alt.Chart(pd.DataFrame({"x": [1, 2], "c": ["a", "b"]})).mark_point().encode(x="x:Q", color="c:N")
    spec = shown(chart)
    assert spec == {**chart.to_dict(), "width": "container"}  # a single view fills its column
    assert spec["config"]["range"]["category"] == plots.PALETTE  # the book's theme, on every chart


@pytest.mark.parametrize("given", [100, 400])
def test_small_multiples_are_fitted_to_the_columns_width(given):
    """Panels given too narrow or too wide are widened or narrowed alike, so the figure, legend and axes included,
    is the text column's width as vega draws it."""
    frame = pd.DataFrame({"x": [1, 2] * 4, "y": [0.1, 0.2] * 4, "c": ["a", "b"] * 4,
                          "panel": ["p", "p", "q", "q", "r", "r", "s", "s"]})
    chart = plots.faceted_lines(frame, "x", "y", "c", "panel", title="four panels", x_title="x", y_title="y",
                                width=given)
    assert abs(drawn_width(chart.to_dict()) - plots.COLUMN) > 100  # as given, it is not the column's width
    spec = shown(chart)
    assert abs(drawn_width(spec) - plots.COLUMN) <= 4 and spec["spec"]["width"] != given
    assert plots.chart_problems(spec) == []
    views = alt.hconcat(*[alt.Chart(frame).mark_point().encode(x="x:Q", y="y:Q").properties(width=given)] * 2)
    assert abs(drawn_width(shown(views)) - plots.COLUMN) <= 4


def test_a_log_scale_over_zero_has_no_axis_and_unplaced_marks():
    problems = plots.chart_problems(log_line([0.0, 0.5, 0.2]))
    assert any("have no position on their scale" in p for p in problems), problems
    assert any("left axis 'y' has no labels" in p for p in problems), problems
    assert plots.chart_problems(log_line([0.1, 0.5, 0.2])) == []


def test_an_empty_chart_has_an_axis_without_labels():
    empty = alt.Chart(pd.DataFrame({"x": [], "y": []})).mark_line().encode(x="x:Q", y="y:Q")
    assert any("has no labels" in p for p in plots.chart_problems(empty))


def test_marks_cut_by_a_fixed_domain_are_caught():
    frame = pd.DataFrame({"x": [1, 2, 3], "y": [0.2, 0.9, 1.6]})
    cut = alt.Chart(frame).mark_point().encode(x="x:Q", y=alt.Y("y:Q", scale=alt.Scale(domain=[0, 1])))
    assert plots.chart_problems(cut) == ["1 item(s) of mark 'marks' are drawn outside their panel (a fixed scale "
                                         "domain cuts the data)"]
    assert plots.chart_problems(cut.encode(y=alt.Y("y:Q", scale=alt.Scale(domain=[0, 2])))) == []


def test_a_legend_shown_twice_is_caught():
    frame = pd.DataFrame({"x": [0, 1] * 2, "y": [0.1, 0.2, 0.3, 0.4], "scale": ["cpu"] * 2 + ["full"] * 2})
    base = alt.Chart(frame).encode(x="x:Q", y="y:Q", strokeDash=alt.StrokeDash("scale:N", title="scale"),
                                   shape=alt.Shape("scale:N", title="scale"))
    doubled = base.mark_line() + base.mark_point()
    assert plots.chart_problems(doubled) == ["legend 'scale' repeats legend 'scale' (entries cpu, full)"]
    single = base.mark_line() + base.mark_point().encode(shape=alt.Shape("scale:N", legend=None))
    assert plots.chart_problems(single) == []


def test_vega_lite_warnings_are_problems():
    spec = log_line([0.1, 0.2]).to_dict()
    spec["encoding"]["shape"] = {"field": "x", "type": "quantitative"}  # a continuous field on a discrete channel
    problems = plots.chart_problems(spec)
    assert any(p.startswith("vega-lite warns: ") and "shape" in p for p in problems), problems


def test_colours_outside_the_palette_are_caught():
    frame = pd.DataFrame({"x": [1, 2], "y": [1, 2], "c": ["a", "b"]})
    red_green = alt.Chart(frame).mark_bar().encode(
        x="x:Q", y="y:Q", color=alt.Color("c:N", scale=alt.Scale(domain=["a", "b"], range=["#2ca02c", "#d62728"])))
    assert plots.palette_problems(red_green.to_dict()) == ["color '#2ca02c' is not in the palette",
                                                           "color '#d62728' is not in the palette"]
    assert plots.palette_problems(alt.Chart(frame).mark_area(color="orange").encode(x="x:Q", y="y:Q").to_dict())
    assert plots.palette_problems(alt.Chart(frame).mark_rect().encode(
        x="x:O", y="c:O", color=alt.Color("y:Q", scale=alt.Scale(scheme="rainbow"))).to_dict())
    greys = alt.Chart(frame).mark_rule(color="gray").encode(y="y:Q") + alt.Chart(frame).mark_text(
        color="#444444").encode(y="y:Q", text="c:N")
    assert plots.palette_problems(greys.to_dict()) == []
    in_palette = red_green.encode(color=alt.Color("c:N", scale=alt.Scale(domain=["a", "b"],
                                                                         range=plots.PALETTE[:2])))
    assert plots.palette_problems(in_palette.to_dict()) == []


# --- the two figures that were wrong -------------------------------------------------------------------------------

def table1_bars() -> pd.DataFrame:
    """Table 1's bars (regularization.table1_bars) with the paper's test accuracies as both the paper's and ours."""
    from lib.papers import paper
    from lib.studies.zhang2017 import regularization

    zhang = paper("zhang2017")
    models = list(regularization.MODEL_NAMES)
    rows = {(m, r) for m in models for r in ("none", "crop_wd", "wd") if f"table1.{m}.{r}.test" in zhang}
    on = {m: regularization.regularized_row(m, rows) for m in models}
    table1 = pd.DataFrame([{"_model": m, "_row": r, "paper test %": zhang[f"table1.{m}.{r}.test"],
                            "ours test %": zhang[f"table1.{m}.{r}.test"]} for m, r in sorted(rows)])
    return regularization.table1_bars(table1, on)


def test_table1_chart_draws_each_models_own_bars_and_the_old_one_did_not():
    from lib.studies.zhang2017.regularization import MODEL_NAMES

    bars = table1_bars()
    assert len(bars) == 4 * len(MODEL_NAMES)
    chart = run_cell(figure_cell("zhang-regularization", "fig-zhang-table1"),
                     {"alt": alt, "pd": pd, "bars": bars, "MODEL_NAMES": MODEL_NAMES})
    assert plots.chart_problems(chart) == []
    # the chapter's construction before: the bars' own data (alt.Chart(bars)) overrides the facet's split
    base = alt.Chart(bars).encode(x=alt.X("source:N"), xOffset=alt.XOffset("regularizers:N"),
                                  y=alt.Y("test accuracy:Q", scale=alt.Scale(domain=[0, 1])), color="regularizers:N")
    chance = alt.Chart(pd.DataFrame({"y": [0.1]})).mark_rule(color="gray").encode(y="y:Q")
    old = alt.layer(base.mark_bar(), chance, data=bars).facet(column=alt.Column("model:N"))
    problems = plots.chart_problems(old)
    assert any("a layer brings its own data with the facet's field 'model'" in p
               and f"all {len(bars)} of its rows" in p for p in problems), problems
    assert any("drawn outside their panel" in p for p in problems), problems  # stacked past 100%


def test_random_feature_figure_draws_every_panel_and_the_old_one_did_not(isolated_cache):
    """Belkin et al.'s Figure 2 at the chapter's `smoke` parameters on MNIST: training zero-one error reaches 0 past
    N = n, which a log axis cannot place."""
    from lib.params import load_params
    from lib.studies.weng2019 import double_descent as dd
    from lib.studies.weng2019 import risk_curves

    P = load_params("weng-double-descent", "smoke")
    rff = risk_curves.rff_table(dd.rff_curve(P.rff.n_train, P.rff.features, P.rff.sigma, P.rff.seed,
                                             split_seed=P.split_seed, n_test=P.n_test))
    assert (rff.train_error == 0).any()  # what broke the log axis
    chart = run_cell(figure_cell("weng-double-descent", "fig-dd-rff"),
                     {"alt": alt, "pd": pd, "plots": plots, "P": P, "rff": rff})
    assert plots.chart_problems(chart) == []
    assert abs(drawn_width(shown(chart)) - plots.COLUMN) <= 4  # three panels side by side fill the text column
    # the chapter's construction before: one log y scale over every panel, zero-one errors included
    long = rff.melt(id_vars="features", var_name="measure", value_name="value")
    long["panel"] = long.measure.map(lambda m: "norm" if m == "norm" else m.split("_")[1])
    long["set"] = long.measure.map(lambda m: "norm" if m == "norm" else m.split("_")[0])
    old = alt.Chart(long).mark_line(point=True).encode(
        x=alt.X("features:Q", scale=alt.Scale(type="log")), y=alt.Y("value:Q", scale=alt.Scale(type="log")),
        color="set:N").facet(column="panel:N").resolve_scale(y="independent")
    problems = plots.chart_problems(old)
    assert any("have no position on their scale" in p for p in problems), problems
    assert any("has no labels" in p for p in problems), problems


def test_a_figure_with_nothing_to_draw_says_why_in_words():
    frame = pd.DataFrame({"corruption": [0.0, 0.5], "relative": [float("nan")] * 2, "model": ["a", "b"]})
    chart = plots.line_chart(frame, "corruption", "relative", "model", title="Figure 1b", x_title="p",
                             y_title="slowdown", empty="no model converged at p = 0")
    spec = chart.to_dict()
    assert spec["mark"]["type"] == "text" and spec["datasets"][spec["data"]["name"]] == [
        {"text": "no model converged at p = 0"}]
    assert plots.chart_problems(chart) == []
    drawn = plots.line_chart(frame.assign(relative=[1.0, 1.4]), "corruption", "relative", "model", title="Figure 1b",
                             x_title="p", y_title="slowdown")
    assert drawn.to_dict()["mark"]["type"] == "line" and plots.chart_problems(drawn) == []


# --- the palette ---------------------------------------------------------------------------------------------------

# Machado, Oliveira & Fernandes (2009): full protanopia, deuteranopia and tritanopia on linear RGB
DICHROMACY = {
    "protanopia": [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216], [-0.003882, -0.048116, 1.051998]],
    "deuteranopia": [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413], [-0.011820, 0.042940, 0.968881]],
    "tritanopia": [[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602], [0.004733, 0.691367, 0.303900]],
    "typical": [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
}


def lab_as_seen(colour: str, vision: str) -> tuple[float, float, float]:
    """CIELAB (D65) of the sRGB ``colour`` as a viewer with ``vision`` sees it."""
    def linear(c):
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    rgb = [linear(int(colour[i:i + 2], 16) / 255) for i in (1, 3, 5)]
    r, g, b = (min(1.0, max(0.0, sum(m * c for m, c in zip(row, rgb)))) for row in DICHROMACY[vision])
    xyz = (0.4124564 * r + 0.3575761 * g + 0.1804375 * b, 0.2126729 * r + 0.7151522 * g + 0.0721750 * b,
           0.0193339 * r + 0.1191920 * g + 0.9503041 * b)
    f = [t ** (1 / 3) if t > (6 / 29) ** 3 else t / (3 * (6 / 29) ** 2) + 4 / 29
         for t in (xyz[0] / 0.95047, xyz[1], xyz[2] / 1.08883)]
    return 116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])


def closest_pair(palette: list[str], vision: str) -> float:
    return min(math.dist(lab_as_seen(a, vision), lab_as_seen(b, vision)) for a, b in itertools.combinations(palette, 2))


@pytest.mark.parametrize("vision", list(DICHROMACY))
def test_the_palettes_colours_stay_apart_with_each_colour_vision(vision):
    """Every two colours of the palette differ by at least 15 CIELAB units as a dichromat sees them (vega's default
    palette, tableau10, puts its red and green 1.7 apart for deuteranopia)."""
    assert closest_pair(plots.PALETTE, vision) >= 15
    tableau10 = ["#4c78a8", "#f58518", "#e45756", "#72b7b2", "#54a24b", "#eeca3b"]
    if vision == "deuteranopia":
        assert closest_pair(tableau10, vision) < 5


def test_a_recorded_scale_is_dashed_and_its_legend_draws_the_dashes():
    """recorded.scale_chart: the page's scale (first in the frame) solid and the recorded one dashed, whatever their
    names' alphabetical order (the captions say so), in one legend whose symbols are the strokes."""
    from lib.book import recorded

    frame = pd.DataFrame({"p": [0, 0.5, 1] * 2, "error": [0.5, 0.7, 0.9, 0.4, 0.6, 0.9], "model": ["mlp"] * 6,
                          "scale": ["smoke"] * 3 + ["full"] * 3})
    chart = recorded.scale_chart(frame, "p", "error", "model")
    assert plots.chart_problems(chart) == []
    vega = vl_convert.vegalite_to_vega(chart.to_dict())
    [dash] = [scale for scale in vega["scales"] if scale["name"] == "strokeDash"]
    assert dash["domain"] == ["smoke", "full"] and dash["range"] == [[1, 0], [6, 4]]  # smoke solid, full dashed
    [legend] = [legend for legend in vega["legends"] if legend.get("strokeDash") == "strokeDash"]
    assert legend["symbolType"] == "stroke"
