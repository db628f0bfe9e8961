"""One self-contained HTML page (inline CSS and JS, no network) for people to read.

Every span name and attribute value is attacker-controlled, so the template autoescapes
everything, the script only ever sets ``textContent``/``hidden``, and a Content-Security-Policy
allows no script but our own (pinned by its hash) and no network at all.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

import jinja2

from auditor import __version__
from auditor.baseline import delta_text
from auditor.model import AuditResult, ExampleSpan, ExampleTrace
from auditor.report import charts, summary
from auditor.rules import HEADLESS, NEVER_MINTED, all_rules

MAX_FINDINGS = 2000
MAX_TREES = 25  # example trees for the worst boundaries only: keeps big reports light
MAX_VALUE = 120


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("auditor.report", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["value"] = show_value
    return env


def show_value(v: Any) -> str:
    """An attribute value as a short, plain string (escaping is the template's job)."""
    if isinstance(v, str):
        s = v
    elif isinstance(v, bytes):
        s = base64.b64encode(v).decode()
    else:
        s = json.dumps(v, default=str, ensure_ascii=False)
    s = " ".join(s.split())
    return s if len(s) <= MAX_VALUE else s[: MAX_VALUE - 1] + "…"


@dataclass(frozen=True, slots=True)
class Node:
    """One event of an example tree, flattened so the template needs no recursion."""

    kind: str  # "open" (span with children), "leaf", "close"
    span: ExampleSpan | None = None
    state: str = ""  # "", "leak" (the hop child), "below" (under a leak)
    lost: tuple[str, ...] = ()  # keys lost at this hop
    cost: str = ""
    model: str = ""


def tree(ex: ExampleTrace, calls: dict) -> list[Node]:
    kids: dict[str, list[ExampleSpan]] = {}
    roots: list[ExampleSpan] = []
    ids = {s.span_id for s in ex.spans}
    for s in ex.spans:
        if s.parent_span_id and s.parent_span_id in ids:
            kids.setdefault(s.parent_span_id, []).append(s)
        else:
            roots.append(s)
    lost = {child: keys for _p, child, keys in ex.hops}
    out: list[Node] = []
    # (span, under_leak) or None as a close marker; iterative so deep chains are fine.
    stack: list[tuple[ExampleSpan, bool] | None] = [(r, False) for r in reversed(roots)]
    while stack:
        item = stack.pop()
        if item is None:
            out.append(Node("close"))
            continue
        s, under = item
        state = "leak" if s.span_id in lost else ("below" if under else "")
        call = calls.get((ex.trace_id, s.span_id))
        cost = summary.money(call.cost_usd) if call is not None and call.cost_usd is not None else ""
        model = (call.model or "") if call is not None else ""
        children = kids.get(s.span_id, [])
        out.append(Node("open" if children else "leaf", s, state, lost.get(s.span_id, ()), cost, model))
        if children:
            stack.append(None)
            for c in reversed(children):
                stack.append((c, under or state == "leak"))
    return out


def _csp(script: str) -> str:
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    return (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        f"script-src 'sha256-{digest}'; form-action 'none'; base-uri 'none'"
    )


def context(result: AuditResult) -> dict:
    calls = {c.ref: c for c in result.calls}
    boundaries = []
    for i, b in enumerate(result.boundaries, 1):
        ex = summary.example_for(result, b) if i <= MAX_TREES else None
        boundaries.append(
            {
                "rank": i,
                "stats": b,
                "cost": summary.money(b.unattributed_cost_usd),
                "cause": summary.cause(b),
                "example": ex,
                "tree": tree(ex, calls) if ex is not None else [],
            }
        )
    groups = result.groups[:MAX_FINDINGS]
    never = {(f.trace_id, f.span_id) for f in result.findings if f.code == NEVER_MINTED}
    headless = {(f.trace_id, f.span_id) for f in result.findings if f.code == HEADLESS} & never
    refs = {result.duplicates.get(r, r) for r in never}
    never_cost = sum((calls[r].cost_usd for r in refs if r in calls and calls[r].cost_usd is not None), Decimal(0))
    unrooted = {
        "calls": len(refs),
        "cost": summary.money(never_cost) if never_cost else "",
        "headless": len(headless),
        "keys": sorted({f.key for f in result.findings if f.code == NEVER_MINTED and f.key}),
    }
    rules = {r.code: r for r in all_rules()}
    used = sorted(result.finding_counts)
    return {
        "h": summary.headline(result),
        "result": result,
        "boundaries": boundaries,
        "unrooted": unrooted,
        "by_cost": summary.ranked_by_cost(result),
        "groups": groups,
        "more_groups": len(result.groups) - len(groups),
        "baseline": result.baseline,
        "money": summary.money,
        "delta_text": delta_text,
        "states": {g.ident: result.baseline.state(g) for g in groups} if result.baseline is not None else {},
        "codes": used,
        "keys": sorted({f.key for f in result.findings if f.key}),
        "severities": [s for s in ("error", "warning", "note") if any(f.severity.value == s for f in result.findings)],
        "rules": [rules[c] for c in used if c in rules],
        "key_names": result.parts.keys,
        "inputs": result.run.inputs,
        "schema": result.run.schema,
        "version": __version__,
        **charts.report_charts(result),
    }


def page(result: AuditResult, back_link: str = "") -> tuple[str, str]:
    """The page and its Content-Security-Policy (the web UI also sends it as a header)."""
    env = _env()
    script = env.get_template("report.js").render()
    csp = _csp(script)
    html = env.get_template("report.html.j2").render(**context(result), script=script, csp=csp, back_link=back_link)
    return html, csp


def render(result: AuditResult, options=None) -> str:
    return page(result)[0]
