"""Findings grouped for people: one row per (code, key, place), with counts and examples.

Machines want every finding (JSON, SARIF); a person wants "ATTR001 tenant_id at gateway ->
worker: 412 findings in 97 traces, $3.20 of spend". The place is the normalised boundary for
hop findings, else the span's normalised endpoint, so a group's identity carries no trace or
span id: the same leak in tomorrow's traces is the same group, which is what a baseline
matches on. Derived in ``rollup.finish`` from the judged findings, like every other figure.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Iterable

from auditor.joined import Naming, TraceBlock
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


class _Group:
    __slots__ = ("first", "worst", "findings", "traces", "last", "examples", "calls", "cost", "unpriced", "shared")

    def __init__(self, f: Finding) -> None:
        self.first = self.worst = f
        self.findings = self.traces = self.calls = self.unpriced = 0
        self.last, self.examples = None, []
        self.cost = Decimal(0)
        self.shared: set = set()  # kept records of folds the group names (counted once, at the end)

    def count(self, calls: Iterable[LlmCall]) -> None:
        for c in calls:
            self.calls += 1
            if c.cost_usd is None:
                self.unpriced += 1
            else:
                self.cost += c.cost_usd


class GroupTally:
    """Groups, worst first: severity, then spend concerned, then how many findings. Fed a trace
    at a time (``auditor.joined``): traces arrive in order, so distinct traces need no set."""

    def __init__(self, naming: Naming) -> None:
        self.naming = naming
        self.acc: dict[str, _Group] = {}

    def trace(self, block: TraceBlock) -> None:
        naming = self.naming
        tid = block.trace_id
        local: dict[str, set[str]] = {}
        for f in block.findings:
            gid = ident(f)
            a = self.acc.get(gid)
            if a is None:
                a = self.acc[gid] = _Group(f)
            elif f.severity.rank > a.worst.severity.rank:
                a.worst = f
            a.findings += 1
            if a.last != tid:
                a.last = tid
                a.traces += 1
                if len(a.examples) < EXAMPLES:
                    a.examples.append(tid)
            for ref in naming.refs(f):
                if naming.call(ref, block) is None:
                    continue
                if naming.shared(ref):
                    a.shared.add(ref)
                else:
                    local.setdefault(gid, set()).add(ref[1])
        for gid, sids in local.items():
            self.acc[gid].count(block.calls[sid] for sid in sids)

    def done(self) -> tuple[FindingGroup, ...]:
        kept = self.naming.kept
        out = []
        for gid, a in self.acc.items():
            a.count(kept[r] for r in a.shared)
            first = a.first
            out.append(FindingGroup(
                ident=gid,
                code=first.code,
                severity=a.worst.severity,
                key=first.key,
                boundary=first.boundary,
                endpoint=first.endpoint,
                findings=a.findings,
                traces=a.traces,
                llm_calls=a.calls,
                cost_usd=a.cost,
                unpriced_calls=a.unpriced,
                example_trace_ids=tuple(a.examples),
                example=first,
            ))
        out.sort(key=lambda g: (-g.severity.rank, -g.cost_usd, -g.findings, g.ident))
        return tuple(out)
