"""An LLM call recorded only as the provider's raw payload (LiteLLM's ``raw_gen_ai_request``).

LiteLLM's OTel callback writes its gen_ai.* attributes onto the app's active span and adds a
child span holding the raw request and response as ``llm.<provider>.<field>``
(``llm.openai.model``, ``llm.openai.id``, ``llm.openai.usage`` = str(dict)). It logs from a
background thread: when the app's span has ended by then, the SDK drops the gen_ai.* attributes
and the child is the call's only record. The litellm preset names these spans, the prefix and
the providers (``dialects.raw_payload``), so each is read here as one call: its usage object
in the provider's own shape, which says how input is counted (OpenAI's ``prompt_tokens`` and
Responses' ``input_tokens`` include cached tokens; Anthropic's ``input_tokens`` excludes them).
When the parent also records the call, the two fold as one (same response id; see
``auditor.duplicates``). The raw span carries no attribution metadata by design: it takes its
parent's values (``inherit``), so the leak is found above the call, not at this hop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from auditor.usage import EXCLUDING, INCLUDING, Dialect, Raw, as_int, excludes_natively, from_raw, server_tools, usage_object
from auditor.model import Usage

SOURCE = "raw payload"  # Usage.source of a call read from a raw payload
FIELDS = ("usage", "model", "id", "service_tier")


@dataclass(frozen=True, slots=True)
class RawCall:
    provider: str
    model: str | None
    response_id: str | None
    tier: str | None
    usage: Usage
    server_tools: tuple[tuple[str, int], ...]


def attribute_names(dialect: Dialect) -> tuple[str, ...]:
    """What the reader needs decoded (projection): a few names per configured provider."""
    p = dialect.raw_prefix
    return tuple(f"{p}{prov}.{f}" for prov in dialect.raw_providers for f in FIELDS) if p else ()


def is_raw_span(span, dialect: Dialect) -> bool:
    return bool(dialect.raw_spans) and span.name in dialect.raw_spans


def read(span, dialect: Dialect) -> RawCall | None:
    """The call a raw-payload span records; None when it is not one or holds no usage object."""
    if not is_raw_span(span, dialect):
        return None
    a = span.attributes
    for prov in dialect.raw_providers:
        base = f"{dialect.raw_prefix}{prov}."
        obj = usage_object(a.get(base + "usage"))
        if obj is None:
            continue
        model = _text(a.get(base + "model"))
        got = _usage(obj, prov, model)
        if got is None:
            continue
        raw, known = got
        if raw.input is None and raw.output is None:
            continue
        return RawCall(prov, model, _text(a.get(base + "id")), _text(a.get(base + "service_tier")),
                       from_raw(raw, span.scope, provider=prov, model=model, known=known), server_tools(obj))
    return None


def inherit(values: tuple, parent: tuple) -> tuple:
    """A raw-payload span's key values: its own, else its parent's (LiteLLM writes none on it)."""
    return tuple(v if v is not None else p for v, p in zip(values, parent))


def _text(v: Any) -> str | None:
    return v if isinstance(v, str) and v and v != "None" else None


def _num(obj: Mapping, *path: str) -> int | None:
    cur: Any = obj
    for p in path:
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(p)
    return as_int(cur)


def _usage(u: Mapping, provider: str, model: str | None) -> tuple[Raw, tuple[str, str]] | None:
    """Counts and how the shape counts input; None for a shape we do not know."""
    names = tuple(k for k in u if isinstance(k, str))
    if "prompt_tokens" in u or "completion_tokens" in u:  # OpenAI chat completions
        raw = Raw(input=_num(u, "prompt_tokens"), output=_num(u, "completion_tokens"),
                  cache_read=_num(u, "prompt_tokens_details", "cached_tokens"),
                  reasoning=_num(u, "completion_tokens_details", "reasoning_tokens"),
                  total=_num(u, "total_tokens"), family=SOURCE, names=names)
        return raw, (f"{provider} raw usage: prompt_tokens include cached tokens", INCLUDING)
    if "input_tokens" not in u and "output_tokens" not in u:
        return None
    anthropic = "cache_read_input_tokens" in u or "cache_creation_input_tokens" in u or excludes_natively(provider, model)
    if anthropic:  # Anthropic Messages: input_tokens EXCLUDES cache tokens
        cc = u.get("cache_creation")
        w5 = _num(cc, "ephemeral_5m_input_tokens") if isinstance(cc, Mapping) else None
        w1 = _num(cc, "ephemeral_1h_input_tokens") if isinstance(cc, Mapping) else None
        raw = Raw(input=_num(u, "input_tokens"), output=_num(u, "output_tokens"),
                  cache_read=_num(u, "cache_read_input_tokens"), cache_write=_num(u, "cache_creation_input_tokens"),
                  cache_write_5m=w5, cache_write_1h=w1, family=SOURCE, names=names)
        return raw, (f"{provider} raw usage: input_tokens exclude cache tokens", EXCLUDING)
    raw = Raw(input=_num(u, "input_tokens"), output=_num(u, "output_tokens"),  # OpenAI Responses
              cache_read=_num(u, "input_tokens_details", "cached_tokens"),
              reasoning=_num(u, "output_tokens_details", "reasoning_tokens"),
              total=_num(u, "total_tokens"), family=SOURCE, names=names)
    return raw, (f"{provider} raw usage: input_tokens include cached tokens", INCLUDING)
