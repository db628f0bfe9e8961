"""ATTR001-005: where attribution keys are minted, lost, re-minted, changed or malformed.

One walk per (trace, key). A leak is reported once, at the hop just below the nearest span
that carries the key (the carrier); every span of the region below that hop that lacks the
key counts as affected, and the LLM calls among them are listed so cost can be put on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from auditor.boundary import boundary, endpoint
from auditor.model import Finding, Severity


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


def check_key(
    trace,
    key: str,
    k: int,
    values: dict[str, tuple],
    is_llm: dict[str, bool],
    below: dict[str, bool],
    scope: str,
    may_change: bool,
    valid: Callable[[Any], str | None],
    severity: Callable[[str], Severity | None],
) -> list[Finding]:
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
                sev = severity("ATTR003")
                if sev is not None:
                    p = spans[pid]
                    out.append(
                        Finding(
                            "ATTR003", sev, tid, sid,
                            f"{key} changed from {cval!r:.80} to {v!r:.80} at {spans[csid].name!r} -> {spans[sid].name!r}: "
                            "spend below is charged to a different owner (cross-tenant bleed).",
                            key=key, parent_span_id=pid, boundary=boundary(p, spans[sid]),
                            parent_value=cval, child_value=v,
                        )
                    )
            if csid is None or changed or hop is not None:
                problem = valid(v)
                sev = severity("ATTR005") if problem else None
                if sev is not None:
                    out.append(
                        Finding(
                            "ATTR005", sev, tid, sid,
                            f"{key}={v!r:.80} on {spans[sid].name!r} fails its schema: {problem}",
                            key=key, endpoint=endpoint(spans[sid]), child_value=v,
                        )
                    )
            nxt = (sid, v, None)
        else:
            if csid is None:
                if is_llm[sid]:
                    sev = severity("ATTR002")
                    if sev is not None:
                        out.append(
                            Finding(
                                "ATTR002", sev, tid, sid,
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

    sev_leak = severity("ATTR001")
    sev_gap = severity("ATTR004")
    for h, region in regions.items():
        if not region.leak:
            continue
        p, c = spans[region.carrier], spans[h]
        b = boundary(p, c)
        if sev_leak is not None:
            n_llm = len(region.llm)
            out.append(
                Finding(
                    "ATTR001", sev_leak, tid, h,
                    f"{key} is lost at {b}: {region.spans} span(s) and {n_llm} LLM call(s) below carry no {key}.",
                    key=key, parent_span_id=region.carrier, boundary=b,
                    parent_value=values[region.carrier][k], child_value=None,
                    spans_affected=region.spans, llm_calls_affected=tuple(sorted(region.llm)),
                )
            )
        if sev_gap is not None and scope != "llm":
            for g in region.gaps:
                gp = parent[g]
                out.append(
                    Finding(
                        "ATTR004", sev_gap, tid, g,
                        f"{key} reappears on {spans[g].name!r} after being lost at {b}: propagate it instead of "
                        "setting it again.",
                        key=key, parent_span_id=gp, boundary=boundary(spans[gp], spans[g]),
                        parent_value=values[region.carrier][k], child_value=values[g][k],
                    )
                )
    return out
