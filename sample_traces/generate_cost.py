"""Generate the cost scenarios with the real OpenTelemetry SDK.

    python sample_traces/generate_cost.py        # rewrites sample_traces/cost/*

One service (research-assistant) whose LLM calls are recorded the ways the field records
them; each instrumentation is a tracer with its real scope name. Attribution travels in
baggage (BaggageSpanProcessor), as in generate_core.py. Ids and clock are fixed.

Trace 1, tenant acme:
  - a cache-heavy Anthropic call recorded OpenLLMetry-style: gen_ai.usage.input_tokens
    INCLUDES the cache tokens (1,200 fresh + 48,000 cache read + 6,000 cache write = 55,200);
  - a legacy-names call (gen_ai.system, gen_ai.usage.prompt_tokens / completion_tokens,
    no gen_ai.operation.name), as older OpenLLMetry wrote it.
Trace 2, tenant globex:
  - an OpenAI call with cached tokens (12,000 input of which 8,192 cached), recorded twice:
    by the LangChain instrumentation (totals only, legacy names) around the OpenAI client
    instrumentation (semconv, cache detail, response id): one call, priced once;
  - a batch-tier call (gen_ai.request.service_tier = batch).
Trace 3, no tenant (the request carried none):
  - an Anthropic call in the EXCLUDING convention (a home-made client that copies Anthropic's
    native usage: input 800 uncached, cache read 30,000, cache write 2,000);
  - a self-hosted model no price list knows (COST001: unpriced, never $0).
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

from contextlib import contextmanager

from opentelemetry import baggage, context
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.processor.baggage import ALLOW_ALL_BAGGAGE_KEYS, BaggageSpanProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate_core import Clock, SeededIds  # noqa: E402  (same seeded ids and fixed clock)

from auditor.ingest.otlp_json_writer import to_otlp_json  # noqa: E402

OUT = Path(__file__).resolve().parent / "cost"
SERVICE = "research-assistant"


def provider(exporter: InMemorySpanExporter, seed: int) -> TracerProvider:
    # service.instance.id fixed: the SDK would otherwise add a random one.
    res = Resource.create({"service.name": SERVICE, "service.instance.id": "research-assistant-0", "deployment.environment": "sample"})
    tp = TracerProvider(resource=res, id_generator=SeededIds(seed))
    tp.add_span_processor(BaggageSpanProcessor(ALLOW_ALL_BAGGAGE_KEYS))
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    return tp


@contextmanager
def request(tracer, clock, name: str, kind=SpanKind.SERVER):
    """A current span that starts and ends on the fixed clock (end_on_exit would read the wall clock)."""
    with tracer.start_as_current_span(name, kind=kind, start_time=clock(), end_on_exit=False) as s:
        yield s
        s.end(end_time=clock())


def span(tracer, clock, name: str, attrs: dict, kind=SpanKind.CLIENT):
    s = tracer.start_span(name, kind=kind, start_time=clock())
    s.set_attributes(attrs)
    return s


def scenario() -> list:
    exp, clock = InMemorySpanExporter(), Clock()
    tp = provider(exp, 31)
    app = tp.get_tracer("research_assistant.app")
    openllmetry_anthropic = tp.get_tracer("opentelemetry.instrumentation.anthropic", "0.47.3")
    openllmetry_openai_old = tp.get_tracer("opentelemetry.instrumentation.openai", "0.26.0")
    langchain = tp.get_tracer("opentelemetry.instrumentation.langchain", "0.47.3")
    openai_v2 = tp.get_tracer("opentelemetry.instrumentation.openai_v2", "2.1b0")
    home_made = tp.get_tracer("research_assistant.llm_client")

    # Trace 1: tenant acme.
    ctx = baggage.set_baggage("workflow_id", "deep-research", context=baggage.set_baggage("tenant_id", "acme"))
    token = context.attach(ctx)
    with request(app, clock, "POST /v1/research"):
        s = span(openllmetry_anthropic, clock, "anthropic.chat", {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "anthropic",
            "gen_ai.request.model": "claude-sonnet-4-5",
            "gen_ai.response.model": "claude-sonnet-4-5-20250929",
            "gen_ai.response.id": "msg_01CacheHeavy",
            "gen_ai.usage.input_tokens": 1_200 + 48_000 + 6_000,
            "gen_ai.usage.cache_read.input_tokens": 48_000,
            "gen_ai.usage.cache_creation.input_tokens": 6_000,
            "gen_ai.usage.output_tokens": 850,
            "llm.usage.total_tokens": 1_200 + 48_000 + 6_000 + 850,
            "server.address": "api.anthropic.com",
            "server.port": 443,
        })
        s.end(end_time=clock())
        s = span(openllmetry_openai_old, clock, "openai.chat", {
            "gen_ai.system": "openai",
            "llm.request.type": "chat",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
            "gen_ai.usage.prompt_tokens": 1_000,
            "gen_ai.usage.completion_tokens": 200,
            "llm.usage.total_tokens": 1_200,
        })
        s.end(end_time=clock())
    context.detach(token)

    # Trace 2: tenant globex.
    ctx = baggage.set_baggage("workflow_id", "summarise", context=baggage.set_baggage("tenant_id", "globex"))
    token = context.attach(ctx)
    with request(app, clock, "POST /v1/summaries"):
        with request(langchain, clock, "ChatOpenAI.chat", SpanKind.CLIENT) as lc:
            lc.set_attributes({
                "llm.request.type": "chat",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.usage.prompt_tokens": 12_000,
                "gen_ai.usage.completion_tokens": 400,
                "llm.usage.total_tokens": 12_400,
            })
            s = span(openai_v2, clock, "chat gpt-4o", {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.response.model": "gpt-4o-2024-08-06",
                "gen_ai.response.id": "chatcmpl-cached01",
                "gen_ai.usage.input_tokens": 12_000,
                "gen_ai.usage.cache_read.input_tokens": 8_192,
                "gen_ai.usage.output_tokens": 400,
                "openai.response.service_tier": "default",
                "server.address": "api.openai.com",
                "server.port": 443,
            })
            s.end(end_time=clock())
        s = span(openai_v2, clock, "chat gpt-4o-mini", {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
            "gen_ai.response.id": "batch_req_0001",
            "gen_ai.request.service_tier": "batch",
            "gen_ai.usage.input_tokens": 20_000,
            "gen_ai.usage.output_tokens": 2_000,
            "server.address": "api.openai.com",
            "server.port": 443,
        })
        s.end(end_time=clock())
    context.detach(token)

    # Trace 3: no tenant on the request.
    with request(app, clock, "POST /v1/internal/reindex"):
        s = span(home_made, clock, "chat claude-sonnet-4-5", {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "anthropic",
            "gen_ai.request.model": "claude-sonnet-4-5",
            "gen_ai.response.model": "claude-sonnet-4-5-20250929",
            "gen_ai.response.id": "msg_01Excluding",
            "gen_ai.usage.input_tokens": 800,
            "gen_ai.usage.cache_read.input_tokens": 30_000,
            "gen_ai.usage.cache_creation.input_tokens": 2_000,
            "gen_ai.usage.output_tokens": 500,
        })
        s.end(end_time=clock())
        s = span(home_made, clock, "chat acme-support-70b-ft", {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "vllm",
            "gen_ai.request.model": "acme-support-70b-ft",
            "gen_ai.usage.input_tokens": 3_000,
            "gen_ai.usage.output_tokens": 300,
        })
        s.end(end_time=clock())
    return list(exp.get_finished_spans())


def write(name: str, spans) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    spans = sorted(spans, key=lambda s: (s.context.trace_id, s.start_time))
    msg = encode_spans(spans)
    (OUT / f"{name}.otlp.json").write_text(json.dumps(to_otlp_json(msg), indent=1) + "\n")
    with gzip.GzipFile(OUT / f"{name}.pb.gz", "wb", mtime=0) as fh:
        fh.write(msg.SerializeToString())


if __name__ == "__main__":
    write("cost", scenario())
    print(f"wrote {sorted(p.name for p in OUT.iterdir())}")
