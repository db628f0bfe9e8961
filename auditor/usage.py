"""Token counts of an LLM call, from whichever convention the span follows, as one record.

OTel semconv counts cached tokens INSIDE ``input_tokens``; Anthropic's native usage
counts them OUTSIDE. We decide per span from the evidence and record the decision.
"""

from __future__ import annotations

from typing import Any, Mapping

from auditor.model import Usage

INPUT = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt")
OUTPUT = ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens", "llm.token_count.completion")
CACHE_READ = (
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_read_input_tokens",
    "llm.token_count.prompt_details.cache_read",
    "gen_ai.usage.cache_read_tokens",
    "gen_ai.usage.input_tokens.cache_read",
)
CACHE_WRITE = (
    "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.cache_write.input_tokens",
    "gen_ai.usage.cache_creation_input_tokens",
    "llm.token_count.prompt_details.cache_write",
    "gen_ai.usage.cache_write_tokens",
    "gen_ai.usage.input_tokens.cache_write",
)
REASONING = (
    "gen_ai.usage.reasoning.output_tokens",
    "llm.usage.reasoning_tokens",
    "llm.token_count.completion_details.reasoning",
)

ATTRIBUTES: tuple[str, ...] = INPUT + OUTPUT + CACHE_READ + CACHE_WRITE + REASONING


def _first(attrs: Mapping[str, Any], names: tuple[str, ...]) -> tuple[int, str | None]:
    for n in names:
        v = attrs.get(n)
        if v is None:
            continue
        if isinstance(v, bool):
            continue
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if isinstance(v, str) and v.strip().lstrip("-").isdigit():
            v = int(v)
        if isinstance(v, int):
            return v, n
    return 0, None


def normalize(attrs: Mapping[str, Any]) -> Usage:
    total_in, in_name = _first(attrs, INPUT)
    out, _ = _first(attrs, OUTPUT)
    cr, _ = _first(attrs, CACHE_READ)
    cw, _ = _first(attrs, CACHE_WRITE)
    rs, _ = _first(attrs, REASONING)
    cr, cw, total_in, out, rs = (max(x, 0) for x in (cr, cw, total_in, out, rs))
    if in_name is None and not (out or cr or cw):
        return Usage(output=out, reasoning=rs)
    if cr + cw > total_in:
        convention, uncached = "excluding", total_in
    else:
        convention, uncached = "including", total_in - cr - cw
    return Usage(
        input=uncached,
        cache_read=cr,
        cache_write=cw,
        output=out,
        reasoning=rs,
        convention=convention,
        source=(in_name or "").rsplit(".", 1)[0],
    )
