"""Attribution across span links: a consumer trace that links back to its producer.

Queues (Celery, Kafka, SQS, batch jobs) often start a new trace on the consumer and link it to
the producer span instead of parenting it. Per trace, the engine cannot see the producer, so it
records facts: *anchors* (PRODUCER spans, with the keys they carry) and *claims* (a root or
CONSUMER span with links, a key its LLM calls below lack, those calls, and the ATTR002
findings held back for them). ``resolve`` runs in ``finish`` over the whole input:

* a linked producer carried the key: ATTR001 at a ``messaging`` boundary (producer -> consumer),
  instead of the never-minted ATTR002;
* no linked span is in the input (anchors are PRODUCER spans only): ATTR002 stands, and ATTR006
  (note) names the links that could not be followed: we do not guess what they carried;
* the linked producers are in the input and lack the key too: ATTR002 stands.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from auditor.boundary import endpoint
from auditor.model import (
    SPAN_KIND_CONSUMER,
    SPAN_KIND_PRODUCER,
    Boundary,
    BoundaryClass,
    Finding,
    LinkAnchor,
    LinkClaim,
    Severity,
)
from auditor.rules.attribution import ATTR001, ATTR002
from auditor.rules.context import TraceContext
from auditor.rules.registry import MAX_VALUE, Rule, Visit

ATTR006 = Rule(
    "ATTR006", "link-unresolved", "attribution", Severity.NOTE,
    "a consumer's LLM calls lack the key and the producer span it links to is not in the input",
    "The consumer trace links to a producer span that is not among the audited spans (anchors are spans of "
    "kind PRODUCER), so whether the key was lost at the queue or never set cannot be said: ATTR002 stands. "
    "Audit the producer's traces together with the consumer's (one input, or shards merged with 'auditor merge').",
    Visit.LINK)


def _clip(v: Any) -> Any:
    return v[:MAX_VALUE] + "…" if isinstance(v, str) and len(v) > MAX_VALUE else v


@dataclass(frozen=True, slots=True)
class Facts:
    """One trace's link facts: its claims, its anchors, and the links ingest dropped from its spans."""

    claims: tuple[LinkClaim, ...] = ()
    anchors: tuple[LinkAnchor, ...] = ()
    dropped: int = 0


NONE = Facts()


def collect(ctx: TraceContext, findings: list[Finding]) -> tuple[list[Finding], Facts]:
    """The trace's anchors and claims; the ATTR002 findings a claim holds are taken out of ``findings``."""
    trace, values = ctx.trace, ctx.values
    spans = trace.spans
    keys = ctx.compiled.keys
    anchors: list[LinkAnchor] = []
    sources: list[str] = []
    roots = trace.roots
    dropped = 0
    for sid, s in spans.items():
        if s.links_dropped:
            dropped += s.links_dropped
        if s.kind == SPAN_KIND_PRODUCER:
            vals = values[sid]
            anchors.append(LinkAnchor(trace.trace_id, sid, endpoint(s), tuple(
                (spec.name, _clip(vals[k])) for k, spec in enumerate(keys) if vals[k] is not None)))
        if s.links and (s.kind == SPAN_KIND_CONSUMER or sid in roots):
            sources.append(sid)
    if not sources:
        return findings, (Facts((), tuple(anchors), dropped) if anchors or dropped else NONE)
    claims = [c for sid in sorted(sources) for c in _claims(ctx, sid, frozenset(sources))]
    held = {(c.key, sid) for c in claims for sid in c.calls}
    kept, never = [], {}
    for f in findings:
        if f.code == ATTR002.code and (f.key, f.span_id) in held:
            never[(f.key, f.span_id)] = f
        else:
            kept.append(f)
    claims = [LinkClaim(c.trace_id, c.span_id, c.endpoint, c.key, c.targets, c.spans_affected, c.calls,
                        tuple(never[(c.key, s)] for s in c.calls if (c.key, s) in never)) for c in claims]
    return kept, Facts(tuple(claims), tuple(anchors), dropped)


def _claims(ctx: TraceContext, src: str, sources: frozenset[str]) -> list[LinkClaim]:
    """One claim per required key that ``src`` and its ancestors lack and an LLM call below lacks too."""
    trace, values, is_llm = ctx.trace, ctx.values, ctx.is_llm
    up = [src]
    while up[-1] in trace.parent:
        up.append(trace.parent[up[-1]])
    s = trace.spans[src]
    targets = tuple(sorted(s.links))
    out = []
    for k, spec in enumerate(ctx.compiled.keys):
        if not spec.required or any(values[a][k] is not None for a in up):
            continue
        n, calls, stack = 0, [], [src]
        while stack:  # the region below src that lacks the key; other consumers claim their own
            sid = stack.pop()
            if values[sid][k] is not None or (sid != src and sid in sources):
                continue
            n += 1
            if is_llm[sid]:
                calls.append(sid)
            stack.extend(trace.children.get(sid, ()))
        if calls:
            out.append(LinkClaim(trace.trace_id, src, endpoint(s), spec.name, targets, n, tuple(sorted(calls))))
    return out


def resolve(claims: tuple[LinkClaim, ...], anchors: tuple[LinkAnchor, ...]) -> list[Finding]:
    """Each claim judged against the anchors of the whole input (order-free, so merge is exact)."""
    index: dict[tuple[str, str], LinkAnchor] = {}
    for a in sorted(anchors, key=lambda a: (a.trace_id, a.span_id, a.endpoint, repr(a.values))):
        index.setdefault((a.trace_id, a.span_id), a)
    out: list[Finding] = []
    for c in sorted(claims, key=lambda c: (c.trace_id, c.span_id, c.key)):
        found = [(t, index.get(t)) for t in c.targets]
        carriers = [a for _, a in found if a is not None and dict(a.values).get(c.key) is not None]
        if carriers:
            a = carriers[0]  # targets are sorted: the smallest producer that carried it
            b = Boundary(a.endpoint, c.endpoint, BoundaryClass.MESSAGING)
            out.append(ATTR001.finding(
                c.trace_id, c.span_id,
                f"{c.key} is lost at {b} (a span link to producer span {a.span_id} in trace {a.trace_id}): "
                f"{c.spans_affected} span(s) and {len(c.calls)} LLM call(s) of the consumer carry no {c.key}.",
                key=c.key, parent_span_id=a.span_id, boundary=b, parent_value=dict(a.values)[c.key],
                spans_affected=c.spans_affected, llm_calls_affected=c.calls))
            continue
        out.extend(c.never)
        missing = [t for t, a in found if a is None]
        if missing:
            named = ", ".join(f"trace {t} span {s}" for t, s in missing[:3]) + (" ..." if len(missing) > 3 else "")
            out.append(ATTR006.finding(
                c.trace_id, c.span_id,
                f"{len(c.calls)} LLM call(s) below {c.endpoint} lack {c.key}, and it links to {len(missing)} span(s) "
                f"not in the input ({named}): whether {c.key} was lost at the queue or never set is not known.",
                key=c.key, endpoint=c.endpoint, llm_calls_affected=c.calls))
    return out


def is_derived(f: Finding, claimed: frozenset[tuple[str, str, str]]) -> bool:
    """A finding ``resolve`` makes again from the claims (dropped when a JSON result is read back)."""
    if f.code == ATTR006.code:
        return True
    return f.code in (ATTR001.code, ATTR002.code) and (f.trace_id, f.span_id, f.key or "") in claimed


def claimed(claims) -> frozenset[tuple[str, str, str]]:
    """(trace, span, key) of every finding a claim can turn into: its consumer span (ATTR001) and its calls (ATTR002)."""
    return frozenset((c.trace_id, s, c.key) for c in claims for s in (c.span_id, *c.calls))


RULES = (ATTR006,)
CHECKS = ()
