"""TRACE001-006: what is wrong with a trace's shape, calls outside any request, calls recorded twice.

TRACE001-003 report the defects assembly repaired (it keeps them as data). Over the whole
result (derived in ``finish``, so exact under merge): TRACE004 an LLM call that is the root of
its own trace, or below an agent or tool span that is, in a service that serves requests (its
context was lost), TRACE006 the same in a
service that never serves one (a job or script), TRACE005 records folded into one call.
"""

from __future__ import annotations

from auditor.assemble import CYCLE, DUPLICATE_ID, ORPHAN, SELF_PARENT
from auditor import mechanism
from auditor.boundary import endpoint
from auditor.mechanism import code_location
from auditor.rawpayload import SOURCE as RAW_SOURCE
from auditor.calls import AGENT_OPERATIONS, OPERATION
from auditor.model import SPAN_KIND_CONSUMER, SPAN_KIND_SERVER, Finding, Headless, LlmCall, Severity
from auditor.rules.context import ResultContext, TraceContext
from auditor.rules.registry import Check, Rule, Visit

E, W, N = Severity.ERROR, Severity.WARNING, Severity.NOTE

TRACE001 = Rule(
    "TRACE001", "orphan-span", "structure", W, "orphan: parent_span_id names a span absent from the trace",
    "The parent was lost, unsampled or not exported, or the context was broken. The subtree is audited on its own.",
    Visit.TRACE)
TRACE002 = Rule(
    "TRACE002", "duplicate-span-id", "structure", W, "duplicate span id",
    "Two different spans share an id within a trace; the earliest is kept. Exact re-deliveries are folded silently.",
    Visit.TRACE)
TRACE003 = Rule(
    "TRACE003", "cycle", "structure", E, "cycle or self-parent",
    "Parent links loop. The cycle is cut at its smallest span id so the rest can be audited.",
    Visit.TRACE)
TRACE004 = Rule(
    "TRACE004", "headless-llm-call", "structure", E, "headless LLM call: an LLM call that is a trace root",
    "The LLM call started a trace of its own (or the agent or tool span above it did: an agent run in a "
    "thread pool): the request's context did not reach it at all. The classic cause is a thread pool or "
    "run_in_executor that does not copy contextvars.",
    Visit.RESULT)
TRACE006 = Rule(
    "TRACE006", "llm-call-in-job", "structure", N,
    "an LLM call that is a trace root in a service that serves no request: a job or script",
    "The call starts a trace of its own, but its service serves no request and consumes no message anywhere "
    "in the input: a batch job or script, not a lost context. Give the job a root span that carries the "
    "attribution keys; ATTR002 still says which are missing.",
    Visit.RESULT)
TRACE005 = Rule(
    "TRACE005", "duplicate-llm-call", "structure", N, "the same LLM call recorded by several spans (counted once)",
    "Two instrumentations recorded one call (e.g. a framework's span and the client library's). "
    "It is counted and priced once; it is attributed if any record carries the key.",
    Visit.RESULT)


def defects(ctx: TraceContext) -> list[Finding]:
    t = ctx.trace
    out = []
    for d in t.defects:
        s = t.spans[d.span_id]
        if d.kind == DUPLICATE_ID:
            out.append(TRACE002.finding(
                t.trace_id, d.span_id,
                f"span id {d.span_id} is used by {d.count} different spans ({', '.join(d.names)[:200]}); "
                "kept the earliest. Span ids must be unique within a trace: check for a custom id "
                "generator or a proxy that copies ids."))
        elif d.kind == SELF_PARENT:
            out.append(TRACE003.finding(
                t.trace_id, d.span_id, f"span {d.span_id} ({s.name}) names itself as its parent; treated as a root.",
                parent_span_id=d.parent_span_id))
        elif d.kind == ORPHAN:
            out.append(TRACE001.finding(
                t.trace_id, d.span_id,
                f"span {d.span_id} ({s.name}) names parent {d.parent_span_id}, which is not in the trace "
                "(lost, unsampled or not exported); its subtree is audited on its own.",
                parent_span_id=d.parent_span_id))
        elif d.kind == CYCLE:
            m = d.members
            out.append(TRACE003.finding(
                t.trace_id, d.span_id,
                f"parent links form a cycle through {len(m)} spans ({', '.join(m[:5])}{'...' if len(m) > 5 else ''}); "
                f"cut at {d.span_id} ({s.name}).",
                parent_span_id=d.parent_span_id))
    return out


def headless_roots(trace, is_llm) -> list[Headless]:
    """LLM calls that are roots of their trace, or that sit below an agent or tool span that is
    (an agent run in a thread pool without the context: the framework's invoke_agent span roots
    the trace, and the calls below it lost the request just the same), with the mechanism the
    root's own span evidences. A log record (e.g. Claude Code's api_request event) is not a span:
    having no parent says nothing about lost context."""
    out = []
    for r in trace.roots:
        s = trace.spans[r]
        if s.parent_span_id or s.is_log_record:
            continue
        if is_llm[r]:
            m = mechanism.for_headless(s)
            out.append(Headless(trace.trace_id, r, s.service, s.name, endpoint(s), m.location or code_location(s.attributes), m))
        elif s.kind not in (SPAN_KIND_SERVER, SPAN_KIND_CONSUMER) and s.attributes.get(OPERATION) in AGENT_OPERATIONS:
            m = mechanism.for_headless(s)
            for sid in _calls_below(trace, r, is_llm):
                c = trace.spans[sid]
                out.append(Headless(trace.trace_id, sid, c.service, c.name, endpoint(c),
                                    m.location or code_location(c.attributes), m, root=s.name))
    return out


def _calls_below(trace, root: str, is_llm) -> list[str]:
    """LLM calls in the subtree of ``root`` (iteratively: no recursion limit on deep traces)."""
    out, stack = [], [root]
    while stack:
        sid = stack.pop()
        if is_llm[sid]:
            out.append(sid)
        stack.extend(trace.children.get(sid, ()))
    return sorted(out)


def serving_services(trace) -> set[str]:
    return {s.service for s in trace.spans.values() if s.kind in (SPAN_KIND_SERVER, SPAN_KIND_CONSUMER)}


def lost_context(ctx: ResultContext) -> list[Finding]:
    """TRACE004: a headless call in a service that serves requests: the request's context was lost."""
    return _headless(ctx, TRACE004, True, "is the root of its own trace", (
        "LLM call {name!r} in {service} {where}: the request's context never reached it. "
        "Usually a thread pool or run_in_executor without contextvars.copy_context(), or a client created "
        "outside the request."))


def job_calls(ctx: ResultContext) -> list[Finding]:
    """TRACE006: a headless call in a service that never serves: a job's call, not a lost context."""
    return _headless(ctx, TRACE006, False, "starts its own trace", (
        "LLM call {name!r} in {service} {where}, and {service} serves no request and consumes no "
        "message in this input: a job or script rather than a lost request context. Give the job a root span "
        "that carries the keys (ATTR002 says which are missing)."))


def _headless(ctx: ResultContext, rule: Rule, serving: bool, as_root: str, text: str) -> list[Finding]:
    def where(h: Headless) -> str:
        return as_root if h.root is None else f"is in a trace of its own, rooted at the agent or tool span {h.root!r}"

    return [rule.finding(h.trace_id, h.span_id, text.format(name=h.name, service=h.service, where=where(h)),
                         endpoint=h.endpoint, code_location=h.code_location,
                         mechanism=h.mechanism if serving or h.mechanism is None else mechanism.in_job(h.mechanism))
            for h in ctx.headless if (h.service in ctx.serving) is serving]


def duplicate_records(ctx: ResultContext) -> list[Finding]:
    """Records folded into one call. A raw payload folded into its own trace's record is the
    library describing one call twice, not two instrumentations: folded silently."""
    out = []
    for f in ctx.folded:
        best = f.kept
        for rec in f.folded:
            if rec.usage.source == RAW_SOURCE and rec.trace_id == best.trace_id:
                continue  # the library's own raw copy of the call it recorded (LiteLLM's raw_gen_ai_request): no news
            out.append(TRACE005.finding(
                rec.trace_id, rec.span_id,
                f"LLM call {rec.name!r} ({rec.scope or '-'}) is also recorded by span {best.span_id} in trace "
                f"{best.trace_id} ({best.scope or '-'}); counted and priced once, from that record "
                f"(its usage is the most detailed: {usage_summary(best)})."))
    return out


def usage_summary(c: LlmCall) -> str:
    u = c.usage
    parts = [f"{u.source or 'usage'} {u.convention}", f"input {u.input}", f"output {u.output}"]
    if u.cache_read:
        parts.append(f"cache read {u.cache_read}")
    if u.cache_write_total:
        parts.append(f"cache write {u.cache_write_total}")
    if u.reasoning:
        parts.append(f"reasoning {u.reasoning}")
    return ", ".join(parts)


RULES = (TRACE001, TRACE002, TRACE003, TRACE004, TRACE005, TRACE006)
CHECKS = (
    Check(Visit.TRACE, ("TRACE001", "TRACE002", "TRACE003"), defects),
    Check(Visit.RESULT, ("TRACE004",), lost_context),
    Check(Visit.RESULT, ("TRACE005",), duplicate_records),
    Check(Visit.RESULT, ("TRACE006",), job_calls),
)
