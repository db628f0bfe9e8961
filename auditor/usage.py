"""Token counts of an LLM call, from whichever convention the span follows, as one record.

OTel semconv counts cached tokens INSIDE ``input_tokens``; Anthropic's native usage counts
them OUTSIDE; instrumentations differ. Per span we decide from, in order: the schema's
``dialects.convention`` for the span's instrumentation scope, the evidence (cache tokens
larger than input can only mean "excluding"), and the attribute family's own definition.
The decision and its basis are recorded on the Usage; when the evidence allows both
readings (an Anthropic-style provider, cache <= input, no dialect) the Usage is marked
ambiguous and COST002 reports both prices.
"""

from __future__ import annotations

import json
from functools import lru_cache
from dataclasses import dataclass
from typing import Any, Mapping

from auditor.model import Usage, evolve

INCLUDING, EXCLUDING, NONE = "including", "excluding", "none"
# A dialect's convention, not a reading: the instrumentation passes each provider's own counts
# through (Microsoft Agent Framework), so input excludes cache tokens exactly where the
# provider's native usage does (Anthropic, Bedrock) and includes them elsewhere (OpenAI).
NATIVE = "native"

# Built-in names per canonical field, tried in this order; dialect names come after.
# Each name maps to its attribute family (for the record of where counts came from).
_FAMILY = {}


def _names(family: str, *names: str) -> tuple[str, ...]:
    for n in names:
        _FAMILY[n] = family
    return names


INPUT = (
    _names("semconv", "gen_ai.usage.input_tokens")
    + _names("legacy", "gen_ai.usage.prompt_tokens")
    + _names("openinference", "llm.token_count.prompt")
)
OUTPUT = (
    _names("semconv", "gen_ai.usage.output_tokens")
    + _names("legacy", "gen_ai.usage.completion_tokens")
    + _names("openinference", "llm.token_count.completion")
)
CACHE_READ = (
    _names("semconv", "gen_ai.usage.cache_read.input_tokens")
    + _names("legacy", "gen_ai.usage.cache_read_input_tokens")
    + _names("openinference", "llm.token_count.prompt_details.cache_read")
    + _names("traceai", "gen_ai.usage.cache_read_tokens", "gen_ai.usage.input_tokens.cache_read")
)
CACHE_WRITE = (
    _names("semconv", "gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.cache_write.input_tokens")
    + _names("legacy", "gen_ai.usage.cache_creation_input_tokens")
    + _names("openinference", "llm.token_count.prompt_details.cache_write")
    + _names("traceai", "gen_ai.usage.cache_write_tokens", "gen_ai.usage.input_tokens.cache_write")
)
REASONING = (
    _names("semconv", "gen_ai.usage.reasoning.output_tokens")
    + _names("legacy", "llm.usage.reasoning_tokens")
    + _names("openinference", "llm.token_count.completion_details.reasoning")
)
TOTAL = (
    _names("legacy", "llm.usage.total_tokens", "gen_ai.usage.total_tokens")
    + _names("openinference", "llm.token_count.total")
)
# LiteLLM keeps separate cache counts only inside this Python-repr (or JSON) string.
LITELLM_USAGE = "metadata.usage_object"

ATTRIBUTES: tuple[str, ...] = INPUT + OUTPUT + CACHE_READ + CACHE_WRITE + REASONING + TOTAL + (LITELLM_USAGE,)

# Families whose definition of input is explicit and observed to include cache tokens even
# for Anthropic (LiteLLM rewrites Anthropic usage; OpenInference defines prompt as inclusive).
_DEFINITE = frozenset({"openinference", "litellm"})
# Providers whose native usage EXCLUDES cache tokens from input (Anthropic, Bedrock Converse).
_EXCLUDING_NATIVE = ("anthropic", "aws.bedrock", "bedrock", "aws")


@dataclass(frozen=True, slots=True)
class Dialect:
    """The schema's ``dialects:`` section, compiled: extra names and conventions by scope."""

    input: tuple[str, ...] = ()
    output: tuple[str, ...] = ()
    cache_read: tuple[str, ...] = ()
    cache_write: tuple[str, ...] = ()
    cache_write_5m: tuple[str, ...] = ()
    cache_write_1h: tuple[str, ...] = ()
    reasoning: tuple[str, ...] = ()
    total: tuple[str, ...] = ()
    conventions: tuple[tuple[str, str], ...] = ()  # (scope prefix, convention), longest first
    model: tuple[str, ...] = ()
    provider: tuple[str, ...] = ()
    reported_cost: tuple[str, ...] = ()
    # Attributes holding a whole OpenAI-shaped usage object as JSON or Python-repr text, read
    # like LiteLLM's metadata.usage_object (e.g. langfuse.observation.usage_details).
    usage_object: tuple[str, ...] = ()
    # Spans that record a call only as the provider's raw payload, ``PREFIX<provider>.<field>``
    # (LiteLLM's raw_gen_ai_request): read by ``auditor.rawpayload``.
    raw_spans: tuple[str, ...] = ()
    raw_prefix: str = ""
    raw_providers: tuple[str, ...] = ()

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any] | None) -> "Dialect":
        d = d or {}
        tokens = d.get("tokens") or {}

        def names(v) -> tuple[str, ...]:
            if isinstance(v, str):
                return (v,)
            return tuple(x for x in (v or ()) if isinstance(x, str) and x)

        conv = d.get("convention") or {}
        raw = d.get("raw_payload") or {}
        conventions = tuple(
            sorted(
                ((str(p), str(c)) for p, c in conv.items() if c in (INCLUDING, EXCLUDING, NATIVE)),
                key=lambda pc: (-len(pc[0]), pc[0]),
            )
        )
        return cls(
            input=names(tokens.get("input")),
            output=names(tokens.get("output")),
            cache_read=names(tokens.get("cache_read")),
            cache_write=names(tokens.get("cache_write")),
            cache_write_5m=names(tokens.get("cache_write_5m")),
            cache_write_1h=names(tokens.get("cache_write_1h")),
            reasoning=names(tokens.get("reasoning")),
            total=names(tokens.get("total")),
            conventions=conventions,
            model=names(d.get("model")),
            provider=names(d.get("provider")),
            reported_cost=names(d.get("reported_cost")),
            usage_object=names(d.get("usage_object")),
            raw_spans=names(raw.get("spans")),
            raw_prefix=str(raw.get("prefix") or ""),
            raw_providers=names(raw.get("providers")),
        )

    def token_attributes(self) -> tuple[str, ...]:
        return (
            self.input + self.output + self.cache_read + self.cache_write + self.cache_write_5m
            + self.cache_write_1h + self.reasoning + self.total
        )

    def convention_for(self, scope: str) -> tuple[str, str] | None:
        for prefix, conv in self.conventions:
            if scope.startswith(prefix):
                return prefix, conv
        return None


NO_DIALECT = Dialect()


def as_int(v: Any) -> int | None:
    """A token count as an int; None when the value is absent or not a whole number."""
    if v is None or isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return int(v) if v.is_integer() else None
    if isinstance(v, str):
        s = v.strip()
        if s.lstrip("-").isdigit():
            return int(s)
    return None


# No single call reads or writes a billion tokens (the largest context windows hold a few
# million): a count above this is corrupt data, never a price to report.
MAX_TOKENS = 1_000_000_000


def _first(attrs: Mapping[str, Any], names: tuple[str, ...], bad: list[str]) -> tuple[int | None, str | None]:
    get = attrs.get
    for n in names:
        raw = get(n)
        if raw is None:
            continue
        v = as_int(raw)
        if v is not None:
            return v, n
        if isinstance(raw, float) and (raw != raw or raw in (float("inf"), float("-inf"))):
            bad.append(f"{n} is {raw}")
    return None, None


def implausible(raw: "Raw") -> str:
    """Why these counts cannot be a real call's (empty when they can)."""
    if raw.unusable:
        return raw.unusable[0]
    for name in ("input", "output", "cache_read", "cache_write", "cache_write_5m", "cache_write_1h", "reasoning", "total"):
        v = getattr(raw, name)
        if v is None:
            continue
        if v < 0:
            return f"{name.replace('_', ' ')} tokens are negative ({v})"
        if v > MAX_TOKENS:
            return f"{name.replace('_', ' ')} tokens ({v:.3g}) exceed {MAX_TOKENS:,}, more than any call can use"
    return ""


def usage_object(raw: Any) -> dict | None:
    """A usage object written as a dict, Python-repr text (LiteLLM) or JSON text; never eval."""
    if raw is None:
        return None
    obj: Any = raw
    if isinstance(raw, str):
        from auditor.pyrepr import parse_pyrepr

        obj = parse_pyrepr(raw)
        if obj is None:
            try:
                obj = json.loads(raw)
            except (ValueError, RecursionError):
                return None
    return obj if isinstance(obj, dict) else None


def server_tools(obj: Mapping[str, Any]) -> tuple[tuple[str, int], ...]:
    """Server-side tool requests in a usage object (``server_tool_use.web_search_requests``, as
    Anthropic and LiteLLM write it); an object without them ran none."""
    stu = obj.get("server_tool_use")
    n = as_int(stu.get("web_search_requests")) if isinstance(stu, Mapping) else None
    return (("web_search", n if n is not None and 0 <= n <= MAX_TOKENS else 0),)


def server_tools_of(attrs: Mapping[str, Any]) -> tuple[tuple[str, int], ...] | None:
    """From LiteLLM's usage object, which copies the provider's ``server_tool_use`` whenever
    there is one; other usage objects (Langfuse's usage_details) do not say, so: None."""
    obj = usage_object(attrs.get(LITELLM_USAGE))
    return None if obj is None else server_tools(obj)


def _litellm_usage(attrs: Mapping[str, Any], name: str = LITELLM_USAGE) -> dict[str, int] | None:
    obj = usage_object(attrs.get(name))
    if obj is None:
        return None

    def num(*path: str) -> int | None:
        cur: Any = obj
        for p in path:
            if not isinstance(cur, dict):
                return None
            cur = cur.get(p)
        return as_int(cur)

    out = {
        "input": num("prompt_tokens"),
        "output": num("completion_tokens"),
        "cache_read": num("cache_read_input_tokens"),
        "cache_write": num("cache_creation_input_tokens"),
        "reasoning": num("completion_tokens_details", "reasoning_tokens"),
        "total": num("total_tokens"),
    }
    if out["cache_read"] is None:
        out["cache_read"] = num("prompt_tokens_details", "cached_tokens")
    if out["cache_write"] is None:
        out["cache_write"] = num("prompt_tokens_details", "cache_creation_tokens")
    return {k: v for k, v in out.items() if v is not None}


def excludes_natively(provider: str | None, model: str | None) -> bool:
    """Whether the provider's own API reports input WITHOUT cache tokens (Anthropic-style)."""
    p = (provider or "").lower()
    if p.startswith(_EXCLUDING_NATIVE):
        return True
    return "claude" in (model or "").lower()


@dataclass(frozen=True, slots=True)
class Raw:
    """The counts as found on the span, before any convention is applied (GENAI004 reads it)."""

    input: int | None = None
    output: int | None = None
    cache_read: int | None = None
    cache_write: int | None = None
    cache_write_5m: int | None = None
    cache_write_1h: int | None = None
    reasoning: int | None = None
    total: int | None = None
    family: str = ""
    names: tuple[str, ...] = ()
    unusable: tuple[str, ...] = ()  # counts present but not numbers at all (NaN, infinity)


@lru_cache(maxsize=256)
def _names_read(dialect: Dialect) -> tuple[tuple[tuple[str, tuple[str, ...]], ...], tuple[tuple[str, str], ...]]:
    """What ``read_raw`` looks up under a dialect, in order: (field, attribute names) and the
    usage objects; computed once per dialect instead of per call."""
    fields = (
        ("input", INPUT + dialect.input),
        ("output", OUTPUT + dialect.output),
        ("cache_read", CACHE_READ + dialect.cache_read),
        ("cache_write", CACHE_WRITE + dialect.cache_write),
        ("cache_write_5m", dialect.cache_write_5m),
        ("cache_write_1h", dialect.cache_write_1h),
        ("reasoning", REASONING + dialect.reasoning),
        ("total", TOTAL + dialect.total),
    )
    return fields, ((LITELLM_USAGE, "litellm"),) + tuple((n, "usage_object") for n in dialect.usage_object)


def read_raw(attrs: Mapping[str, Any], dialect: Dialect = NO_DIALECT) -> Raw:
    """The counts as written. A call's span is read twice (its record, then GENAI004's
    contradictions), so the last readings are kept, each with the very mapping it read (held,
    so its id cannot be reused) and compared by identity."""
    hit = _READ.get(id(attrs))
    if hit is not None and hit[0] is attrs and hit[1] is dialect:
        return hit[2]
    raw = _read_raw(attrs, dialect)
    if len(_READ) >= 4096:
        _READ.clear()
    _READ[id(attrs)] = (attrs, dialect, raw)
    return raw


_READ: dict[int, tuple[Mapping[str, Any], Dialect, "Raw"]] = {}


def _read_raw(attrs: Mapping[str, Any], dialect: Dialect) -> Raw:
    got: dict[str, int | None] = {}
    names: list[str] = []
    bad: list[str] = []
    family = ""
    fields, objects = _names_read(dialect)
    get = attrs.get
    for field_name, candidates in fields:
        # ``_first`` inlined (eight fields a call): a plain int, what nearly every span
        # carries, is taken as is; anything else goes through ``_first``'s own reading.
        v = n = None
        for i, c in enumerate(candidates):
            raw = get(c)
            if raw is None:
                continue
            if type(raw) is int:
                v, n = raw, c
            else:
                v, n = _first(attrs, candidates[i:], bad)
            break
        got[field_name] = v
        if n is not None:
            names.append(n)
            if field_name == "input":
                family = _FAMILY.get(n, "dialect")
    for obj_name, obj_family in objects:
        lite = _litellm_usage(attrs, obj_name)
        if lite:
            # The usage object is the source's full record: it fills what the span attributes lack.
            for k, v in lite.items():
                if got.get(k) is None:
                    got[k] = v
                    names.append(f"{obj_name}#{k}")
                    if k == "input":
                        family = obj_family
    if not family and got.get("output") is not None:
        family = next((_FAMILY.get(n, "dialect") for n in names), "")
    return Raw(**got, family=family, names=tuple(names), unusable=tuple(bad))


def normalize(
    attrs: Mapping[str, Any],
    scope: str = "",
    dialect: Dialect = NO_DIALECT,
    provider: str | None = None,
    model: str | None = None,
) -> Usage:
    return from_raw(read_raw(attrs, dialect), scope, dialect, provider, model)


def from_raw(raw: Raw, scope: str = "", dialect: Dialect = NO_DIALECT, provider: str | None = None, model: str | None = None,
             known: tuple[str, str] | None = None) -> Usage:
    """Canonical counts. ``known`` is (basis, convention) when the source's own shape says how
    it counts input (a provider's raw usage object), in place of the dialect and the evidence."""
    problem = implausible(raw)
    if problem:
        return Usage(source=raw.family, basis=f"impossible token counts: {problem}", problem=problem)
    cr = max(raw.cache_read or 0, 0)
    cw5 = max(raw.cache_write_5m or 0, 0)
    cw1 = max(raw.cache_write_1h or 0, 0)
    cw_all = max(raw.cache_write or 0, 0)
    # A total cache-write count covers the 5m/1h split when both are given.
    cw = max(cw_all - cw5 - cw1, 0) if (cw5 or cw1) else cw_all
    out = max(raw.output or 0, 0)
    rs = max(raw.reasoning or 0, 0)
    total = max(raw.total or 0, 0)
    cache = cr + cw + cw5 + cw1
    common = dict(cache_read=cr, cache_write=cw, cache_write_5m=cw5, cache_write_1h=cw1, output=out, reasoning=rs, source=raw.family)
    if raw.input is None:
        if raw.output is None and not cache and not total:
            return Usage(reasoning=rs, basis="no token counts")
        if raw.output is None and not cache:
            return Usage(total=total, source=raw.family, basis="only a total token count")
        return Usage(input=0, total=total if raw.output is None else 0, basis="no input token count", **common)
    inp = max(raw.input, 0)
    declared = dialect.convention_for(scope)
    ambiguous = False
    if known is not None:
        basis, conv = known
        if conv == INCLUDING and cache > inp:
            conv, basis = EXCLUDING, f"{basis}, but cache tokens exceed input: read as excluding"
    elif declared is not None:
        prefix, conv = declared
        said = f"dialect: scope {prefix!r} is {conv}"
        if conv == NATIVE:
            conv = EXCLUDING if excludes_natively(provider, model) else INCLUDING
            said = f"dialect: scope {prefix!r} passes the provider's own counts through ({conv} for {provider or model or 'this provider'})"
        if conv == INCLUDING and cache > inp:
            conv, basis = EXCLUDING, f"dialect says including for scope {prefix!r}, but cache tokens exceed input: read as excluding"
        else:
            basis = said
    elif not cache:
        conv, basis = INCLUDING, "no cache tokens (either convention gives the same input)"
    elif cache > inp:
        conv, basis = EXCLUDING, "evidence: cache tokens exceed input tokens"
    elif raw.family in _DEFINITE:
        conv, basis = INCLUDING, f"{raw.family} defines input as including cache tokens"
    elif excludes_natively(provider, model):
        conv, ambiguous = INCLUDING, True
        basis = (
            f"ambiguous: {raw.family or 'these'} attributes should include cache tokens, but the provider's native "
            "usage excludes them; priced as including"
        )
    else:
        conv, basis = INCLUDING, f"{raw.family or 'semconv'} convention: input includes cache tokens"
    uncached = inp - cache if conv == INCLUDING else inp
    return Usage(input=uncached, convention=conv, basis=_shared(basis), ambiguous=ambiguous, **common)


@lru_cache(maxsize=4096)  # a call record holds its basis: one string per distinct text, not per call
def _shared(text: str) -> str:
    return text


def reinterpret(u: Usage, convention: str) -> Usage:
    """The same counts read under the other convention (the alternative COST002 prices)."""
    if convention == u.convention:
        return u
    cache = u.cache_read + u.cache_write_total
    if convention == EXCLUDING:  # input as reported was cache-inclusive; now take it as uncached
        return evolve(u, input=u.input + cache, convention=EXCLUDING, ambiguous=False)
    return evolve(u, input=max(u.input - cache, 0), convention=INCLUDING, ambiguous=False)
