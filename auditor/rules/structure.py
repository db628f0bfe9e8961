"""TRACE004: an LLM call that is the root of its own trace (its context was lost entirely)."""

from __future__ import annotations

from auditor.boundary import endpoint
from auditor.model import Finding, Severity


def headless_calls(trace, is_llm: dict[str, bool], severity) -> list[Finding]:
    sev = severity("TRACE004")
    if sev is None:
        return []
    out = []
    for r in trace.roots:
        s = trace.spans[r]
        # A log record (e.g. Claude Code's api_request event) is not a span: having no parent
        # says nothing about lost context.
        if is_llm[r] and not s.parent_span_id and s.attributes.get("auditor.signal") != "logs":
            out.append(
                Finding(
                    "TRACE004", sev, trace.trace_id, r,
                    f"LLM call {s.name!r} in {s.service} is the root of its own trace: the request's context never "
                    "reached it. Usually a thread pool or run_in_executor without contextvars.copy_context(), or a "
                    "client created outside the request.",
                    endpoint=endpoint(s),
                )
            )
    return out
