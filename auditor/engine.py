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
from functools import lru_cache
from typing import Iterable

from auditor import assemble as assemble_mod
from auditor import calls as calls_mod
from auditor import examples as examples_mod
from auditor.compiled import Compiled
from auditor.model import AuditResult, Counts, Finding, Headless, LlmCall, Parts, Rejected, RunInfo, Span, evolve
from auditor.plan import Plan
from auditor.rollup import finish
from auditor.rules import REGISTRY, Visit, structure
from auditor.rules.context import TraceContext
from auditor.rules.tool import TOOL001

_TRACE = REGISTRY.checks_for(Visit.TRACE)
_KEY = REGISTRY.checks_for(Visit.KEY)
_SPAN = REGISTRY.checks_for(Visit.SPAN)
_CALL = REGISTRY.checks_for(Visit.CALL)


def audit_trace(trace, c: Compiled, enabled) -> tuple[list[Finding], list[LlmCall], list[str], list[Headless]]:
    """Findings, priced call records, the spans that look like LLM calls but are not read as
    one, and the LLM calls that are roots of the trace (judged over the whole result)."""
    spans = trace.spans
    order = list(trace.walk())
    is_llm_fn = c.is_llm
    is_llm = {sid: is_llm_fn(spans[sid]) for sid in order}
    values_of = c.values_of
    values = {sid: values_of(s.attributes, s.resource) for sid, s in spans.items()}
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
    headless = structure.headless_roots(trace, is_llm, _code_location)
    return _with_code_locations(findings, spans), list(calls.values()), unread, headless


def _with_code_locations(findings: list[Finding], spans: dict[str, Span]) -> list[Finding]:
    out = []
    for f in findings:
        s = spans.get(f.span_id)
        loc = _code_location(s.attributes) if s is not None else None
        out.append(evolve(f, code_location=loc) if loc else f)
    return out


def _code_location(a) -> tuple[str, int | None, str | None] | None:
    path = a.get("code.filepath") or a.get("code.file.path")
    func = a.get("code.function") or a.get("code.function.name")
    if not path and not func:
        return None
    line = a.get("code.lineno") or a.get("code.line.number")
    return _location(str(path or ""), int(line) if isinstance(line, int) else None, str(func) if func else None)


@lru_cache(maxsize=65_536)  # one tuple per place, not per finding
def _location(path: str, line: int | None, func: str | None) -> tuple[str, int | None, str | None]:
    return (path, line, func)


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
    for t in traces:
        n_traces += 1
        n_spans += len(t.spans)
        c, found = plan.for_trace(t)
        spoken.update(found)
        keys.update(c.key_names)
        required.update(c.required_names)
        serving |= structure.serving_services(t)
        try:
            f, cl, unread, roots = audit_trace(t, c, enabled)
        except Exception as e:  # a crashing rule is a finding, never a crash of the run
            f, cl, unread, roots = [_crashed(t, e)], [], [], []
        headless.extend(roots)
        if unread:
            n_unread += len(unread)
            first = (t.trace_id, min(unread))
            example = first if example is None else min(example, first)
        findings.extend(f)
        calls.extend(cl)
        examples_mod.offer(examples, t, f, c)
    order = plan.key_order
    return Parts(
        counts=Counts(n_traces, n_spans, rejected),
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
