"""An LLM call record from a cost-bearing span: who served it, which model, which tokens."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, Mapping

from auditor import rawpayload
from auditor import usage as usage_mod
from auditor.model import LlmCall, Span
from auditor.usage import NO_DIALECT, Dialect

PROVIDER = ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system")
MODEL = ("gen_ai.response.model", "gen_ai.request.model", "llm.model_name", "langfuse.observation.model.name")
RESPONSE_ID = ("gen_ai.response.id",)
# Response tier first: it says what was actually served (a request for "auto" may run as "default").
TIER = (
    "gen_ai.openai.response.service_tier",
    "openai.response.service_tier",
    "gen_ai.response.service_tier",
    "gen_ai.openai.request.service_tier",
    "openai.request.service_tier",
    "gen_ai.request.service_tier",
    "llm.request.service_tier",
)
# Cost the source itself computed (LiteLLM, OpenInference, traceAI): kept beside our price.
REPORTED_COST = ("gen_ai.cost.total_cost", "llm.cost.total", "gen_ai.cost.total", "gen_ai.usage.cost")

# The part of LiteLLM's reported cost that is server-side tool charges (web searches): AGENT003
# compares the rest with our token price.
TOOL_COST = "gen_ai.cost.tool_usage_cost"

ATTRIBUTES: tuple[str, ...] = PROVIDER + MODEL + RESPONSE_ID + TIER + REPORTED_COST + (TOOL_COST,) + usage_mod.ATTRIBUTES

# What makes a span look like an LLM call whichever schema reads it: token counts, or an LLM
# span kind of the SDKs that mark one (read for GENAI005: LLM-like spans no selector picks).
TOKEN_NAMES = frozenset(usage_mod.INPUT + usage_mod.OUTPUT)
LLM_KINDS = (("openinference.span.kind", "LLM"), ("fi.span.kind", "LLM"), ("gen_ai.span.kind", "LLM"),
             ("langfuse.observation.type", "generation"))
_KIND_NAMES = frozenset(k for k, _ in LLM_KINDS)


# GenAI operations of agent frameworks, not inference. Their spans may carry token counts: an
# invoke_agent span's are the agent's accumulated usage over the calls below it (Strands, Agent
# Framework), an aggregate that must never be counted or priced as a call of its own.
AGENT_OPERATIONS = frozenset({"invoke_agent", "invoke_workflow", "create_agent", "execute_tool"})
OPERATION = "gen_ai.operation.name"


def looks_like_llm(attrs: Mapping[str, Any]) -> bool:
    if attrs.get(OPERATION) in AGENT_OPERATIONS:
        return False
    keys = attrs.keys()
    if not keys.isdisjoint(TOKEN_NAMES):
        return True
    if keys.isdisjoint(_KIND_NAMES):  # most spans: no span-kind attribute at all
        return False
    return any(attrs.get(k) == v for k, v in LLM_KINDS)


def attributes(dialect: Dialect = NO_DIALECT) -> tuple[str, ...]:
    """Every attribute a call record reads, the dialect's extra names included (projection)."""
    return (ATTRIBUTES + (OPERATION,) + tuple(k for k, _ in LLM_KINDS) + dialect.token_attributes() + dialect.model
            + dialect.provider + dialect.reported_cost + rawpayload.attribute_names(dialect))


def _str(attrs: Mapping[str, Any], names: tuple[str, ...]) -> str | None:
    for n in names:
        v = attrs.get(n)
        if isinstance(v, str) and v:
            return v
    return None


def _money(attrs: Mapping[str, Any], names: tuple[str, ...]) -> Decimal | None:
    for n in names:
        v = attrs.get(n)
        if v is None or isinstance(v, bool):
            continue
        try:
            return Decimal(str(v)) if isinstance(v, (int, float, str)) else None
        except InvalidOperation:
            continue
    return None


@lru_cache(maxsize=256)
def _names(dialect: Dialect) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """Provider, model and reported-cost names under a dialect: once per dialect, not per call."""
    return PROVIDER + dialect.provider, MODEL + dialect.model, REPORTED_COST + dialect.reported_cost


def make_call(span: Span, values: Mapping[str, Any], dialect: Dialect = NO_DIALECT) -> LlmCall:
    raw = rawpayload.read(span, dialect)
    if raw is not None:  # the provider's raw payload (LiteLLM's raw_gen_ai_request)
        return LlmCall(
            trace_id=span.trace_id, span_id=span.span_id, service=span.service, scope=span.scope, name=span.name,
            start_ns=span.start_ns, end_ns=span.end_ns, provider=raw.provider, model=raw.model,
            response_id=raw.response_id, usage=raw.usage, values=values, tier=raw.tier, server_tools=raw.server_tools,
        )
    a = span.attributes
    providers, models, reported = _names(dialect)
    provider = _str(a, providers)
    model = _str(a, models)
    return LlmCall(
        trace_id=span.trace_id,
        span_id=span.span_id,
        service=span.service,
        scope=span.scope,
        name=span.name,
        start_ns=span.start_ns,
        end_ns=span.end_ns,
        provider=provider,
        model=model,
        response_id=_str(a, RESPONSE_ID),
        usage=usage_mod.normalize(a, span.scope, dialect, provider, model),
        values=values,
        tier=_str(a, TIER),
        reported_cost_usd=_money(a, reported),
        server_tools=usage_mod.server_tools_of(a),
    )
