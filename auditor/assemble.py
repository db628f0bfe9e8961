"""Spans -> traces -> trees, with the structural findings (TRACE001-003).

Orphans, duplicate ids, self-parents and cycles never hang or crash: every span ends up
in exactly one tree. Adjacency is kept in plain dicts (most traces are small chains);
networkx is used where it earns its keep, on the rare traces that hold a cycle, and for
callers that want a graph (``Trace.graph()``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable, Iterator

import networkx as nx

from auditor.model import Finding, Severity, Span


@dataclass(frozen=True, slots=True)
class Trace:
    trace_id: str
    spans: dict[str, Span]  # span_id -> span, after folding re-deliveries
    parent: dict[str, str]  # span_id -> parent span_id, only where the parent is in the tree
    children: dict[str, tuple[str, ...]]  # span_id -> children ordered by (start, id)
    roots: tuple[str, ...]  # true roots, orphans, and spans cut out of a cycle

    def graph(self) -> nx.DiGraph:
        g = nx.DiGraph()
        g.add_nodes_from(self.spans)
        g.add_edges_from((p, c) for c, p in self.parent.items())
        return g

    def walk(self) -> Iterator[str]:
        """Span ids top-down (parents before children), iteratively: deep chains are fine."""
        stack = list(reversed(self.roots))
        children = self.children
        while stack:
            sid = stack.pop()
            yield sid
            kids = children.get(sid)
            if kids:
                stack.extend(reversed(kids))


def group(spans: Iterable[Span]) -> dict[str, list[Span]]:
    by_trace: dict[str, list[Span]] = defaultdict(list)
    for s in spans:
        by_trace[s.trace_id].append(s)
    return by_trace


def _order(s: Span) -> tuple:
    return (s.start_ns, s.end_ns, s.name, s.parent_span_id, s.service, s.scope, s.kind)


def build(trace_id: str, spans: list[Span]) -> tuple[Trace, list[Finding]]:
    findings: list[Finding] = []
    by_id: dict[str, Span] = {}
    dupes: dict[str, list[Span]] = {}
    for s in spans:
        cur = by_id.get(s.span_id)
        if cur is None:
            by_id[s.span_id] = s
        elif cur.identity() != s.identity():
            dupes.setdefault(s.span_id, [cur]).append(s)
    for sid, group_ in dupes.items():
        distinct = {x.identity(): x for x in group_}
        keep = min(distinct.values(), key=_order)
        by_id[sid] = keep
        names = sorted({x.name for x in distinct.values()})
        findings.append(
            Finding(
                code="TRACE002",
                severity=Severity.WARNING,
                trace_id=trace_id,
                span_id=sid,
                message=(
                    f"span id {sid} is used by {len(distinct)} different spans ({', '.join(names)[:200]}); "
                    "kept the earliest. Span ids must be unique within a trace: check for a custom id "
                    "generator or a proxy that copies ids."
                ),
            )
        )

    parent: dict[str, str] = {}
    roots: list[str] = []
    for sid, s in by_id.items():
        pid = s.parent_span_id
        if not pid:
            roots.append(sid)
        elif pid == sid:
            roots.append(sid)
            findings.append(
                Finding(
                    code="TRACE003",
                    severity=Severity.ERROR,
                    trace_id=trace_id,
                    span_id=sid,
                    parent_span_id=pid,
                    message=f"span {sid} ({s.name}) names itself as its parent; treated as a root.",
                )
            )
        elif pid not in by_id:
            roots.append(sid)
            findings.append(
                Finding(
                    code="TRACE001",
                    severity=Severity.WARNING,
                    trace_id=trace_id,
                    span_id=sid,
                    parent_span_id=pid,
                    message=(
                        f"span {sid} ({s.name}) names parent {pid}, which is not in the trace "
                        "(lost, unsampled or not exported); its subtree is audited on its own."
                    ),
                )
            )
        else:
            parent[sid] = pid

    children: dict[str, list[str]] = defaultdict(list)
    for c, p in parent.items():
        children[p].append(c)

    reached = _reach(roots, children)
    if len(reached) < len(by_id):
        findings.extend(_break_cycles(trace_id, by_id, parent, children, roots, reached))

    ordered = {p: tuple(sorted(cs, key=lambda c: (by_id[c].start_ns, c))) for p, cs in children.items()}
    roots.sort(key=lambda r: (by_id[r].start_ns, r))
    return Trace(trace_id, by_id, parent, ordered, tuple(roots)), findings


def _reach(roots: list[str], children: dict[str, list[str]]) -> set[str]:
    seen: set[str] = set()
    stack = list(roots)
    while stack:
        sid = stack.pop()
        if sid in seen:
            continue
        seen.add(sid)
        stack.extend(children.get(sid, ()))
    return seen


def _break_cycles(trace_id, by_id, parent, children, roots, reached) -> list[Finding]:
    """Every span not reachable from a root hangs below a cycle: cut each cycle at its
    smallest span id (deterministic) and report it once."""
    findings = []
    g = nx.DiGraph()
    g.add_edges_from((c, p) for c, p in parent.items() if c not in reached)
    for cycle in sorted(sorted(c) for c in nx.simple_cycles(g)):
        cut = cycle[0]
        p = parent.pop(cut)
        children[p].remove(cut)
        roots.append(cut)
        findings.append(
            Finding(
                code="TRACE003",
                severity=Severity.ERROR,
                trace_id=trace_id,
                span_id=cut,
                parent_span_id=p,
                message=(
                    f"parent links form a cycle through {len(cycle)} spans ({', '.join(cycle[:5])}"
                    f"{'...' if len(cycle) > 5 else ''}); cut at {cut} ({by_id[cut].name})."
                ),
            )
        )
    return findings


def assemble(spans: Iterable[Span]) -> tuple[list[Trace], list[Finding]]:
    findings: list[Finding] = []
    traces = list(iter_traces(spans, findings))
    return traces, findings


def iter_traces(spans: Iterable[Span], findings: list[Finding]) -> Iterator[Trace]:
    """Traces one at a time (each dropped once audited); structural findings go to ``findings``."""
    by_trace = group(spans)
    while by_trace:
        tid = next(iter(by_trace))
        t, f = build(tid, by_trace.pop(tid))
        findings.extend(f)
        yield t
