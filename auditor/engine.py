"""``audit(spans, schema) -> AuditResult``: pure; the CLI and the server are shells around it.

Per trace the engine resolves every key on every span once, marks LLM calls, and hands
that context to the rule families. Results are *parts* (findings, calls, counts) that
``auditor.rollup`` turns into the aggregates reports show, so ``merge`` is exact.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import replace
from typing import Any, Callable, Iterable

import jsonschema

from auditor import assemble as assemble_mod
from auditor import calls as calls_mod
from auditor import examples as examples_mod
from auditor import jsonschema_local
from auditor.boundary import endpoint
from auditor.model import AuditResult, Counts, Finding, LlmCall, Parts, Rejected, RunInfo, Severity, Span
from auditor.pricing import Pricer
from auditor.rules import cost as cost_rules
from auditor.usage import Dialect
from auditor.projection import Projection
from auditor.rollup import GatePolicy, finish, merge_parts
from auditor.rules import agents, attribution, structure
from auditor.rules.catalog import rule
from auditor.schema import Schema, make_resolver, make_selector, make_values

CODE_ATTRIBUTES = ("code.filepath", "code.file.path", "code.lineno", "code.line.number", "code.function", "code.function.name")


class Compiled:
    """A schema turned into the callables the per-trace walk needs; holds per-run caches."""

    def __init__(self, schema: Schema, pricer: Pricer | None = None):
        self.schema = schema
        self.keys = schema.keys
        self.key_names = tuple(k.name for k in schema.keys)
        self.resolvers = tuple(make_resolver(k) for k in schema.keys)
        self.values_of = make_values(schema.keys)
        self.is_llm = make_selector(schema.llm_calls)
        self.reported_cost_tolerance = agents.tolerance_pct(schema.dialects)
        self.pricer = pricer if pricer is not None else Pricer(schema)
        self.dialect = Dialect.from_mapping(schema.dialects)
        self._validators = {k.name: _value_checker(k.value_schema) for k in schema.keys}
        self._severity_cache: dict[tuple[str, str | None], Severity | None] = {}
        self.genai = _genai_rules(schema)

    @property
    def projection(self) -> Projection:
        p = self.schema.projection() | Projection.of(calls_mod.attributes(self.dialect) + CODE_ATTRIBUTES)
        if self.genai is not None:
            p = p | self.genai.projection()
        return p

    def severity(self, code: str, key: str | None = None) -> Severity | None:
        ck = (code, key)
        if ck in self._severity_cache:
            return self._severity_cache[ck]
        override = self.schema.severity.get(code)
        if override == "off":
            sev = None
        elif override:
            sev = Severity(override)
        elif key is not None and code in ("ATTR001", "ATTR002", "ATTR003", "ATTR005"):
            sev = self.schema.key(key).severity
        else:
            sev = rule(code).severity
        self._severity_cache[ck] = sev
        return sev

    def validator(self, key: str) -> Callable[[Any], str | None]:
        return self._validators[key]


def _value_checker(value_schema) -> Callable[[Any], str | None]:
    if value_schema is None:
        return lambda v: None
    validator = jsonschema_local.validator(value_schema)  # local registry: no $ref is ever fetched
    cache: dict[tuple[type, Any], str | None] = {}

    def check(v: Any) -> str | None:
        ck = (type(v), v if not isinstance(v, (dict, list)) else repr(v))
        if ck in cache:
            return cache[ck]
        err = jsonschema.exceptions.best_match(validator.iter_errors(v))
        msg = None if err is None else err.message[:160]
        if len(cache) < 100_000:
            cache[ck] = msg
        return msg

    return check


def _genai_rules(schema: Schema):
    if not schema.genai_enabled:
        return None
    try:
        from auditor.rules import genai
    except ImportError:
        return None
    return genai.GenAiRules.load(schema.genai_semconv)


def audit_trace(trace, c: Compiled) -> tuple[list[Finding], list[LlmCall]]:
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

    findings: list[Finding] = []
    for k, spec in enumerate(c.keys):
        if not spec.required:
            continue
        name = spec.name
        findings.extend(
            attribution.check_key(
                trace, name, k, values, is_llm, below, c.schema.scope, spec.may_change,
                c.validator(name), lambda code, _n=name: c.severity(code, _n),
            )
        )
    findings.extend(structure.headless_calls(trace, is_llm, c.severity))

    calls: list[LlmCall] = []
    names = c.key_names
    for sid in order:
        if not is_llm[sid]:
            continue
        span = spans[sid]
        call = calls_mod.make_call(span, dict(zip(names, values[sid])), c.dialect)
        cost, note = c.pricer.price(call)
        call = replace(call, cost_usd=cost, price_note=note)
        calls.append(call)
        findings.extend(agents.reported_cost(calls[-1], c.reported_cost_tolerance, c.severity))
        findings.extend(cost_rules.check(span, call, c.pricer, c.severity))
    if c.genai is not None:  # every gen_ai span, not only LLM calls (tools, agents)
        by_span = {call.span_id: call for call in calls}
        for sid in order:
            findings.extend(c.genai.check(spans[sid], by_span.get(sid), c.dialect, c.severity))
    return _with_code_locations(findings, spans), calls


def _with_code_locations(findings: list[Finding], spans: dict[str, Span]) -> list[Finding]:
    out = []
    for f in findings:
        s = spans.get(f.span_id)
        loc = _code_location(s.attributes) if s is not None else None
        out.append(replace(f, code_location=loc) if loc else f)
    return out


def _code_location(a) -> tuple[str, int | None, str | None] | None:
    path = a.get("code.filepath") or a.get("code.file.path")
    func = a.get("code.function") or a.get("code.function.name")
    if not path and not func:
        return None
    line = a.get("code.lineno") or a.get("code.line.number")
    return (str(path or ""), int(line) if isinstance(line, int) else None, str(func) if func else None)


def audit_traces(traces: Iterable, c: Compiled, structural: Iterable[Finding] = (), rejected: int = 0) -> Parts:
    findings: list[Finding] = []
    calls: list[LlmCall] = []
    examples: dict = {}
    n_traces = n_spans = 0
    for t in traces:
        n_traces += 1
        n_spans += len(t.spans)
        try:
            f, cl = audit_trace(t, c)
        except Exception as e:  # a crashing rule is a finding, never a crash of the run
            tb = traceback.extract_tb(e.__traceback__)[-1]
            f, cl = [
                Finding(
                    "TOOL001", Severity.WARNING, t.trace_id, t.roots[0] if t.roots else "",
                    f"internal error auditing this trace: {type(e).__name__}: {e} ({tb.filename.rsplit('/', 1)[-1]}:{tb.lineno})",
                )
            ], []
        findings.extend(f)
        calls.extend(cl)
        examples_mod.offer(examples, t, f, c)
    findings.extend(structural)  # after the loop: ``traces`` may be a generator that fills it
    return Parts(
        counts=Counts(n_traces, n_spans, rejected),
        findings=tuple(findings),
        calls=tuple(calls),
        keys=c.key_names,
        required_keys=tuple(k.name for k in c.keys if k.required),
        examples=examples_mod.pick(examples.values()),
    )


def audit_spans(spans: Iterable[Span], c: Compiled, rejected: Iterable[Rejected] = ()) -> Parts:
    structural: list[Finding] = []  # filled while the traces are built, one by one
    return audit_traces(assemble_mod.iter_traces(spans, structural), c, structural, rejected=sum(1 for _ in rejected))


def audit(
    spans: Iterable[Span],
    schema: Schema,
    *,
    rejected: Iterable[Rejected] = (),
    inputs: tuple[str, ...] = (),
    policy: GatePolicy | None = None,
    compiled: Compiled | None = None,
) -> AuditResult:
    t0 = time.perf_counter()
    c = compiled or Compiled(schema)
    parts = audit_spans(spans, c, rejected)
    run = RunInfo(inputs=inputs, schema=schema.origin or schema.name, seconds=time.perf_counter() - t0)
    return finish(parts, run, policy or GatePolicy.from_schema(schema))


def merge(a: AuditResult, b: AuditResult, policy: GatePolicy | None = None) -> AuditResult:
    run = RunInfo(inputs=a.run.inputs + b.run.inputs, schema=a.run.schema or b.run.schema, seconds=a.run.seconds + b.run.seconds)
    return finish(merge_parts(a.parts, b.parts), run, policy or a.extra.get("policy") or GatePolicy())


__all__ = ["audit", "merge", "audit_spans", "audit_traces", "audit_trace", "Compiled", "endpoint"]
