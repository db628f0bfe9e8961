"""Generate the core scenarios with the real OpenTelemetry SDK.

    python sample_traces/generate_core.py        # rewrites sample_traces/core/*

Attribution travels the way production apps carry it: the request handler puts tenant_id
and workflow_id in W3C baggage, and opentelemetry-processor-baggage's BaggageSpanProcessor
copies baggage onto every span started in that context. Each scenario then loses it the
way real code does. Ids and timestamps are fixed (seeded id generator, fixed clock) so the
committed files are reproducible.

Scenarios:
  clean            the context reaches every LLM call
  threadpool       LLM calls run in a ThreadPoolExecutor without copying contextvars
  baggage_dropped  a real HTTP hop (127.0.0.1) whose receiver extracts traceparent only
"""

from __future__ import annotations

import gzip
import json
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.request import Request, urlopen

from opentelemetry import baggage, context, propagate
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.processor.baggage import ALLOW_ALL_BAGGAGE_KEYS, BaggageSpanProcessor
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.baggage.propagation import W3CBaggagePropagator

from auditor.ingest.otlp_json_writer import to_otlp_json

OUT = Path(__file__).resolve().parent / "core"
T0 = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z


class SeededIds(IdGenerator):
    def __init__(self, seed: int):
        self._r = random.Random(seed)
        self._lock = threading.Lock()

    def generate_span_id(self) -> int:
        with self._lock:
            return self._r.getrandbits(64) or 1

    def generate_trace_id(self) -> int:
        with self._lock:
            return self._r.getrandbits(128) or 1


class Clock:
    """A fake clock: every reading advances 1 ms, so spans nest and never tie."""

    def __init__(self):
        self.t = T0
        self._lock = threading.Lock()

    def __call__(self) -> int:
        with self._lock:
            self.t += 1_000_000
            return self.t


def provider(service: str, exporter: InMemorySpanExporter, seed: int) -> TracerProvider:
    tp = TracerProvider(resource=Resource.create({"service.name": service, "deployment.environment": "sample"}), id_generator=SeededIds(seed))
    tp.add_span_processor(BaggageSpanProcessor(ALLOW_ALL_BAGGAGE_KEYS))
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    return tp


def llm_call(tracer, clock, model: str, inp: int, cached: int, out: int, rid: str) -> None:
    """A span shaped as the OTel GenAI semconv (and openai-v2 instrumentation) write it."""
    span = tracer.start_span(f"chat {model}", kind=SpanKind.CLIENT, start_time=clock())
    span.set_attributes({
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": model,
        "gen_ai.response.model": model,
        "gen_ai.response.id": rid,
        "gen_ai.usage.input_tokens": inp,
        "gen_ai.usage.cache_read.input_tokens": cached,
        "gen_ai.usage.output_tokens": out,
        "server.address": "api.openai.com",
        "server.port": 443,
    })
    span.end(end_time=clock())


def request_context(tenant: str, workflow: str):
    ctx = baggage.set_baggage("tenant_id", tenant)
    return baggage.set_baggage("workflow_id", workflow, context=ctx)


def write(name: str, spans) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    spans = sorted(spans, key=lambda s: (s.context.trace_id, s.start_time))
    msg = encode_spans(spans)
    (OUT / f"{name}.otlp.json").write_text(json.dumps(to_otlp_json(msg), indent=1) + "\n")
    with gzip.GzipFile(OUT / f"{name}.pb.gz", "wb", mtime=0) as fh:
        fh.write(msg.SerializeToString())


def clean() -> None:
    exp, clock = InMemorySpanExporter(), Clock()
    tracer = provider("support-bot", exp, 1).get_tracer("support_bot.app")
    for i, (tenant, wf) in enumerate([("acme", "triage"), ("globex", "summarise")]):
        token = context.attach(request_context(tenant, wf))
        with tracer.start_as_current_span(f"POST /v1/tickets/{1000 + i}/answer", kind=SpanKind.SERVER, start_time=clock()) as root:
            root.set_attribute("http.route", "/v1/tickets/{id}/answer")
            with tracer.start_as_current_span("draft_answer", start_time=clock()):
                llm_call(tracer, clock, "gpt-4o-mini", 1200, 400, 150, f"chatcmpl-clean{i}")
            llm_call(tracer, clock, "gpt-4o-mini", 800, 0, 60, f"chatcmpl-clean{i}b")
        context.detach(token)
    write("clean", exp.get_finished_spans())


def threadpool() -> None:
    exp, clock = InMemorySpanExporter(), Clock()
    tracer = provider("support-bot", exp, 2).get_tracer("support_bot.app")
    pool = ThreadPoolExecutor(max_workers=2)
    for i, (tenant, wf) in enumerate([("acme", "triage"), ("initech", "triage")]):
        token = context.attach(request_context(tenant, wf))
        with tracer.start_as_current_span(f"POST /v1/tickets/{2000 + i}/answer", kind=SpanKind.SERVER, start_time=clock()):
            with tracer.start_as_current_span("fan_out_drafts", start_time=clock()):
                # The bug: submit() runs the call in a worker thread with an empty context.
                futures = [pool.submit(llm_call, tracer, clock, "gpt-4o-mini", 900, 0, 80 + j, f"chatcmpl-pool{i}{j}") for j in range(2)]
                for f in futures:
                    f.result()
            llm_call(tracer, clock, "gpt-4o-mini", 500, 0, 40, f"chatcmpl-pool{i}x")
        context.detach(token)
    pool.shutdown()
    write("threadpool", exp.get_finished_spans())


def baggage_dropped() -> None:
    exp, clock = InMemorySpanExporter(), Clock()
    front = provider("web-frontend", exp, 3).get_tracer("web_frontend.app")
    scorer_tp = provider("scoring-service", exp, 4)
    scorer = scorer_tp.get_tracer("scoring_service.app")
    sender = CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])
    receiver = TraceContextTextMapPropagator()  # the bug: baggage is not extracted

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            ctx = receiver.extract({k.lower(): v for k, v in self.headers.items()})
            with scorer.start_as_current_span("POST /score", context=ctx, kind=SpanKind.SERVER, start_time=clock()):
                with scorer.start_as_current_span("score_lead", start_time=clock()):
                    llm_call(scorer, clock, "gpt-4o", 2000, 1024, 300, f"chatcmpl-score-{self.headers.get('x-n')}")
            body = b'{"score": 0.7}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        for i, (tenant, wf) in enumerate([("acme", "lead-scoring"), ("globex", "lead-scoring"), ("acme", "lead-scoring")]):
            token = context.attach(request_context(tenant, wf))
            with front.start_as_current_span(f"POST /leads/{3000 + i}", kind=SpanKind.SERVER, start_time=clock()):
                llm_call(front, clock, "gpt-4o-mini", 600, 0, 50, f"chatcmpl-front{i}")
                with front.start_as_current_span("POST", kind=SpanKind.CLIENT, start_time=clock()):
                    headers = {"x-n": str(i)}
                    sender.inject(headers)
                    req = Request(f"http://127.0.0.1:{server.server_port}/score", data=b"{}", headers=headers, method="POST")
                    with urlopen(req, timeout=10) as r:
                        r.read()
            context.detach(token)
    finally:
        server.shutdown()
    write("baggage_dropped", exp.get_finished_spans())


if __name__ == "__main__":
    propagate.set_global_textmap(CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()]))
    clean()
    threadpool()
    baggage_dropped()
    print(f"wrote {sorted(p.name for p in OUT.iterdir())}")
