"""The scorecard page: a summary one can read at a glance, and every claim in a table that fits the page.

- :func:`counts`: verdicts split by *substantive* vs *by construction* and by *paper's data size* vs *subset*
  (see :mod:`lib.book.claims`), per chapter or overall;
- :func:`verdict_chart`: stacked verdict bars per chapter, substantive and by-construction claims side by side;
- :func:`numeric_chart`: every numeric claim as (ours − paper) in units of its tolerance, the ±1 band shaded,
  coloured by verdict, so a reader sees how far off each differing number is and in which direction;
- :func:`claims_table`: the HTML table with coloured verdicts and a small filter (chapter, verdict, kind, data)
  written in plain JavaScript inside the page, so it works offline.
"""

from __future__ import annotations

import html
import json
import re

import altair as alt
import numpy as np
import pandas as pd

from lib.book.plots import PALETTE
from lib.verdicts import NOISE, TOLERANCE_PARTS, VALUE_CRITERIA, VERDICTS

# the verdicts in the book's colour-blind-safe palette (lib.book.plots.PALETTE): green, blue, vermillion, and grey
COLOURS = {"reproduced": PALETTE[2], "same trend": PALETTE[0], "differs": PALETTE[5], "not tested": "#999999"}
KINDS = ("substantive", "by construction", "a reproduction's number", "our check", "our extension")
SIZES = ("paper's data size", "subset")


def _prepare(card: pd.DataFrame) -> pd.DataFrame:
    card = card.copy()
    defaults = {"source": "paper", "evidence": "test", "at_protocol": False, "one_sided": "", "departures": None}
    for column, value in defaults.items():
        if column not in card:
            card[column] = [value] * len(card)
    card["departures"] = [d if isinstance(d, list) else ["protocol not stated"] for d in card.departures]
    card["kind"] = np.select([card.source == "check", card.source == "ours", card.source == "reproduction",
                              card.substantive.astype(bool)], [KINDS[3], KINDS[4], KINDS[2], KINDS[0]], KINDS[1])
    card["size"] = np.where(card.at_paper_size.astype(bool), SIZES[0], SIZES[1])
    card["standing"] = [standing(v, e, a) for v, e, a in zip(card.verdict, card.evidence, card.at_protocol.astype(bool))]
    return card


#: What a claim of the papers counts as in the headline, in its order (:func:`standing`).
STANDINGS = ("test at the paper's protocol", "test, departing from the protocol", "confirmation", "not tested")


def standing(verdict: str, evidence: str, at_protocol: bool) -> str:
    """A paper's claim in the headline's terms: a test (at the paper's protocol or departing from it), a confirmation
    (it could only agree: :mod:`lib.verdicts`), or not tested (a precondition failed)."""
    if verdict == "not tested":
        return STANDINGS[3]
    if evidence == "confirmation":
        return STANDINGS[2]
    return STANDINGS[0] if at_protocol else STANDINGS[1]


def distinct(card: pd.DataFrame) -> pd.DataFrame:
    """Each claim once: a claim registered at several scales (the ``cpu`` page and a recorded ``full`` or ``paper``
    run) is kept at the largest scale that registered it (:data:`lib.params.SCALES` order)."""
    from lib.params import SCALES

    card = card.copy()
    card["order"] = card.scale.map({s: i for i, s in enumerate(SCALES)})
    card = card.sort_values("order", kind="stable")
    return card.drop_duplicates(["chapter", "figure", "claim"], keep="last").drop(columns="order")


def evidence_counts(card: pd.DataFrame) -> dict:
    """The headline's numbers over the distinct claims of ``card`` (:func:`distinct`): of the papers' claims, the tests
    at their protocol by verdict, the other tests by verdict, the confirmations and the not tested; and our
    extensions."""
    card = distinct(_prepare(card))
    papers = card[card.source == "paper"]
    out = {"claims": len(papers), "extensions": int((card.source == "ours").sum())}
    for name in STANDINGS:
        part = papers[papers.standing == name]
        out[name] = {v: int((part.verdict == v).sum()) for v in VERDICTS if (part.verdict == v).any()}
        out[name]["total"] = len(part)
    return out


def headline(card: pd.DataFrame) -> str:
    """The scorecard's (and the introduction's) first line: how many of the papers' claims were tested at their
    protocol and how those came out; then the tests that depart from the protocol, confirmations, not tested and our
    extensions, each claim counted once (:func:`distinct`)."""
    n = evidence_counts(card)
    if not n["claims"] and not n["extensions"]:
        return "No claim was registered."
    at, off = n[STANDINGS[0]], n[STANDINGS[1]]

    def verdicts(part: dict) -> str:
        return ", ".join(f"{part.get(v, 0)} {v}" for v in ("reproduced", "same trend", "differs"))

    return (f"**{at['total']} claims of the papers tested at their protocol: {verdicts(at)}**; "
            f"{off['total']} more tested departing from it ({verdicts(off)}); "
            f"{n[STANDINGS[2]]['total']} confirmations (could only agree); {n[STANDINGS[3]]['total']} not tested; "
            f"{n['extensions']} extensions of ours.")


def papers_claims(card: pd.DataFrame) -> pd.DataFrame:
    """The claims of the papers themselves (not our checks, not a reproduction's numbers)."""
    card = _prepare(card)
    return card[card.kind.isin(KINDS[:2])]


def counts(card: pd.DataFrame, by: list[str] | None = None) -> pd.DataFrame:
    """Number of claims per verdict (columns) for each group of ``by`` (e.g. ``["kind", "size"]``)."""
    card = _prepare(card)
    by = by or ["kind"]
    table = card.groupby(by + ["verdict"]).size().unstack("verdict", fill_value=0)
    table = table.reindex(columns=list(VERDICTS), fill_value=0)
    table["total"] = table.sum(axis=1)
    return table


def at_paper_size(card: pd.DataFrame) -> pd.DataFrame:
    """The papers' substantive claims measured at the paper's data size, each once: a claim registered at several
    scales (the ``cpu`` page and a recorded ``full`` or ``paper`` run) counts at the largest scale that measured it
    at the paper's data size (:data:`lib.params.SCALES` order)."""
    from lib.params import SCALES

    card = papers_claims(card)
    card = card[(card.kind == KINDS[0]) & card.at_paper_size.astype(bool)].copy()
    card["order"] = card.scale.map({s: i for i, s in enumerate(SCALES)})
    card = card.sort_values("order", kind="stable")
    return card.drop_duplicates(["chapter", "figure", "claim"], keep="last").drop(columns="order")


def size_line(card: pd.DataFrame) -> str:
    """How many of the papers' substantive claims were measured at the paper's data size (not its protocol: the
    epochs, optimizer or model may differ), at which scales, and how many of those reproduce or hold in trend."""
    full = at_paper_size(card)
    if full.empty:
        return "No substantive claim was measured at the paper's data size."
    agree = int(full.verdict.isin(["reproduced", "same trend"]).sum())
    tested = int((full.verdict != "not tested").sum())
    scales = ", ".join(f"{int((full.scale == s).sum())} at `{s}`" for s in dict.fromkeys(full.scale))
    chapters = ", ".join(sorted(full.chapter.unique()))
    return (f"**{len(full)} substantive claims were measured at the paper's data size** ({scales}; chapters: "
            f"{chapters}): {agree} reproduce or hold in trend, {tested - agree} differ, {len(full) - tested} not tested "
            f"(a precondition failed).")


def by_scale(card: pd.DataFrame) -> str:
    """How the verdicts of ``card`` split by scale, for a sentence: ``""`` where one scale registered them all, else
    `` (150 at `cpu`, 25 at `full`; a claim registered at two scales has a verdict at each)``. A page built at one
    scale also shows the verdicts that other scales recorded in the results store (:mod:`lib.results`), so its
    counts are of verdicts, not of distinct claims; :func:`at_paper_size` counts each claim once."""
    scales = list(dict.fromkeys(card.scale))
    if len(scales) < 2:
        return ""
    split = ", ".join(f"{int((card.scale == s).sum())} at `{s}`" for s in scales)
    return f" ({split}; a claim registered at two scales has a verdict at each)"


def summary_lines(card: pd.DataFrame) -> list[str]:
    """The summary, substantive claims first: how many reproduce, at the paper's data size and on subsets; where
    several scales registered claims, the counts are of verdicts, split by scale (:func:`by_scale`)."""
    lines = [headline(card), size_line(card)]
    card = _prepare(card)
    several = card.scale.nunique() > 1
    for kind in KINDS:
        part = card[card.kind == kind]
        if part.empty:
            continue
        if kind in KINDS[2:]:
            text = ", ".join(f"{int((part.verdict == v).sum())} {v}" for v in VERDICTS)
            label = {KINDS[2]: "numbers of third-party reproductions", KINDS[3]: "checks of our own implementation",
                     KINDS[4]: "extensions of ours (claims the papers do not make)"}[kind]
            lines.append(f"{len(part)} {label}, not counted as the papers' claims: {text}.")
            continue
        text = ", ".join(f"{int((part.verdict == v).sum())} {v}" for v in VERDICTS)
        sizes = "; ".join(
            f"{size}: " + ", ".join(f"{int(((part['size'] == size) & (part.verdict == v)).sum())} {v}" for v in VERDICTS)
            for size in SIZES if (part["size"] == size).any())
        counted = "verdicts on " if several else ""
        name = (f"{len(part)} {counted}substantive claims of the papers" if kind == KINDS[0]
                else f"{len(part)} {counted}claims that hold by construction")
        lines.append(f"**{name}**{by_scale(part)}: {text} ({sizes}).")
    return lines


def verdict_chart(card: pd.DataFrame) -> alt.Chart:
    """Verdicts per chapter, stacked; substantive and by-construction claims in two panels."""
    card = papers_claims(card)
    grouped = card.groupby(["chapter", "kind", "size", "verdict"]).size().rename("claims").reset_index()
    order = list(dict.fromkeys(card.chapter))
    return alt.Chart(grouped, title="Verdicts per chapter").mark_bar().encode(
        y=alt.Y("chapter:N", sort=order, title=None),
        x=alt.X("sum(claims):Q", title="claims"),
        color=alt.Color("verdict:N", scale=alt.Scale(domain=list(COLOURS), range=list(COLOURS.values())),
                        legend=alt.Legend(orient="bottom")),
        order=alt.Order("verdict_order:Q"),
        opacity=alt.Opacity("size:N", sort=list(SIZES), scale=alt.Scale(domain=list(SIZES), range=[1.0, 0.55]),
                            legend=alt.Legend(title="measured on", orient="bottom")),
        column=alt.Column("kind:N", sort=list(KINDS[:2]), title=None),
        tooltip=["chapter", "kind", "size", "verdict", alt.Tooltip("sum(claims):Q", title="claims")],
    ).transform_calculate(verdict_order=f"indexof({json.dumps(list(VERDICTS))}, datum.verdict)").properties(
        width=300, height=max(60, 24 * len(order)))


_NUMBER = re.compile(r"^\s*(-?[\d.,]+(?:e[-+]?\d+)?)")


def _number(text: str) -> float:
    match = _NUMBER.match(str(text))
    if not match:
        return float("nan")
    try:
        return float(match.group(1).replace(",", ""))
    except ValueError:
        return float("nan")


def numeric_claims(card: pd.DataFrame) -> pd.DataFrame:
    """The numeric claims (rule ``within ±tol``) with paper, ours, tolerance and (ours − paper) / tolerance."""
    card = _prepare(card)
    numeric = card[card.criterion.isin(VALUE_CRITERIA)].copy()
    numeric["paper"] = [float(v.get("paper", np.nan)) for v in numeric["values"]]
    numeric["ours"] = [float(v.get("ours", np.nan)) for v in numeric["values"]]
    numeric["tolerance"] = [max(float(v.get(k, 0.0)) for k in TOLERANCE_PARTS) if c == NOISE
                            else float(v.get("tolerance", np.nan)) for c, v in zip(numeric.criterion, numeric["values"])]
    numeric = numeric.dropna(subset=["paper", "ours", "tolerance"])
    numeric = numeric[numeric.tolerance > 0]
    numeric["offset"] = (numeric.ours - numeric.paper) / numeric.tolerance
    numeric["shown"] = numeric.offset.clip(-10, 10)
    return numeric


def numeric_chart(card: pd.DataFrame) -> alt.Chart | None:
    """Each numeric claim: how far ours is from the paper's value, in tolerances (clipped at ±10), by chapter."""
    numeric = numeric_claims(card)
    if numeric.empty:
        return None
    order = list(dict.fromkeys(numeric.chapter))
    base = alt.Chart(numeric)
    band = alt.Chart(pd.DataFrame({"low": [-1.0], "high": [1.0]})).mark_rect(color=COLOURS["reproduced"], opacity=0.2).encode(
        x="low:Q", x2="high:Q")
    points = base.mark_point(filled=True, size=55, opacity=0.85).encode(
        x=alt.X("shown:Q", title="(ours − paper) / tolerance, clipped at ±10; the band is the tolerance",
                scale=alt.Scale(domain=[-10.5, 10.5])),
        y=alt.Y("chapter:N", sort=order, title=None),
        yOffset=alt.YOffset("jitter:Q"),
        color=alt.Color("verdict:N", scale=alt.Scale(domain=list(COLOURS), range=list(COLOURS.values())), legend=None),
        shape=alt.Shape("size:N", scale=alt.Scale(domain=list(SIZES), range=["circle", "triangle-up"]),
                        legend=alt.Legend(title="measured on", orient="bottom")),
        tooltip=["chapter", "figure", "claim", alt.Tooltip("paper_value", title="paper"),
                 alt.Tooltip("our_value", title="ours"), "rule", "data", "kind", "verdict"],
    ).transform_calculate(jitter="random() * 16 - 8")
    return (band + points).properties(width=620, height=max(80, 34 * len(order)),
                                      title="Numeric claims: ours against the paper's value")


FILTER_SCRIPT = """
<script>
(function () {
  function apply(card) {
    var wanted = {};
    card.querySelectorAll("select[data-filter]").forEach(function (s) { wanted[s.dataset.filter] = s.value; });
    var shown = 0;
    card.querySelectorAll("tbody tr").forEach(function (row) {
      var ok = Object.keys(wanted).every(function (k) { return !wanted[k] || row.dataset[k] === wanted[k]; });
      row.style.display = ok ? "" : "none";
      if (ok) { shown += 1; }
    });
    card.querySelector(".scorecard-count").textContent = shown + " of " + card.querySelectorAll("tbody tr").length + " claims shown";
  }
  document.querySelectorAll(".scorecard").forEach(function (card) {
    card.querySelectorAll("select[data-filter]").forEach(function (s) {
      s.addEventListener("change", function () { apply(card); });
    });
    apply(card);
  });
})();
</script>
"""

STYLE = """
<style>
.scorecard table { table-layout: fixed; width: 100%; border-collapse: collapse; font-size: 0.78rem; }
.scorecard th, .scorecard td { padding: 3px 5px; vertical-align: top; overflow-wrap: anywhere; word-break: normal;
  border-bottom: 1px solid #ddd; text-align: left; }
.scorecard col.c-chapter { width: 10%; } .scorecard col.c-figure { width: 8%; } .scorecard col.c-claim { width: 20%; }
.scorecard col.c-paper { width: 9%; } .scorecard col.c-ours { width: 9%; } .scorecard col.c-verdict { width: 9%; }
.scorecard col.c-criterion { width: 19%; } .scorecard col.c-data { width: 9%; } .scorecard col.c-kind { width: 7%; }
.scorecard .verdict { font-weight: 600; color: white; border-radius: 3px; padding: 1px 4px; white-space: nowrap; }
.scorecard .v-reproduced { background: #2e7d32; } .scorecard .v-same-trend { background: #1565c0; }
.scorecard .v-differs { background: #c62828; } .scorecard .v-not-tested { background: #9e9e9e; }
.scorecard .criterion { font-size: 0.72rem; color: #555; }
.scorecard .filters { display: flex; flex-wrap: wrap; gap: 0.6rem; align-items: center; margin: 0.5rem 0; font-size: 0.85rem; }
</style>
"""


def _select(name: str, label: str, values: list[str]) -> str:
    options = "".join(f'<option value="{html.escape(v)}">{html.escape(v)}</option>' for v in values)
    return f'<label>{label} <select data-filter="{name}"><option value="">all</option>{options}</select></label>'


def _one_sided(reason: str) -> str:
    from lib.verdicts import BY_CONSTRUCTION, ONE_SIDED

    return {**ONE_SIDED, **BY_CONSTRUCTION}.get(reason, reason or "it could only agree")


def _protocol_text(departures: list) -> str:
    return ("at the paper's protocol" if not departures
            else "departs from the paper's protocol: " + "; ".join(map(str, departures)))


def claims_table(card: pd.DataFrame) -> str:
    """Every claim as an HTML table that fits the page, verdicts coloured, with an offline filter above it."""
    card = _prepare(card)
    rows = []
    for _, r in card.iterrows():
        anchor = f"#{r.section}" if r.section else ""
        attributes = " ".join(f'data-{k}="{html.escape(str(v))}"' for k, v in
                              (("chapter", r.chapter), ("verdict", r.verdict), ("kind", r.kind), ("size", r["size"]),
                               ("scale", r.scale)))
        cells = [f'<a href="{html.escape(r.chapter)}.html{anchor}">{html.escape(r.chapter)}</a>',
                 html.escape(str(r.figure)), html.escape(str(r.claim)), html.escape(str(r.paper_value)),
                 html.escape(str(r.our_value)),
                 f'<span class="verdict v-{r.verdict.replace(" ", "-")}" title="{html.escape(str(r.rule))}">'
                 f'{html.escape(r.verdict)}</span>'
                 + (f'<div class="criterion">not tested: {html.escape(str(r.untested))}</div>'
                    if r.get("untested") else "")
                 + (f'<div class="criterion">confirmation: {html.escape(_one_sided(r.one_sided))}</div>'
                    if r.evidence == "confirmation" and r.verdict != "not tested" else ""),
                 f'<span class="criterion">{html.escape(str(r.rule))}</span>'
                 + f'<div class="criterion">{html.escape(_protocol_text(r.departures))}</div>',
                 html.escape(f"{r.data} (scale {r.scale})"), html.escape(r.kind)]
        rows.append(f"<tr {attributes}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    names = ["chapter", "figure", "claim", "paper", "ours", "verdict", "criterion", "data", "kind"]
    heads = ["chapter", "figure", "claim", "paper", "ours", "verdict", "criterion", "measured on", "kind"]
    filters = (_select("chapter", "chapter", list(dict.fromkeys(card.chapter)))
               + _select("verdict", "verdict", [v for v in VERDICTS if (card.verdict == v).any()])
               + _select("kind", "kind", [k for k in KINDS if (card.kind == k).any()])
               + _select("size", "measured on", [s for s in SIZES if (card["size"] == s).any()])
               + _select("scale", "scale", list(dict.fromkeys(card.scale)))
               + '<span class="scorecard-count"></span>')
    return (STYLE + '<div class="scorecard">'
            + f'<div class="filters">{filters}</div>'
            + "<table><colgroup>" + "".join(f'<col class="c-{n}">' for n in names) + "</colgroup>"
            + "<thead><tr>" + "".join(f"<th>{h}</th>" for h in heads) + "</tr></thead>"
            + "<tbody>" + "".join(rows) + "</tbody></table></div>" + FILTER_SCRIPT)
