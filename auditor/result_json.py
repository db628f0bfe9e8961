"""The JSON form of an AuditResult (documented by schemas/report.schema.json), both ways.

``to_json`` writes everything a report needs plus the parts (findings, calls) that make a
result mergeable; ``parts_from_json`` reads those parts back for ``auditor merge``.
"""

from __future__ import annotations

import base64
from decimal import Decimal, InvalidOperation
from typing import Any, Iterator

from auditor import __version__, concentration
from auditor.errors import InputError
from auditor.mechanism import Mechanism
from auditor.model import (
    ABSENT,
    NEW,
    UNCHANGED,
    UPDATED,
    AuditResult,
    Boundary,
    BoundaryStats,
    BoundaryClass,
    Counts,
    Endpoint,
    ExampleSpan,
    ExampleTrace,
    Finding,
    Headless,
    KeyStats,
    LinkAnchor,
    LinkClaim,
    LlmCall,
    Parts,
    Policy,
    RunInfo,
    Severity,
    Usage,
)
from auditor.rules import REGISTRY, Visit, links
from auditor.spill import in_ref_order

FORMAT_VERSION = 2  # 2: policy, key_order and dialects travel with the parts
Q6 = Decimal("0.000001")


def usd(d: Decimal | None) -> str | None:
    """USD to 6 decimal places, as a string so no float rounding creeps in."""
    return None if d is None else str(d.quantize(Q6))


def jsonable(v: Any) -> Any:
    if isinstance(v, tuple):
        return [jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, bytes):
        return base64.b64encode(v).decode()
    if isinstance(v, float) and (v != v or v in (float("inf"), float("-inf"))):
        return str(v)
    return v


def _thaw(v: Any) -> Any:
    if isinstance(v, list):
        return tuple(_thaw(x) for x in v)
    if isinstance(v, dict):
        return {k: _thaw(x) for k, x in v.items()}
    return v


def policy_json(p: Policy) -> dict:
    return {
        "severity": dict(p.severity),
        "key_severity": dict(p.key_severity),
        "fail_on": p.fail_on,
        "max_unattributed_pct": dict(p.max_unattributed_pct),
        "allow_empty": p.allow_empty,
    }


def to_json(result: AuditResult, findings: Any = None, calls: Any = None) -> dict:
    """The whole document; ``findings`` / ``calls`` stand in for those lists when given (the
    JSON report writes them a slice at a time, from ``records_json``). What people read comes
    first (summary, policy, boundaries); then the mergeable parts ``merge`` reads back."""
    return {
        "format_version": FORMAT_VERSION,
        "tool": {"name": "trace-attribution-auditor", "version": __version__},
        "run": {"inputs": list(result.run.inputs), "schema": result.run.schema, "seconds": round(result.run.seconds, 3)},
        "summary": _summary_json(result),
        "policy": policy_json(result.policy),
        "boundaries": [_boundary_json(b) for b in result.boundaries],
        "findings": list(records_json(result)["findings"]) if findings is None else findings,
        "calls": list(records_json(result)["calls"]) if calls is None else calls,
        **_parts_json(result.parts),
        **({} if result.baseline is None else {"baseline": baseline_json(result)}),
    }


def _summary_json(result: AuditResult) -> dict:
    gate = result.gate
    policy = result.policy
    return {
        "traces": result.counts.traces,
        "spans": result.counts.spans,
        "rejected_spans": result.counts.rejected_spans,
        "rejected_links": result.counts.rejected_links,
        "llm_calls": len(result.calls),
        "llm_call_records": len(result.calls) + len(result.duplicates),
        "findings": dict(result.finding_counts),
        "keys": {k.key: _key_json(k) for k in result.keys},
        "cost": {
            "total_usd": usd(result.total_cost_usd),
            "unpriced_calls": result.unpriced_calls,
            "unattributed_usd": {k.key: usd(k.unattributed_usd) for k in result.keys},
            "concentration": concentration.to_json(concentration.compute(result.calls, result.parts.keys), usd),
            "priced_calls": len(result.calls) - result.unpriced_calls,
            "by_finding_code": {
                code: {"llm_calls": cc.calls, "usd": usd(cc.cost_usd), "unpriced_calls": cc.unpriced_calls}
                for code, cc in result.cost_by_code.items()
            },
        },
        "dialects": dict(result.parts.dialects),
        "gate": {
            "passed": gate.passed,
            "fail_on": policy.fail_on,
            "max_unattributed_pct": dict(policy.max_unattributed_pct),
            "reasons": list(gate.reasons),
        },
    }


def _key_json(k: KeyStats) -> dict:
    return {
        "llm_calls": k.llm_calls,
        "llm_calls_missing": k.llm_calls_missing,
        "missing_pct": round(100.0 * k.llm_calls_missing / k.llm_calls, 2) if k.llm_calls else 0.0,
        "unattributed_usd": usd(k.unattributed_usd),
        "unattributed_pct": None if k.share_pct is None else round(k.share_pct, 2),
        "unattributed_basis": k.share_basis,
        "unattributed_unpriced_calls": k.unattributed_unpriced_calls,
    }


def _boundary_json(b: BoundaryStats) -> dict:
    return {
        "parent": b.boundary.parent.to_json(),
        "child": b.boundary.child.to_json(),
        "class": b.boundary.cls.value,
        "keys": list(b.keys),
        "traces": b.traces,
        "spans_affected": b.spans_affected,
        "llm_calls_affected": b.llm_calls_affected,
        "unattributed_cost_usd": usd(b.unattributed_cost_usd),
        "example_trace_ids": list(b.example_trace_ids),
        "fix": b.fix,
        "mechanisms": [{"name": n, "confidence": c, "traces": t} for n, c, t in b.mechanisms],
    }


def _parts_json(parts: Parts) -> dict:
    """The mergeable facts besides findings and calls: what ``merge`` reads back."""
    return {
        "keys": list(parts.keys),
        "required_keys": list(parts.required_keys),
        "key_order": list(parts.key_order),
        "headless": [_headless_json(h) for h in sorted(parts.headless, key=lambda h: (h.trace_id, h.span_id))],
        "serving_services": list(parts.serving),
        "llm_like_unread": {
            "spans": parts.llm_like_unread,
            "example": None if parts.llm_like_example is None
            else {"trace_id": parts.llm_like_example[0], "span_id": parts.llm_like_example[1]},
        },
        "examples": [example_json(e) for e in parts.examples],
        "link_claims": [
            {"trace_id": c.trace_id, "span_id": c.span_id, "endpoint": c.endpoint.to_json(), "key": c.key,
             "targets": [{"trace_id": t, "span_id": sp} for t, sp in c.targets], "spans_affected": c.spans_affected,
             "llm_calls": list(c.calls), "never_minted": [finding_json(f) for f in c.never]}
            for c in sorted(parts.claims, key=lambda c: (c.trace_id, c.span_id, c.key))
        ],
        "link_anchors": [
            {"trace_id": a.trace_id, "span_id": a.span_id, "endpoint": a.endpoint.to_json(),
             "values": {k: jsonable(v) for k, v in a.values}}
            for a in sorted(parts.anchors, key=lambda a: (a.trace_id, a.span_id))
        ],
    }


def baseline_json(result: AuditResult) -> dict:
    """Only for a run judged against a baseline: derived, so ``merge`` never reads it back."""
    base = result.baseline

    def group(g, state: str) -> dict:
        return {"id": g.ident, "state": state, "code": g.code, "key": g.key, "severity": g.severity.value,
                "findings": g.findings, "traces": g.traces, "llm_calls": g.llm_calls, "usd": usd(g.cost_usd)}

    return {
        "source": base.source,
        "tolerance_pct": base.tolerance_pct,
        "counts": {s: base.count(s) for s in (NEW, UNCHANGED, UPDATED, ABSENT)},
        "groups": [group(g, base.state(g)) for g in result.groups] + [group(g, ABSENT) for g in base.absent],
        "keys": [
            {"key": k.key, "before_pct": _round(k.before_pct), "after_pct": _round(k.after_pct), "basis": k.basis,
             "before_usd": usd(k.before_usd), "after_usd": usd(k.after_usd), "rise_points": _round(k.rise)}
            for k in base.keys
        ],
        "new_leaks": [b.boundary.to_json() for b in base.new_leaks],
        "fixed_leaks": [b.boundary.to_json() for b in base.fixed_leaks],
        "cost": {"before_usd": usd(base.cost_before), "after_usd": usd(base.cost_after),
                 "change_usd": usd(base.cost_after - base.cost_before)},
    }


def _round(p: float | None) -> float | None:
    return None if p is None else round(p, 2)


def records_json(result: AuditResult) -> dict[str, Iterator[dict]]:
    """The document's long lists, item by item, in their order."""
    return {
        "findings": map(finding_json, result.findings),
        "calls": (call_json(c, result) for c in in_ref_order(result.parts.calls)),
    }


def example_json(e: ExampleTrace) -> dict:
    return {
        "boundary": e.boundary.to_json(),
        "trace_id": e.trace_id,
        "total_spans": e.total_spans,
        "hops": [{"parent_span_id": p, "span_id": c, "keys": list(k)} for p, c, k in e.hops],
        "spans": [
            {
                "span_id": s.span_id,
                "parent_span_id": s.parent_span_id,
                "service": s.service,
                "scope": s.scope,
                "name": s.name,
                "llm": s.llm,
                "values": jsonable(dict(s.values)),
            }
            for s in e.spans
        ],
    }


def finding_json(f: Finding) -> dict:
    return {
        "code": f.code,
        "severity": f.severity.value,
        "key": f.key,
        "trace_id": f.trace_id,
        "span_id": f.span_id,
        "parent_span_id": f.parent_span_id,
        "boundary": f.boundary.to_json() if f.boundary else None,
        "endpoint": f.endpoint.to_json() if f.endpoint else None,
        "message": f.message,
        "values": {"parent": jsonable(f.parent_value), "child": jsonable(f.child_value)},
        "spans_affected": f.spans_affected,
        "llm_calls_affected": list(f.llm_calls_affected),
        "code_location": _location_json(f.code_location),
        "mechanism": None if f.mechanism is None else f.mechanism.to_json(),
    }


def _location_json(loc) -> dict | None:
    return None if loc is None else {"filepath": loc[0], "lineno": loc[1], "function": loc[2]}


def call_json(c: LlmCall, result: AuditResult | None = None) -> dict:
    u = c.usage
    out = {
        "trace_id": c.trace_id,
        "span_id": c.span_id,
        "service": c.service,
        "scope": c.scope,
        "name": c.name,
        "start_ns": c.start_ns,
        "end_ns": c.end_ns,
        "provider": c.provider,
        "model": c.model,
        "response_id": c.response_id,
        "tier": c.tier,
        "usage": {
            "input": u.input,
            "cache_read": u.cache_read,
            "cache_write_5m": u.cache_write_5m,
            "cache_write_1h": u.cache_write_1h,
            "cache_write": u.cache_write,
            "output": u.output,
            "reasoning": u.reasoning,
            "convention": u.convention,
            "source": u.source,
            "basis": u.basis,
            "ambiguous": u.ambiguous,
            "total": u.total,
            "problem": u.problem,
        },
        "values": jsonable(dict(c.values)),
        "cost_usd": None if c.cost_usd is None else str(c.cost_usd),
        "price_note": c.price_note,
        "reported_cost_usd": None if c.reported_cost_usd is None else str(c.reported_cost_usd),
    }
    if c.server_tools is not None:
        out["server_tools"] = dict(c.server_tools)
    if c.within is not None:  # only on a record that an LLM-call span above it records again
        out["within"] = c.within
    if result is not None:
        canon = result.duplicates.get(c.ref)
        out["duplicate_of"] = None if canon is None else {"trace_id": canon[0], "span_id": canon[1]}
    return out


# ---------------------------------------------------------------- reading back


def parts_from_json(doc: Any, where: str) -> tuple[Parts, RunInfo]:
    """The mergeable parts of a JSON result written by ``to_json``."""
    try:
        if not isinstance(doc, dict) or doc.get("format_version") != FORMAT_VERSION:
            raise InputError(f"{where}: $.format_version: expected {FORMAT_VERSION} (a result written by 'auditor check --format json')")
        s = doc["summary"]
        counts = Counts(int(s["traces"]), int(s["spans"]), int(s.get("rejected_spans", 0)), int(s.get("rejected_links", 0)))
        derived = REGISTRY.codes_visiting(Visit.RESULT)  # derived again by finish, from the calls
        claims = tuple(_claim(c, f"{where}: $.link_claims[{i}]") for i, c in enumerate(doc.get("link_claims") or ()))
        anchors = tuple(_anchor(a) for a in doc.get("link_anchors") or ())
        claimed = links.claimed(claims)  # findings resolved again by finish, from the claims
        findings = tuple(
            f for f in (_finding(f, f"{where}: $.findings[{i}]") for i, f in enumerate(doc["findings"]) if f["code"] not in derived)
            if not links.is_derived(f, claimed)
        )
        calls = tuple(_call(c, f"{where}: $.calls[{i}]") for i, c in enumerate(doc["calls"]))
        run = doc.get("run") or {}
        examples = tuple(_example(e) for e in doc.get("examples") or ())
        pol = doc["policy"]
        policy = Policy(
            severity={str(k): str(v) for k, v in pol["severity"].items()},
            key_severity={str(k): str(v) for k, v in pol["key_severity"].items()},
            fail_on=str(pol["fail_on"]),
            max_unattributed_pct={str(k): float(v) for k, v in pol["max_unattributed_pct"].items()},
            allow_empty=bool(pol.get("allow_empty", False)),
        )
        dialects = tuple(sorted((str(k), int(v)) for k, v in (s.get("dialects") or {}).items()))
        unread = doc.get("llm_like_unread") or {}
        ex = unread.get("example")
        parts = Parts(counts, findings, calls, tuple(doc["keys"]), tuple(doc["required_keys"]), examples,
                      policy, dialects, tuple(doc.get("key_order") or doc["keys"]),
                      int(unread.get("spans") or 0), None if ex is None else (str(ex["trace_id"]), str(ex["span_id"])),
                      tuple(_headless(h) for h in doc.get("headless") or ()),
                      tuple(str(x) for x in doc.get("serving_services") or ()), claims, anchors)
        return parts, RunInfo(tuple(run.get("inputs") or ()), run.get("schema") or "", float(run.get("seconds") or 0))
    except InputError:
        raise
    except (KeyError, TypeError, ValueError, InvalidOperation) as e:
        raise InputError(f"{where}: not a complete auditor JSON result ({type(e).__name__}: {e})") from None


def _headless_json(h: Headless) -> dict:
    d = {"trace_id": h.trace_id, "span_id": h.span_id, "service": h.service, "name": h.name,
         "endpoint": h.endpoint.to_json(), "code_location": _location_json(h.code_location),
         "mechanism": None if h.mechanism is None else h.mechanism.to_json()}
    if h.root is not None:  # only below an agent or tool span that roots the trace
        d["root"] = h.root
    return d


def _headless(d: dict) -> Headless:
    loc = d.get("code_location")
    root = d.get("root")
    return Headless(str(d["trace_id"]), str(d["span_id"]), str(d["service"]), str(d["name"]), _endpoint(d["endpoint"]),
                    None if loc is None else (loc["filepath"], loc["lineno"], loc["function"]),
                    _mechanism(d.get("mechanism")), None if root is None else str(root))


def _mechanism(d) -> Mechanism | None:
    return None if d is None else Mechanism.from_json(d)


def _claim(d: dict, where: str) -> LinkClaim:
    return LinkClaim(
        str(d["trace_id"]), str(d["span_id"]), _endpoint(d["endpoint"]), str(d["key"]),
        tuple((str(t["trace_id"]), str(t["span_id"])) for t in d["targets"]), int(d["spans_affected"]),
        tuple(str(x) for x in d["llm_calls"]),
        tuple(_finding(f, f"{where}.never_minted[{i}]") for i, f in enumerate(d.get("never_minted") or ())),
    )


def _anchor(d: dict) -> LinkAnchor:
    return LinkAnchor(str(d["trace_id"]), str(d["span_id"]), _endpoint(d["endpoint"]),
                      tuple((str(k), _thaw(v)) for k, v in (d.get("values") or {}).items()))


def _endpoint(d) -> Endpoint | None:
    return None if d is None else Endpoint(d["service"], d["scope"], d["name"])


def _finding(d: dict, where: str) -> Finding:
    b = d.get("boundary")
    loc = d.get("code_location")
    values = d.get("values") or {}
    return Finding(
        code=d["code"],
        severity=Severity(d["severity"]),
        trace_id=d["trace_id"],
        span_id=d["span_id"],
        message=d["message"],
        key=d.get("key"),
        parent_span_id=d.get("parent_span_id"),
        boundary=None if b is None else Boundary(_endpoint(b["parent"]), _endpoint(b["child"]), BoundaryClass(b["class"])),
        endpoint=_endpoint(d.get("endpoint")),
        parent_value=_thaw(values.get("parent")),
        child_value=_thaw(values.get("child")),
        spans_affected=int(d.get("spans_affected") or 0),
        llm_calls_affected=tuple(d.get("llm_calls_affected") or ()),
        code_location=None if loc is None else (loc["filepath"], loc["lineno"], loc["function"]),
        mechanism=_mechanism(d.get("mechanism")),
    )


def _boundary(b: dict) -> Boundary:
    return Boundary(_endpoint(b["parent"]), _endpoint(b["child"]), BoundaryClass(b["class"]))


def _example(d: dict) -> ExampleTrace:
    return ExampleTrace(
        boundary=_boundary(d["boundary"]),
        trace_id=d["trace_id"],
        total_spans=int(d["total_spans"]),
        hops=tuple((h["parent_span_id"], h["span_id"], tuple(h["keys"])) for h in d["hops"]),
        spans=tuple(
            ExampleSpan(
                s["span_id"], s["parent_span_id"], s["service"], s["scope"], s["name"], bool(s["llm"]),
                {k: _thaw(v) for k, v in (s.get("values") or {}).items()},
            )
            for s in d["spans"]
        ),
    )


def _tools(v: Any) -> tuple[tuple[str, int], ...] | None:
    if v is None:
        return None
    if not isinstance(v, dict) or any(isinstance(n, bool) or not isinstance(n, int) or n < 0 for n in v.values()):
        raise TypeError("server_tools: expected an object of request counts")
    return tuple(sorted((str(k), n) for k, n in v.items()))


def _call(d: dict, where: str) -> LlmCall:
    u = d["usage"]
    return LlmCall(
        trace_id=d["trace_id"],
        span_id=d["span_id"],
        service=d["service"],
        scope=d["scope"],
        name=d["name"],
        start_ns=int(d["start_ns"]),
        end_ns=int(d["end_ns"]),
        provider=d.get("provider"),
        model=d.get("model"),
        response_id=d.get("response_id"),
        usage=Usage(
            input=int(u["input"]),
            cache_read=int(u["cache_read"]),
            cache_write_5m=int(u["cache_write_5m"]),
            cache_write_1h=int(u["cache_write_1h"]),
            cache_write=int(u["cache_write"]),
            output=int(u["output"]),
            reasoning=int(u["reasoning"]),
            convention=u["convention"],
            source=u.get("source", ""),
            basis=u.get("basis", ""),
            ambiguous=bool(u.get("ambiguous", False)),
            total=int(u.get("total") or 0),
            problem=str(u.get("problem") or ""),
        ),
        values={k: _thaw(v) for k, v in (d.get("values") or {}).items()},
        cost_usd=None if d.get("cost_usd") is None else Decimal(d["cost_usd"]),
        price_note=d.get("price_note", ""),
        tier=d.get("tier"),
        reported_cost_usd=None if d.get("reported_cost_usd") is None else Decimal(d["reported_cost_usd"]),
        server_tools=_tools(d.get("server_tools")),
        within=None if d.get("within") is None else str(d["within"]),
    )
