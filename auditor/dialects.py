"""Which gateway / SDK dialects a set of spans speaks, so ``check`` can apply their presets.

A dialect is recognised by what its instrumentation writes: the instrumentation scope name
(exact, or a dotted prefix such as ``openinference.instrumentation``), span names, and
attribute names or prefixes (``traceloop.``, ``langfuse.``, captured ``helicone-*`` headers).
Each dialect's name is the preset that reads it (``schemas/presets/NAME.yaml``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable

from auditor.model import Span
from auditor.projection import Projection

HEADER = "http.request.header."


@dataclass(frozen=True, slots=True)
class Dialect:
    name: str
    scopes: tuple[str, ...] = ()  # scope name, or a dotted prefix of it
    names: tuple[str, ...] = ()  # attribute names
    prefixes: tuple[str, ...] = ()  # attribute name prefixes
    span_names: tuple[str, ...] = ()

    def matches_scope(self, scope: str) -> bool:
        return any(scope == s or scope.startswith(s + ".") or scope.startswith(s + "_") for s in self.scopes)

    def matches(self, span: Span) -> bool:
        if self.matches_scope(span.scope):
            return True
        if span.name in self.span_names:
            return True
        attrs = span.attributes
        for n in self.names:
            if n in attrs:
                return True
        if self.prefixes:
            for k in attrs:
                if k.startswith(self.prefixes):
                    return True
        return False


# Order is the order presets are applied in (later ones add sources after earlier ones).
DIALECTS: tuple[Dialect, ...] = (
    # The official contrib GenAI instrumentations and the provider SDKs' own (semconv only).
    Dialect("otel", scopes=("opentelemetry.instrumentation.openai_v2", "opentelemetry.instrumentation.google_genai",
                            "opentelemetry.instrumentation.vertexai", "opentelemetry.instrumentation.genai",
                            "opentelemetry.util.genai", "com.anthropic.sdk")),
    Dialect(
        "openllmetry",
        scopes=("opentelemetry.instrumentation.openai.v1", "opentelemetry.instrumentation.anthropic",
                "opentelemetry.instrumentation.langchain", "opentelemetry.instrumentation.bedrock", "traceloop"),
        # Not gen_ai.usage.prompt_tokens: semconv's own name before 1.27, still written by others (Strands).
        names=("traceloop.span.kind", "traceloop.workflow.name", "traceloop.entity.name"),
        prefixes=("traceloop.association.properties.",),
    ),
    Dialect("openinference", scopes=("openinference.instrumentation",), names=("openinference.span.kind",)),
    Dialect(
        "langfuse",
        scopes=("langfuse-sdk", "langfuse"),
        names=("langfuse.observation.type", "langfuse.trace.name", "langfuse.trace.tags", "langfuse.user.id", "langfuse.session.id"),
        prefixes=("langfuse.trace.metadata",),
    ),
    Dialect("traceai", scopes=("traceai", "fi_instrumentation"), names=("fi.span.kind", "gen_ai.span.kind")),
    Dialect(
        "litellm",
        scopes=("litellm",),
        span_names=("litellm_request", "Received Proxy Server Request", "raw_gen_ai_request"),
        names=("metadata.user_api_key_hash", "metadata.requester_metadata", "metadata.spend_logs_metadata", "gen_ai.cost.total_cost"),
    ),
    Dialect("portkey", scopes=("portkey",), prefixes=("portkey.metadata", HEADER + "x-portkey-")),
    Dialect("helicone", scopes=("helicone",), prefixes=("helicone.", HEADER + "helicone-")),
    Dialect("kong", scopes=("kong", "kong-internal"), names=("kong.consumer", "kong.route_name", "kong.service_name", "kong.request.id")),
    # Agent frameworks' own instrumentation. Google ADK (scope gcp.vertex.agent) writes plain
    # semconv that the default schema reads. Strands adds cache tokens into input for every
    # provider; Microsoft Agent Framework passes each provider's own counts through (Anthropic's
    # input without cache tokens): their presets say so.
    Dialect("strands", scopes=("strands.telemetry",)),
    Dialect("agent-framework", scopes=("agent_framework",)),
    # Claude Code's own telemetry: log events (com.anthropic.claude_code.events) and beta spans
    # (com.anthropic.claude_code.tracing).
    Dialect("claude-code", scopes=("com.anthropic.claude_code",)),
    Dialect(
        "diy-proxy",
        names=tuple(HEADER + h for h in ("x-tenant-id", "x-tenant", "x-org-id", "x-customer-id", "x-workflow-id", "x-feature", "x-team-id")),
    ),
)

NAMES: tuple[str, ...] = tuple(d.name for d in DIALECTS)
_BY_SPAN_NAME = {n: d.name for d in DIALECTS for n in d.span_names}
_BY_ATTRIBUTE = {n: d.name for d in DIALECTS for n in d.names}
_PREFIX_OWNER = tuple((p, d.name) for d in DIALECTS for p in d.prefixes)
_ALL_PREFIXES = tuple(p for p, _ in _PREFIX_OWNER)


def projection() -> Projection:
    """The attributes detection looks at (scope and span names are always decoded)."""
    names: set[str] = set()
    prefixes: set[str] = set()
    for d in DIALECTS:
        names.update(d.names)
        prefixes.update(d.prefixes)
    return Projection.of(names, prefixes)


def detect(spans: Iterable[Span]) -> dict[str, int]:
    """Dialect name -> number of spans that speak it, in preset order; absent ones left out."""
    counts = dict.fromkeys(NAMES, 0)
    memo = _SPOKEN
    for span in spans:
        # What a span speaks depends only on its scope, name and attribute names, which repeat
        # across the spans of one instrumentation: looked up once per such shape.
        shape = (span.scope, span.name, *span.attributes)
        spoken = memo.get(shape)
        if spoken is None:
            if len(memo) >= 4096:
                memo.clear()
            spoken = memo[shape] = _speaks(span)
        for n in spoken:
            counts[n] += 1
    return {n: c for n, c in counts.items() if c}


_SPOKEN: dict[tuple[str, ...], tuple[str, ...]] = {}


def _speaks(span: Span) -> tuple[str, ...]:
    """The dialects one span speaks, each once."""
    by_attribute, prefixes = _BY_ATTRIBUTE.get, _ALL_PREFIXES
    found = _scope_dialects(span.scope)
    extra: set[str] | None = None
    n = _BY_SPAN_NAME.get(span.name)
    if n:
        extra = {n}
    for k in span.attributes:
        n = by_attribute(k)
        if n:
            if extra is None:
                extra = set()
            extra.add(n)
        elif k.startswith(prefixes):
            if extra is None:
                extra = set()
            extra.update(d for p, d in _PREFIX_OWNER if k.startswith(p))
    return tuple((set(found) | extra) if extra else found)  # found: one name per dialect


@lru_cache(maxsize=4096)
def _scope_dialects(scope: str) -> tuple[str, ...]:
    return tuple(d.name for d in DIALECTS if d.matches_scope(scope))


def refs(found: Iterable[str]) -> list[str]:
    """Schema references for ``compose_refs``: the default, then each found dialect's preset."""
    found = set(found)
    return ["default"] + [f"preset:{n}" for n in NAMES if n in found]


def all_refs() -> list[str]:
    return refs(NAMES)
