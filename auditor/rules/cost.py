"""COST001-002: LLM calls that cannot be priced, and calls whose cache accounting is ambiguous.

An unpriced call is counted as unpriced, never as $0: a $0 row would hide spend. An
ambiguous call is priced under the reading its attributes nominally follow, and the
finding gives the price under the other reading, so the size of the doubt is visible.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Callable

from auditor.boundary import endpoint
from auditor.model import Finding, LlmCall, Severity, Span
from auditor.usage import EXCLUDING, INCLUDING, reinterpret


def check(span: Span, call: LlmCall, pricer, severity: Callable[[str], Severity | None]) -> list[Finding]:
    out: list[Finding] = []
    if call.cost_usd is None:
        sev = severity("COST001")
        if sev is not None:
            what = f"{call.provider or 'unknown provider'} / {call.model}" if call.model else "a span without a model attribute"
            out.append(
                Finding(
                    "COST001", sev, call.trace_id, call.span_id,
                    f"LLM call {call.name!r} ({what}) has no price: {call.price_note}. Counted as unpriced, not $0; "
                    "add a `prices:` entry to the schema for self-hosted or unlisted models.",
                    endpoint=endpoint(span),
                )
            )
    u = call.usage
    if u.ambiguous:
        sev = severity("COST002")
        if sev is not None:
            other = EXCLUDING if u.convention == INCLUDING else INCLUDING
            alt, _ = pricer.price_usage(call, reinterpret(u, other))
            reported = u.input + u.cache_read + u.cache_write_total if u.convention == INCLUDING else u.input
            out.append(
                Finding(
                    "COST002", sev, call.trace_id, call.span_id,
                    f"ambiguous cache accounting on {call.name!r} ({call.provider or '-'} / {call.model or '-'}): input tokens "
                    f"{reported}, cache read {u.cache_read}, cache write {u.cache_write_total}. Priced as {u.convention} "
                    f"({_money(call.cost_usd)}); if the instrumentation reports the provider's native usage ({other}) it is "
                    f"{_money(alt)}. Declare it in the schema: dialects.convention {{{call.scope or '<scope>'!r}: including|excluding}}.",
                    endpoint=endpoint(span),
                )
            )
    return out


def _money(d) -> str:
    return "unpriced" if d is None else f"${d.quantize(Decimal('0.000001'))}"
