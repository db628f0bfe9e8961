"""The engine: traces in, mergeable parts out, by walking the registered rules.

Per trace the engine resolves every key on every span once, marks LLM calls, prices them,
and calls each registered check on what it visits (the trace, each required key's path,
each span, each call). Whole-result rules (TRACE005, AGENT001/002) and the policy run in
``auditor.rollup.finish``, so merging shards and auditing the whole give the same result.
The engine knows no codes: the registry does.
"""

from __future__ import annotations

import time
import traceback
from collections import Counter
from typing import Iterable

from auditor import assemble as assemble_mod
from auditor import calls as calls_mod
from auditor import examples as examples_mod
from auditor import rawpayload
from auditor.compiled import Compiled
from auditor.mechanism import code_location
from auditor.calls import OPERATION
from auditor.duplicates import models_compatible
from auditor.model import AuditResult, Counts, Finding, Headless, LinkAnchor, LinkClaim, LlmCall, Parts, Rejected, RunInfo, Span, evolve
from auditor.plan import Plan
from auditor.rollup import finish
from auditor.rules import REGISTRY, Visit, links, structure
from auditor.rules.context import TraceContext
from auditor.rules.tool import TOOL001

_TRACE = REGISTRY.checks_for(Visit.TRACE)
_KEY = REGISTRY.checks_for(Visit.KEY)
_SPAN = REGISTRY.checks_for(Visit.SPAN)
_CALL = REGISTRY.checks_for(Visit.CALL)


def audit_trace(trace, c: Compiled, enabled) -> tuple[list[Finding], list[LlmCall], list[str], list[Headless], links.Facts]:
    """Findings, priced call records, the spans that look like LLM calls but are not read as
    one, the LLM calls that are roots of the trace (judged over the whole result), and the
    trace's span-link claims and producer anchors (resolved over the whole result)."""
    spans = trace.spans
    order = list(trace.walk())
    is_llm_fn = c.is_llm
    is_llm = {sid: is_llm_fn(spans[sid]) for sid in order}
    values_of = c.values_of
    values = {sid: values_of(s.attributes, s.resource) for sid, s in spans.items()}
    parent = trace.parent
    if c.dialect.raw_spans:  # only a dialect with raw-payload spans has any
        for sid in order:  # parents first: a raw-payload span takes its parent's key values
            if sid in parent and rawpayload.is_raw_span(spans[sid], c.dialect):
                values[sid] = rawpayload.inherit(values[sid], values[parent[sid]])
    below: dict[str, bool] = {}
    children = trace.children
    for sid in reversed(order):
        b = is_llm[sid]
        if not b:
            for ch in children.get(sid, ()):
                if below[ch]:
                    b = True
                    break
        below[sid] = b

    calls: dict[str, LlmCall] = {}
    unread: list[str] = []
    names = c.key_names
    looks_like_llm = calls_mod.looks_like_llm
    for sid in order:
        if is_llm[sid]:
            call = calls_mod.make_call(spans[sid], dict(zip(names, values[sid])), c.dialect)
            cost, note = c.pricer.price(call)
            calls[sid] = evolve(call, cost_usd=cost, price_note=note)
        elif looks_like_llm(spans[sid].attributes):
            unread.append(sid)

    if len(calls) > 1:
        calls = _link_nested(trace, order, is_llm, calls)
    ctx = TraceContext(trace, c, is_llm, values, below, calls, enabled)
    findings: list[Finding] = []
    for check in _TRACE:
        findings.extend(check.fn(ctx))
    for k, spec in enumerate(c.keys):
        if spec.required:
            for check in _KEY:
                findings.extend(check.fn(ctx, k))
    for sid, call in calls.items():
        for check in _CALL:
            findings.extend(check.fn(ctx, call, spans[sid]))
    if _SPAN:
        for sid in order:  # every span, not only LLM calls (tools, agents)
            span, call = spans[sid], calls.get(sid)
            for check in _SPAN:
                findings.extend(check.fn(ctx, span, call))
    headless = structure.headless_roots(trace, is_llm)
    found, linked = links.collect(ctx, _with_code_locations(findings, spans))
    return found, list(calls.values()), unread, headless, linked


def _link_nested(trace, order: list[str], is_llm, calls: dict[str, LlmCall]) -> dict[str, LlmCall]:
    """Mark a call recorded again by the nearest LLM-call span above it: a wrapper of the same
    instrumentation scope, selected without an operation name (legacy gen_ai.system), over an
    inference span that has one, with the same token counts, compatible models and no two
    different response ids (Google ADK's call_llm over its generate_content span). Records of
    different scopes are matched by the duplicate sweep already; two calls that both name their
    operation stay two calls, nested or side by side. One top-down pass: each span's nearest
    LLM-call ancestor from its parent's."""
    spans = trace.spans
    nearest: dict[str, str | None] = {}
    parent = trace.parent
    out = calls
    for sid in order:
        p = parent.get(sid)
        up = None if p is None else (p if is_llm.get(p) else nearest.get(p))
        nearest[sid] = up
        if up is None or sid not in calls:
            continue
        inner, outer = calls[sid], calls[up]
        if inner.scope != outer.scope or OPERATION in spans[up].attributes or OPERATION not in spans[sid].attributes:
            continue
        if inner.usage.token_tuple() != outer.usage.token_tuple() or inner.usage.token_tuple() == (0, 0):
            continue
        if inner.response_id and outer.response_id and inner.response_id != outer.response_id:
            continue
        if not models_compatible(inner.model, outer.model):
            continue
        if out is calls:
            out = dict(calls)
        out[sid] = evolve(inner, within=up)
    return out


def _with_code_locations(findings: list[Finding], spans: dict[str, Span]) -> list[Finding]:
    """Each finding points at code: where its mechanism says the patch goes, else its own span's."""
    out = []
    for f in findings:
        loc = f.mechanism.location if f.mechanism is not None else None
        if loc is None:
            s = spans.get(f.span_id)
            loc = code_location(s.attributes) if s is not None else None
        out.append(evolve(f, code_location=loc) if loc else f)
    return out


def _crashed(t, e: Exception) -> Finding:
    tb = traceback.extract_tb(e.__traceback__)[-1]
    return TOOL001.finding(
        t.trace_id, t.roots[0] if t.roots else "",
        f"internal error auditing this trace: {type(e).__name__}: {str(e)[:300]} "
        f"({tb.filename.rsplit('/', 1)[-1]}:{tb.lineno})",
    )


def audit_traces(traces: Iterable, plan: Plan, rejected: int = 0) -> Parts:
    findings: list[Finding] = []
    calls: list[LlmCall] = []
    examples: dict = {}
    spoken: Counter = Counter()
    keys: set[str] = set()
    required: set[str] = set()
    enabled = _enabled(plan)
    n_traces = n_spans = n_unread = 0
    example: tuple[str, str] | None = None
    headless: list[Headless] = []
    serving: set[str] = set()
    claims: list[LinkClaim] = []
    anchors: list[LinkAnchor] = []
    dropped_links = 0
    for t in traces:
        n_traces += 1
        n_spans += len(t.spans)
        c, found = plan.for_trace(t)
        spoken.update(found)
        keys.update(c.key_names)
        required.update(c.required_names)
        serving |= structure.serving_services(t)
        try:
            f, cl, unread, roots, linked = audit_trace(t, c, enabled)
        except Exception as e:  # a crashing rule is a finding, never a crash of the run
            f, cl, unread, roots, linked = [_crashed(t, e)], [], [], [], links.NONE
        headless.extend(roots)
        if linked is not links.NONE:
            claims.extend(linked.claims)
            anchors.extend(linked.anchors)
            dropped_links += linked.dropped
        if unread:
            n_unread += len(unread)
            first = (t.trace_id, min(unread))
            example = first if example is None else min(example, first)
        findings.extend(f)
        calls.extend(cl)
        examples_mod.offer(examples, t, f, c)
    order = plan.key_order
    return Parts(
        counts=Counts(n_traces, n_spans, rejected, dropped_links),
        findings=tuple(findings),
        calls=tuple(calls),
        keys=tuple(k for k in order if k in keys),
        required_keys=tuple(k for k in order if k in required),
        examples=examples_mod.pick(examples.values()),
        policy=plan.policy,
        dialects=tuple(sorted(spoken.items())),
        key_order=order,
        llm_like_unread=n_unread,
        llm_like_example=example,
        headless=tuple(headless),
        serving=tuple(sorted(serving)),
        claims=tuple(claims),
        anchors=tuple(anchors),
    )


def _enabled(plan: Plan):
    sev = plan.policy.severity
    off = frozenset(code for code, v in sev.items() if v == "off")
    return lambda code: code not in off


def audit_spans(spans: Iterable[Span], plan: Plan, rejected: Iterable[Rejected] = ()) -> Parts:
    return audit_traces(assemble_mod.iter_traces(spans), plan, rejected=sum(1 for _ in rejected))


def audit(
    spans: Iterable[Span],
    schema=None,
    *,
    rejected: Iterable[Rejected] = (),
    inputs: tuple[str, ...] = (),
    plan: Plan | None = None,
) -> AuditResult:
    """Audit spans with a schema (a Schema, a reference, or None to detect dialects)."""
    t0 = time.perf_counter()
    plan = plan or Plan.of(schema)
    parts = audit_spans(spans, plan, rejected)
    return finish(parts, RunInfo(inputs=inputs, schema=plan.name, seconds=time.perf_counter() - t0))




def merge(a: AuditResult, b: AuditResult) -> AuditResult:
    """Two results as one: exact (``audit(x + y) == merge(audit(x), audit(y))``)."""
    from auditor.rollup import merge_parts

    run = RunInfo(inputs=a.run.inputs + b.run.inputs, schema=a.run.schema or b.run.schema, seconds=a.run.seconds + b.run.seconds)
    return finish(merge_parts(a.parts, b.parts), run)


__all__ = ["audit", "merge", "audit_spans", "audit_traces", "audit_trace", "Compiled", "Plan"]
