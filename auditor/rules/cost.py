"""COST001-002: LLM calls that cannot be priced, and calls whose cache accounting is ambiguous.

An unpriced call is counted as unpriced, never as $0: a $0 row would hide spend. An
ambiguous call is priced under the reading its attributes nominally follow, and the
finding gives the price under the other reading, so the size of the doubt is visible.
"""

from __future__ import annotations

from decimal import Decimal

from auditor.boundary import endpoint
from auditor.model import Finding, LlmCall, Severity, Span
from auditor.rules.context import TraceContext
from auditor.rules.registry import Check, Rule, Visit
from auditor.usage import EXCLUDING, INCLUDING, reinterpret

COST001 = Rule(
    "COST001", "cost-no-price", "cost", Severity.WARNING,
    "no price for this provider/model (call counted as unpriced, never $0)",
    "The model (or provider) is not in the pinned genai-prices data, the span names no model, or it carries "
    "no usable token counts. The call is counted as unpriced, never as $0. Add a `prices:` entry to the "
    "schema for self-hosted or negotiated models.",
    Visit.CALL, per_record=True)
COST002 = Rule(
    "COST002", "cost-ambiguous-cache-accounting", "cost", Severity.WARNING,
    "ambiguous cache-token accounting",
    "Input tokens may or may not include the cache tokens: the attributes nominally include them, but the "
    "provider's native usage excludes them and the counts fit both readings. The finding gives both prices; "
    "declare the instrumentation's convention under `dialects.convention` in the schema.",
    Visit.CALL, per_record=True)


def check(ctx: TraceContext, call: LlmCall, span: Span) -> list[Finding]:
    out: list[Finding] = []
    if call.cost_usd is None and not call.usage.problem:  # impossible counts are GENAI004's
        if ctx.enabled("COST001"):
            what = f"{call.provider or 'unknown provider'} / {call.model}" if call.model else "a span without a model attribute"
            out.append(
                COST001.finding(
                    call.trace_id, call.span_id,
                    f"LLM call {call.name!r} ({what}) has no price: {call.price_note}. Counted as unpriced, not $0; "
                    "add a `prices:` entry to the schema for self-hosted or unlisted models.",
                    endpoint=endpoint(span),
                )
            )
    u = call.usage
    if u.ambiguous and ctx.enabled("COST002"):
        other = EXCLUDING if u.convention == INCLUDING else INCLUDING
        alt, _ = ctx.compiled.pricer.price_usage(call, reinterpret(u, other))
        reported = u.input + u.cache_read + u.cache_write_total if u.convention == INCLUDING else u.input
        out.append(
            COST002.finding(
                call.trace_id, call.span_id,
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


RULES = (COST001, COST002)
CHECKS = (Check(Visit.CALL, ("COST001", "COST002"), check),)
