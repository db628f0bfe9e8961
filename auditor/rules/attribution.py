"""ATTR001-005: where attribution keys are minted, lost, re-minted, changed or malformed.

One walk per (trace, key). A leak is reported once, at the hop just below the nearest span
that carries the key (the carrier); every span of the region below that hop that lacks the
key counts as affected, and the LLM calls among them are listed so cost can be put on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from auditor import mechanism
from auditor.boundary import boundary, endpoint
from auditor.model import Finding, Severity
from auditor.rules.context import TraceContext
from auditor.rules.registry import Check, Rule, Visit

E, W = Severity.ERROR, Severity.WARNING

ATTR001 = Rule(
    "ATTR001", "attribution-leak", "attribution", E,
    "leak: parent carries the key, child on the attribution path does not",
    "The key was on the parent span and is missing on the child, on the way to an LLM call. "
    "Every span below is unattributed. Fix the hop: propagate the context (network), pass the "
    "metadata into the client or framework (library), or copy the context into the thread or task (in-process).",
    Visit.KEY, keyed=True)
ATTR002 = Rule(
    "ATTR002", "never-minted", "attribution", E,
    "never minted: an LLM call whose whole ancestry lacks the key",
    "No span above this LLM call carries the key: it was never set for this request, or the "
    "call runs outside the request's trace (see TRACE004). Set the key where the request enters.",
    Visit.KEY, keyed=True)
ATTR003 = Rule(
    "ATTR003", "attribution-mismatch", "attribution", E,
    "mismatch: the value changed across a hop (cross-tenant bleed)",
    "A span carries a different value than its nearest ancestor that carries the key: spend is "
    "charged to the wrong owner. Look for a shared client or a context reused across requests.",
    Visit.KEY, keyed=True)
ATTR004 = Rule(
    "ATTR004", "attribution-gap", "attribution", W,
    "gap: the key reappears below a leak (re-minted)",
    "The key was lost at a hop above and set again here. The spans in between are unattributed, and "
    "the re-minted value may not be the original: propagate it instead of setting it again.",
    Visit.KEY)
ATTR005 = Rule(
    "ATTR005", "attribution-bad-value", "attribution", E,
    "the value fails its JSON Schema",
    "The key is present but its value does not satisfy the schema (empty, wrong type, pattern, enum).",
    Visit.KEY, keyed=True)


@dataclass(slots=True)
class _Region:
    carrier: str
    hop: str
    spans: int = 0
    llm: list[str] = field(default_factory=list)
    leak: bool = False
    gaps: list[str] = field(default_factory=list)


def _same(a: Any, b: Any) -> bool:
    return a == b or str(a) == str(b)


def check_key(ctx: TraceContext, k: int) -> list[Finding]:
    """ATTR001-005 for the ``k``-th key of the trace's schema, in one walk."""
    trace, values, is_llm, below = ctx.trace, ctx.values, ctx.is_llm, ctx.below
    spec = ctx.compiled.keys[k]
    key, scope, may_change = spec.name, ctx.compiled.schema.scope, spec.may_change
    valid = ctx.compiled.validator(key)
    on = ctx.enabled
    changed_on, invalid_on, unminted_on = on("ATTR003"), on("ATTR005"), on("ATTR002")  # once per key, not per span
    spans = trace.spans
    parent = trace.parent
    children = trace.children
    tid = trace.trace_id
    out: list[Finding] = []
    regions: dict[str, _Region] = {}

    # Stack entries: (span id, carrier span id, carrier value, region hop id).
    stack: list[tuple[str, str | None, Any, str | None]] = [(r, None, None, None) for r in reversed(trace.roots)]
    while stack:
        sid, csid, cval, hop = stack.pop()
        v = values[sid][k]
        if v is not None:
            pid = parent.get(sid)
            if hop is not None:
                regions[hop].gaps.append(sid)
            changed = csid is not None and not _same(v, cval)
            if changed and not may_change and pid is not None:
                if changed_on:
                    p = spans[pid]
                    out.append(
                        ATTR003.finding(
                            tid, sid,
                            f"{key} changed from {cval!r:.80} to {v!r:.80} at {spans[csid].name!r} -> {spans[sid].name!r}: "
                            "spend below is charged to a different owner (cross-tenant bleed).",
                            key=key, parent_span_id=pid, boundary=boundary(p, spans[sid]),
                            parent_value=cval, child_value=v,
                        )
                    )
            if csid is None or changed or hop is not None:
                problem = valid(v) if invalid_on else None
                if problem:
                    out.append(
                        ATTR005.finding(
                            tid, sid,
                            f"{key}={v!r:.80} on {spans[sid].name!r} fails its schema: {problem}",
                            key=key, endpoint=endpoint(spans[sid]), child_value=v,
                        )
                    )
            nxt = (sid, v, None)
        else:
            if csid is None:
                if is_llm[sid]:
                    if unminted_on:
                        out.append(
                            ATTR002.finding(
                                tid, sid,
                                f"LLM call {spans[sid].name!r} has no {key}, and neither has any span above it: "
                                "set it where the request enters (or see TRACE004 if the call lost its trace).",
                                key=key, parent_span_id=parent.get(sid), endpoint=endpoint(spans[sid]),
                            )
                        )
                nxt = (None, None, None)
            else:
                h = hop if hop is not None else sid
                region = regions.get(h)
                if region is None:
                    region = regions[h] = _Region(csid, h)
                region.spans += 1
                if is_llm[sid]:
                    region.llm.append(sid)
                if scope == "path":
                    region.leak = region.leak or below[h]
                elif scope == "all":
                    region.leak = True
                elif is_llm[sid]:
                    region.leak = True
                nxt = (csid, cval, h)
        kids = children.get(sid)
        if kids:
            ncs, ncv, nh = nxt
            for c in reversed(kids):
                stack.append((c, ncs, ncv, nh))

    out.extend(_leaks(ctx, k, regions))
    return out


def _leaks(ctx: TraceContext, k: int, regions: dict[str, _Region]) -> list[Finding]:
    """ATTR001 once per leaking region (at its hop), ATTR004 where the key reappears below it."""
    spans, parent, values, tid = ctx.trace.spans, ctx.trace.parent, ctx.values, ctx.trace.trace_id
    key = ctx.compiled.keys[k].name
    leak_on = ctx.enabled("ATTR001")
    gap_on = ctx.enabled("ATTR004") and ctx.compiled.schema.scope != "llm"
    out: list[Finding] = []
    for h, region in regions.items():
        if not region.leak:
            continue
        b = boundary(spans[region.carrier], spans[h])
        if leak_on:
            out.append(
                ATTR001.finding(
                    tid, h,
                    f"{key} is lost at {b}: {region.spans} span(s) and {_calls(ctx, region.llm)} LLM call(s) below carry no {key}.",
                    key=key, parent_span_id=region.carrier, boundary=b,
                    parent_value=values[region.carrier][k], child_value=None,
                    spans_affected=region.spans, llm_calls_affected=tuple(sorted(region.llm)),
                    mechanism=mechanism.for_hop(spans[region.carrier], spans[h]),
                )
            )
        if gap_on:
            for g in region.gaps:
                gp = parent[g]
                out.append(
                    ATTR004.finding(
                        tid, g,
                        f"{key} reappears on {spans[g].name!r} after being lost at {b}: propagate it instead of "
                        "setting it again.",
                        key=key, parent_span_id=gp, boundary=boundary(spans[gp], spans[g]),
                        parent_value=values[region.carrier][k], child_value=values[g][k],
                    )
                )
    return out


def _calls(ctx: TraceContext, records: list[str]) -> int:
    """Calls, not records: a record inside its wrapper of the same call (``within``) counts once."""
    here = set(records)
    return sum(1 for sid in records if ctx.calls[sid].within not in here)


RULES = (ATTR001, ATTR002, ATTR003, ATTR004, ATTR005)
CHECKS = (Check(Visit.KEY, ("ATTR001", "ATTR002", "ATTR003", "ATTR004", "ATTR005"), check_key),)
