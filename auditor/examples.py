"""One example trace per leaking boundary, kept as data so reports can draw the leak.

Reporters never re-walk traces, yet the HTML report shows a leak in context. So the engine
keeps, per boundary, the spans of one example trace (the smallest; ties broken by trace id)
with each span's resolved attribution values. Taking that minimum is associative and
commutative, so merging shards keeps the same example as auditing the whole.
"""

from __future__ import annotations

from typing import Any, Iterable

from auditor.model import Boundary, ExampleSpan, ExampleTrace, Finding
from auditor.rules import LEAK

MAX_SPANS = 400  # a huge smallest trace is cut to the leak's ancestry and subtree
MAX_VALUE_CHARS = 256


def rank(ex: ExampleTrace) -> tuple[int, str]:
    return (ex.total_spans, ex.trace_id)


def pick(examples: Iterable[ExampleTrace]) -> tuple[ExampleTrace, ...]:
    """The best example per boundary, sorted by boundary (the merge of example sets)."""
    best: dict[Boundary, ExampleTrace] = {}
    for ex in examples:
        cur = best.get(ex.boundary)
        if cur is None or rank(ex) < rank(cur):
            best[ex.boundary] = ex
    return tuple(best[b] for b in sorted(best))


def offer(best: dict[Boundary, ExampleTrace], trace, findings: Iterable[Finding], compiled) -> None:
    """Replace the kept example of each boundary this trace leaks at, if this trace ranks better."""
    hops: dict[Boundary, dict[tuple[str, str], set[str]]] = {}
    for f in findings:
        if f.code == LEAK and f.boundary is not None:
            hops.setdefault(f.boundary, {}).setdefault((f.parent_span_id or "", f.span_id), set()).add(f.key or "")
    if not hops:
        return
    key = (len(trace.spans), trace.trace_id)
    values = None
    for b, edges in hops.items():
        cur = best.get(b)
        if cur is not None and rank(cur) <= key:
            continue
        if values is None:
            values = _values(trace, compiled)
        best[b] = _build(trace, b, edges, values, compiled)


def _clip(v: Any) -> Any:
    if isinstance(v, str) and len(v) > MAX_VALUE_CHARS:
        return v[:MAX_VALUE_CHARS] + "…"
    return v


def _values(trace, c) -> dict[str, tuple[bool, dict[str, Any]]]:
    out = {}
    for sid, s in trace.spans.items():
        vals = {name: _clip(r(s.attributes, s.resource)) for name, r in zip(c.key_names, c.resolvers)}
        out[sid] = (bool(c.is_llm(s)), vals)
    return out


def _build(trace, b: Boundary, edges: dict[tuple[str, str], set[str]], values, c) -> ExampleTrace:
    order = list(trace.walk())
    if len(order) > MAX_SPANS:
        keep: set[str] = set()
        for _p, child in edges:
            sid = child
            while sid and sid not in keep:
                keep.add(sid)
                sid = trace.parent.get(sid)
            stack = [child]
            while stack and len(keep) < MAX_SPANS * 2:
                s = stack.pop()
                keep.add(s)
                stack.extend(trace.children.get(s, ()))
        order = [sid for sid in order if sid in keep][:MAX_SPANS]
    kept = set(order)
    spans = []
    for sid in order:
        s = trace.spans[sid]
        llm, vals = values[sid]
        parent = trace.parent.get(sid, "")
        spans.append(ExampleSpan(sid, parent if parent in kept else "", s.service, s.scope, s.name, llm, vals))
    hop_list = tuple(sorted((p, ch, tuple(sorted(keys))) for (p, ch), keys in edges.items()))
    return ExampleTrace(b, trace.trace_id, len(trace.spans), hop_list, tuple(spans))
