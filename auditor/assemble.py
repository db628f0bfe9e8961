"""Spans -> traces -> trees, with the structural defects the structure rules report.

Orphans, duplicate ids, self-parents and cycles never hang or crash: every span ends up
in exactly one tree, and what was wrong is kept on the trace as a ``Defect`` (data, not a
finding: ``auditor.rules.structure`` decides codes, wording and severity). Adjacency is
kept in plain dicts (most traces are small chains); networkx finds cycles, on the rare
traces that hold one.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable, Iterator

from auditor.model import Span

ORPHAN, DUPLICATE_ID, SELF_PARENT, CYCLE = "orphan", "duplicate-id", "self-parent", "cycle"


@dataclass(frozen=True, slots=True)
class Defect:
    """What assembly had to repair: the span, its (named) parent and what else is known."""

    kind: str  # ORPHAN | DUPLICATE_ID | SELF_PARENT | CYCLE
    span_id: str
    parent_span_id: str = ""
    names: tuple[str, ...] = ()  # DUPLICATE_ID: the distinct span names sharing the id
    members: tuple[str, ...] = ()  # CYCLE: the span ids of the cycle, smallest first
    count: int = 0  # DUPLICATE_ID: how many distinct spans share the id


@dataclass(frozen=True, slots=True)
class Trace:
    trace_id: str
    spans: dict[str, Span]  # span_id -> span, after folding re-deliveries
    parent: dict[str, str]  # span_id -> parent span_id, only where the parent is in the tree
    children: dict[str, tuple[str, ...]]  # span_id -> children ordered by (start, id)
    roots: tuple[str, ...]  # true roots, orphans, and spans cut out of a cycle
    defects: tuple[Defect, ...] = ()

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


def build(trace_id: str, spans: list[Span]) -> Trace:
    defects: list[Defect] = []
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
        by_id[sid] = min(distinct.values(), key=_order)
        names = tuple(sorted({x.name for x in distinct.values()}))
        defects.append(Defect(DUPLICATE_ID, sid, names=names, count=len(distinct)))

    parent: dict[str, str] = {}
    roots: list[str] = []
    for sid, s in by_id.items():
        pid = s.parent_span_id
        if not pid:
            roots.append(sid)
        elif pid == sid:
            roots.append(sid)
            defects.append(Defect(SELF_PARENT, sid, pid))
        elif pid not in by_id:
            roots.append(sid)
            defects.append(Defect(ORPHAN, sid, pid))
        else:
            parent[sid] = pid

    children: dict[str, list[str]] = defaultdict(list)
    for c, p in parent.items():
        children[p].append(c)

    reached = _reach(roots, children)
    if len(reached) < len(by_id):
        defects.extend(_break_cycles(parent, children, roots, reached))

    def by_start(c: str) -> tuple[int, str]:
        return (by_id[c].start_ns, c)

    # An only child (most parents in a chain) needs no sort.
    ordered = {p: (cs[0],) if len(cs) == 1 else tuple(sorted(cs, key=by_start)) for p, cs in children.items()}
    roots.sort(key=by_start)
    return Trace(trace_id, by_id, parent, ordered, tuple(roots), tuple(defects))


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


def _break_cycles(parent, children, roots, reached) -> list[Defect]:
    """Every span not reachable from a root hangs below a cycle: cut each cycle at its
    smallest span id (deterministic). networkx is imported here, where a trace has a cycle:
    importing it costs every run 0.2 s."""
    import networkx as nx

    out = []
    g = nx.DiGraph()
    g.add_edges_from((c, p) for c, p in parent.items() if c not in reached)
    for cycle in sorted(sorted(c) for c in nx.simple_cycles(g)):
        cut = cycle[0]
        p = parent.pop(cut)
        children[p].remove(cut)
        roots.append(cut)
        out.append(Defect(CYCLE, cut, p, members=tuple(cycle)))
    return out


def iter_traces(spans: Iterable[Span]) -> Iterator[Trace]:
    """Traces one at a time (each dropped by the caller once audited)."""
    by_trace = group(spans)
    while by_trace:
        tid = next(iter(by_trace))
        yield build(tid, by_trace.pop(tid))
