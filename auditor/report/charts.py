"""Charts for people who would rather look than read, drawn as inline SVG.

Chart *models* are computed here from a finished AuditResult (never from traces) with every
coordinate worked out; ``templates/charts.html.j2`` only writes them out as SVG. No charting
library: the ones that draw SVG from Python (pygal, leather) either load their own script from
a CDN for tooltips or name no bar for screen readers, and both would be a new runtime
dependency for four shapes. Here every chart is plain SVG under the page's strict CSP (no
script, nothing fetched), every bar and point has an accessible label with its figure, and
each chart has its data as a table beside it.

All text is trace-derived and attacker-controlled: it is clipped and has control characters
escaped (``safe_text.inline``); HTML escaping is the template's (autoescape).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Mapping, Sequence

from auditor import concentration
from auditor.trend import Trend
from auditor.model import AuditResult
from auditor.report import summary
from auditor.report.safe_text import inline

WIDTH = 520  # viewBox width (px) of a bar chart; the boundary chart takes a whole row
WIDE = 1080
ROW = 40  # one bar: its label on a line, the bar below
LABEL_CHARS = 170
MAX_BOUNDARY_BARS = 15
TOP_VALUES = 8
UNATTRIBUTED = "(unattributed)"


def label(text: object, limit: int = LABEL_CHARS) -> str:
    return inline(text, limit)


@dataclass(frozen=True, slots=True)
class Bar:
    text: str  # the bar's label line
    value: str  # its figure, as printed
    aria: str  # the accessible label: what the bar is and its figure
    tone: str  # "bad" (unattributed), "value", "other"
    y: float  # top of the label line
    width: float  # bar length in viewBox units (at least 2 when the figure is not zero)


@dataclass(frozen=True, slots=True)
class BarChart:
    id: str
    title: str
    desc: str  # the chart's text alternative (also shown as its caption)
    bars: tuple[Bar, ...]
    columns: tuple[str, str]  # headers of the data table
    note: str = ""
    width: int = WIDTH

    @property
    def height(self) -> int:
        return len(self.bars) * ROW + 6


@dataclass(frozen=True, slots=True)
class Point:
    x: float
    y: float
    aria: str


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    tone: str  # css class: s0, s1, ... or "ref"
    points: tuple[Point, ...]

    @property
    def path(self) -> str:
        return " ".join(f"{p.x:.1f},{p.y:.1f}" for p in self.points)


@dataclass(frozen=True, slots=True)
class Line:
    x1: float
    y1: float
    x2: float
    y2: float
    text: str
    tone: str


@dataclass(frozen=True, slots=True)
class LineChart:
    id: str
    title: str
    desc: str
    width: int
    height: int
    plot: tuple[float, float, float, float]  # left, top, right, bottom of the plot area
    x_ticks: tuple[tuple[float, str], ...]
    y_ticks: tuple[tuple[float, str], ...]
    series: tuple[Series, ...]
    refs: tuple[Line, ...]
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    note: str = ""


def _bars(values: Sequence[tuple[str, str, str, str, float]], width: int = WIDTH) -> tuple[Bar, ...]:
    """(text, value, aria, tone, magnitude) -> bars scaled to the largest magnitude."""
    top = max((m for *_r, m in values), default=0.0) or 1.0
    span = width - 110  # room for the figure after the longest bar
    return tuple(
        Bar(t, v, a, tone, i * ROW, (max(2.0, span * m / top) if m else 0.0))
        for i, (t, v, a, tone, m) in enumerate(values)
    )


def boundaries(result: AuditResult) -> BarChart | None:
    """Unattributed $ below each leaking boundary, worst first (traces when nothing is priced)."""
    if not result.boundaries:
        return None
    by_cost = summary.ranked_by_cost(result)
    rows = []
    for i, b in enumerate(result.boundaries[:MAX_BOUNDARY_BARS], 1):
        where = f"{b.boundary.parent} → {b.boundary.child}"
        cost = summary.money(b.unattributed_cost_usd)
        traces = f"{b.traces} trace{'' if b.traces == 1 else 's'}"
        value = cost if by_cost else traces
        aria = label(f"#{i} {b.boundary.cls.value} boundary {where}: {cost} unattributed below, {traces}, "
                     f"keys lost: {', '.join(b.keys)}", 600)
        rows.append((label(f"#{i} [{b.boundary.cls.value}] {where}"), value, aria, "bad",
                     float(b.unattributed_cost_usd) if by_cost else float(b.traces)))
    more = len(result.boundaries) - len(rows)
    basis = "unattributed LLM spend below each hop" if by_cost else "traces leaking there (nothing is priced)"
    return BarChart(
        "chart-boundaries", "Unattributed spend by boundary",
        f"Bar chart, {len(rows)} leaking boundar{'y' if len(rows) == 1 else 'ies'}, worst first: {basis}.",
        _bars(rows, WIDE), ("boundary", "unattributed $" if by_cost else "traces"),
        note=f"{more} more boundaries are listed below but not drawn." if more else "", width=WIDE,
    )


def spend_by_value(result: AuditResult) -> list[BarChart]:
    """Per required key: spend by its value (top values, the rest as other) and the spend that
    has no value. By calls when none of the key's calls is priced."""
    out = []
    for n, k in enumerate(result.keys, 1):
        # one pass, both measures (a result's calls may be read from disk): spend when any
        # call asked for the key is priced, else calls
        spend: dict[str, Decimal] = defaultdict(Decimal)
        calls: dict[str, Decimal] = defaultdict(Decimal)
        missing_spend, missing_calls, asked, unpriced = Decimal(0), Decimal(0), 0, 0
        for c in result.calls:
            if k.key not in c.values:
                continue
            asked += 1
            v = c.values[k.key]
            if c.cost_usd is None:
                unpriced += 1
            if v is None:
                missing_calls += 1
                if c.cost_usd is not None:
                    missing_spend += c.cost_usd
            else:
                name = label(v, 60)
                calls[name] += 1
                if c.cost_usd is not None:
                    spend[name] += c.cost_usd
        if not asked:
            continue
        priced = unpriced < asked
        by_value = spend if priced else calls
        missing = missing_spend if priced else missing_calls
        if not priced:
            unpriced = 0
        ranked = sorted(by_value.items(), key=lambda kv: (-kv[1], kv[0]))
        shown, rest = ranked[:TOP_VALUES], ranked[TOP_VALUES:]
        total = sum(by_value.values(), Decimal(0)) + missing

        def fig(d: Decimal) -> str:
            return summary.money(d) if priced else f"{int(d)} call{'' if d == 1 else 's'}"

        def share(d: Decimal) -> str:
            return f"{float(d * 100 / total):.1f}%" if total else "n/a"

        rows = [(f"{k.key} = {v}", fig(d), f"{k.key} = {v}: {fig(d)} ({share(d)})", "value", float(d)) for v, d in shown]
        if rest:
            d = sum((d for _v, d in rest), Decimal(0))
            name = f"other ({len(rest)} values)"
            rows.append((name, fig(d), f"{k.key} {name}: {fig(d)} ({share(d)})", "other", float(d)))
        if missing or not rows:
            rows.append((f"{k.key} {UNATTRIBUTED}", fig(missing),
                         f"{k.key} missing, unattributed: {fig(missing)} ({share(missing)})", "bad", float(missing)))
        out.append(BarChart(
            f"chart-key-{n}", f"Spend by {k.key}",
            f"Bar chart of {'LLM spend' if priced else 'LLM calls (nothing is priced)'} by {k.key} value: "
            f"top {min(TOP_VALUES, len(ranked))} of {len(ranked)} value{'' if len(ranked) == 1 else 's'}"
            f"{', the rest as other' if rest else ''}, and the {'spend' if priced else 'calls'} without it.",
            _bars(rows), (k.key, "spend" if priced else "calls"),
            note=f"{unpriced} unpriced call{'' if unpriced == 1 else 's'} not drawn." if unpriced else "",
        ))
    return out


def concentration_curve(result: AuditResult) -> LineChart | None:
    """For agent / Claude Code data: people ranked by spend, cumulative share of all spend."""
    conc = concentration.compute(result.calls, result.parts.keys)
    if conc is None:
        return None
    spend, total = concentration.ranked(result.calls, conc.key)
    w, h = 420, 300
    left, top, right, bottom = 56.0, 14.0, w - 16.0, h - 44.0

    def xy(fx: float, fy: float) -> tuple[float, float]:
        return left + fx * (right - left), bottom - fy * (bottom - top)

    who = "developers" if conc.key == "developer" else f"{conc.key} values"
    pts = [Point(*xy(0, 0), "no one: 0% of spend")]
    rows = []
    cum = Decimal(0)
    n = len(spend)
    for i, d in enumerate(spend, 1):
        cum += d
        fy = float(cum / total) if total else 0.0
        aria = f"top {i} of {n} {who} ({100 * i / n:.0f}%): {fy * 100:.1f}% of spend"
        pts.append(Point(*xy(i / n, fy), aria))
        rows.append((f"{i} of {n} ({100 * i / n:.0f}%)", summary.money(d), f"{fy * 100:.1f}%"))
    tick = [(xy(f, 0)[0], f"{int(f * 100)}%") for f in (0, 0.25, 0.5, 0.75, 1.0)]
    yt = [(xy(0, f)[1], f"{int(f * 100)}%") for f in (0, 0.25, 0.5, 0.75, 1.0)]
    tx = xy(conc.top / n, 0)[0]
    return LineChart(
        "chart-concentration", f"Spend concentration by {conc.key}",
        f"Line chart: {who} ranked by spend (x, share of {who}) against their cumulative share of all LLM "
        f"spend (y); {concentration.line(conc)}. The dashed diagonal is equal spend.",
        w, h, (left, top, right, bottom), tuple(tick), tuple(yt),
        (Series(f"cumulative share of spend by {who}", "s0", tuple(pts)),),
        (Line(*xy(0, 0), *xy(1, 1), "equal spend", "ref"),
         Line(tx, top, tx, bottom, f"top {conc.top} ({conc.pct:.1f}%)", "mark")),
        (f"{who} (ranked)", "their spend", "cumulative share"), tuple(rows),
    )


def report_charts(result: AuditResult) -> dict:
    return {
        "boundary_chart": boundaries(result),
        "value_charts": spend_by_value(result),
        "concentration_chart": concentration_curve(result),
    }


TREND_POINTS = 60  # buckets drawn: the newest hour of minutes, or 60 hours


def _when(start: int, bucket: str) -> str:
    t = datetime.fromtimestamp(start, tz=timezone.utc)
    return t.strftime("%H:%M") if bucket == "minute" else t.strftime("%m-%d %H:00")


def trend_chart(tr: Trend, limits: Mapping[str, float]) -> LineChart | None:
    """The unattributed share per key over the newest buckets of trace time (UTC)."""
    if not tr.starts:
        return None
    last = tr.starts[-1]
    first = max(tr.starts[0], last - (TREND_POINTS - 1) * tr.seconds)
    n = (last - first) // tr.seconds  # bucket slots minus one; gaps stay gaps
    w, h = WIDE, 300
    left, top, right, bottom = 56.0, 14.0, w - 24.0, h - 40.0

    def x(start: int) -> float:
        return left + ((start - first) / tr.seconds / n if n else 0.5) * (right - left)

    def y(pct: float) -> float:
        return bottom - min(max(pct, 0.0), 100.0) / 100 * (bottom - top)

    shown = [s for s in tr.starts if s >= first]
    series, rows = [], []
    for i, k in enumerate(tr.keys):
        pts = []
        for s in shown:
            c = tr.cells.get((s, k))
            if c is None or c.share_pct is None:
                continue
            of = (f"{summary.money(c.unattributed_usd)} of {summary.money(c.cost_usd)}" if c.share_basis == "spend"
                  else f"{c.llm_calls_missing} of {c.llm_calls} calls, nothing priced")
            pts.append(Point(x(s), y(c.share_pct), f"{k} at {_when(s, tr.bucket)} UTC: {c.share_pct:.1f}% unattributed ({of})"))
        if pts:
            series.append(Series(f"{k}: unattributed share", f"s{i % 5}", tuple(pts)))
    for s in shown:
        cells = [tr.cells.get((s, k)) for k in tr.keys]
        rows.append((_when(s, tr.bucket), *(("-" if c is None or c.share_pct is None else
                                             f"{c.share_pct:.1f}% ({c.llm_calls_missing}/{c.llm_calls} calls)") for c in cells)))
    refs = tuple(Line(left, y(limits[k]), right, y(limits[k]), f"{k} limit {limits[k]:g}%", "limit")
                 for k in tr.keys if k in limits)
    ticks = sorted({first + round(j * n / 4) * tr.seconds for j in range(5)} if n else {first})
    return LineChart(
        "chart-trend", f"Unattributed share per {tr.bucket}",
        f"Line chart: the share of LLM spend (of calls when nothing is priced) lacking each key, per {tr.bucket} "
        f"of trace time (UTC, by the call's start), the newest {len(shown)} bucket{'s' if len(shown) != 1 else ''} "
        f"with calls{'; the dashed red lines are the gate limits' if refs else ''}.",
        w, h, (left, top, right, bottom), tuple((x(s), _when(s, tr.bucket)) for s in ticks),
        tuple((y(p), f"{p}%") for p in (0, 25, 50, 75, 100)), tuple(series), refs,
        (f"{tr.bucket} (UTC)", *tr.keys), tuple(reversed(rows)),
        note=(f"{tr.undated_calls} call(s) without a start time are not drawn." if tr.undated_calls else ""),
    )
