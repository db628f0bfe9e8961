"""An LLM call record from a cost-bearing span: who served it, which model, which tokens."""

from __future__ import annotations

from typing import Any, Mapping

from auditor import usage as usage_mod
from auditor.model import LlmCall, Span

PROVIDER = ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system")
MODEL = ("gen_ai.response.model", "gen_ai.request.model", "llm.model_name")
RESPONSE_ID = ("gen_ai.response.id",)
TIER = (
    "gen_ai.openai.response.service_tier",
    "openai.response.service_tier",
    "gen_ai.openai.request.service_tier",
    "openai.request.service_tier",
    "gen_ai.request.service_tier",
    "gen_ai.response.service_tier",
)

ATTRIBUTES: tuple[str, ...] = PROVIDER + MODEL + RESPONSE_ID + TIER + usage_mod.ATTRIBUTES


def _str(attrs: Mapping[str, Any], names: tuple[str, ...]) -> str | None:
    for n in names:
        v = attrs.get(n)
        if isinstance(v, str) and v:
            return v
    return None


def make_call(span: Span, values: Mapping[str, Any]) -> LlmCall:
    a = span.attributes
    return LlmCall(
        trace_id=span.trace_id,
        span_id=span.span_id,
        service=span.service,
        scope=span.scope,
        name=span.name,
        start_ns=span.start_ns,
        end_ns=span.end_ns,
        provider=_str(a, PROVIDER),
        model=_str(a, MODEL),
        response_id=_str(a, RESPONSE_ID),
        usage=usage_mod.normalize(a),
        values=values,
        tier=_str(a, TIER),
    )
