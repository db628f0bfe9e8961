"""Findings grouped for people: one row per (code, key, place), with counts and examples.

Machines want every finding (JSON, SARIF); a person wants "ATTR001 tenant_id at gateway ->
worker: 412 findings in 97 traces, $3.20 of spend". The place is the normalised boundary for
hop findings, else the span's normalised endpoint, so a group's identity carries no trace or
span id: the same leak in tomorrow's traces is the same group, which is what a baseline
matches on. Derived in ``rollup.finish`` from the judged findings, like every other figure.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Iterable, Mapping

from auditor.model import Finding, FindingGroup, LlmCall

EXAMPLES = 3


def ident(f: Finding) -> str:
    """A finding's group identity. Endpoints and boundaries are already normalised (ids,
    numbers and UUIDs replaced), so this stays low-cardinality across runs."""
    if f.boundary is not None:
        where = f"{f.boundary} [{f.boundary.cls.value}]"
    elif f.endpoint is not None:
        where = str(f.endpoint)
    else:
        where = ""
    return f"{f.code}|{f.key or ''}|{where}"


def group(findings: Iterable[Finding], by_ref: Mapping[tuple[str, str], LlmCall],
          dup_of: Mapping[tuple[str, str], tuple[str, str]]) -> tuple[FindingGroup, ...]:
    """Groups, worst first: severity, then spend concerned, then how many findings."""
    acc: dict[str, list] = {}
    for f in findings:
        gid = ident(f)
        a = acc.get(gid)
        if a is None:
            a = acc[gid] = [f, f, 0, set(), set()]  # first, worst, count, traces, call refs
        elif f.severity.rank > a[1].severity.rank:
            a[1] = f
        a[2] += 1
        a[3].add(f.trace_id)
        for sid in (f.span_id, *f.llm_calls_affected):
            ref = (f.trace_id, sid)
            ref = dup_of.get(ref, ref)
            if ref in by_ref:
                a[4].add(ref)
    out = []
    for gid, (first, worst, n, traces, refs) in acc.items():
        calls = [by_ref[r] for r in refs]
        out.append(FindingGroup(
            ident=gid,
            code=first.code,
            severity=worst.severity,
            key=first.key,
            boundary=first.boundary,
            endpoint=first.endpoint,
            findings=n,
            traces=len(traces),
            llm_calls=len(calls),
            cost_usd=sum((c.cost_usd for c in calls if c.cost_usd is not None), Decimal(0)),
            unpriced_calls=sum(1 for c in calls if c.cost_usd is None),
            example_trace_ids=tuple(sorted(traces)[:EXAMPLES]),
            example=first,
        ))
    out.sort(key=lambda g: (-g.severity.rank, -g.cost_usd, -g.findings, g.ident))
    return tuple(out)
