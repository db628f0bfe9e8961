"""OpenTelemetry semconv only: the official opentelemetry-instrumentation-openai-v2, for real.

    /work/venv-samples/bin/python sample_traces/generate_dialects_otel.py

Writes sample_traces/dialects/otel.otlp.json. ``web-frontend`` puts tenant_id / workflow_id in
W3C baggage and calls ``summariser`` over real HTTP on 127.0.0.1 (both services copy baggage
onto spans with BaggageSpanProcessor); the summariser calls OpenAI through the instrumented
client, against the local fake provider.

* ``/v2/summarise`` extracts traceparent AND baggage: attributed.
* ``/v1/summarise`` (the old handler) extracts traceparent only: the trace continues, the
  attribution does not (a network leak).
"""

from __future__ import annotations

import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.request import Request, urlopen

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "gen_ai_latest_experimental")

import generate_dialects_kit as kit  # noqa: E402


def main() -> None:
    kit.install_clock()
    fake = kit.FakeProvider()
    import openai
    from opentelemetry import baggage, context
    from opentelemetry.baggage.propagation import W3CBaggagePropagator
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
    from opentelemetry.processor.baggage import ALLOW_ALL_BAGGAGE_KEYS, BaggageSpanProcessor
    from opentelemetry.propagators.composite import CompositePropagator
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    exporter = InMemorySpanExporter()

    def provider(service: str, seed: int) -> TracerProvider:
        tp = TracerProvider(resource=Resource.create({"service.name": service, "deployment.environment": "sample"}), id_generator=kit.SeededIds(seed))
        tp.add_span_processor(BaggageSpanProcessor(ALLOW_ALL_BAGGAGE_KEYS))
        tp.add_span_processor(SimpleSpanProcessor(exporter))
        return tp

    front = provider("web-frontend", 101).get_tracer("web_frontend.app")
    summariser_tp = provider("summariser", 102)
    summariser = summariser_tp.get_tracer("summariser.app")
    OpenAIInstrumentor().instrument(tracer_provider=summariser_tp)
    client = openai.OpenAI(api_key="sk-sample", base_url=fake.url + "/v1", max_retries=0)
    both = CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])
    traceparent_only = TraceContextTextMapPropagator()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)))
            carrier = {k.lower(): v for k, v in self.headers.items()}
            extractor = both if self.path.startswith("/v2/") else traceparent_only
            token = context.attach(extractor.extract(carrier))
            try:
                with summariser.start_as_current_span(f"POST {self.path}", kind=SpanKind.SERVER):
                    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": body["text"]}])
            finally:
                context.detach(token)
            out = b"{}"
            self.send_response(200)
            self.send_header("content-length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"

    for path, tenant, workflow, text in [
        ("/v2/summarise", "acme", "digest", "Summarise the thread. [[usage:4000:3072:300]]"),
        ("/v1/summarise", "globex", "digest", "Summarise the thread. [[usage:2500:0:180]]"),
    ]:
        ctx = baggage.set_baggage("tenant_id", tenant)
        ctx = baggage.set_baggage("workflow_id", workflow, context=ctx)
        token = context.attach(ctx)
        try:
            with front.start_as_current_span("POST /inbox/{id}/digest", kind=SpanKind.SERVER):
                with front.start_as_current_span("POST", kind=SpanKind.CLIENT):
                    headers = {"content-type": "application/json"}
                    both.inject(headers)
                    urlopen(Request(base + path, data=json.dumps({"text": text}).encode(), headers=headers, method="POST"), timeout=30).read()
        finally:
            context.detach(token)
    server.shutdown()
    server.server_close()
    print(kit.write_spans("otel", exporter.get_finished_spans()))
    fake.close()


if __name__ == "__main__":
    main()
