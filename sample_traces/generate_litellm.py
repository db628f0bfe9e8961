"""The LiteLLM SDK's own OTel callback (``litellm.integrations.opentelemetry``), for real.

    python -m venv /work/venv-litellm
    /work/venv-litellm/bin/pip install litellm==1.110.2 opentelemetry-sdk==1.45.2 \
        opentelemetry-exporter-otlp-proto-http==1.45.2 opentelemetry-proto==1.45.2
    LITELLM_LOCAL_MODEL_COST_MAP=True PYTHONPATH=. /work/venv-litellm/bin/python sample_traces/generate_litellm.py

Writes sample_traces/litellm/raw-request.otlp.json: service ``invoice-app``, one trace per
``litellm.completion()`` against the kit's FakeProvider on 127.0.0.1. The app's request span
(``POST ...``, SERVER) carries tenant_id / workflow_id; the handler's span (INTERNAL) is the
active span when ``completion()`` runs. LiteLLM (1.110.2) then finds that active span as the
parent (no ``litellm_request`` span is created when a parent exists), writes its gen_ai.* /
metadata.* attributes onto it, and adds a child ``raw_gen_ai_request`` with the raw request
and response as ``llm.<provider>.<param>`` (``llm.openai.usage`` = str(dict)). It does so from
its logging thread pool (``executor.submit(ctx.run, success_handler, ...)``), after
``completion()`` has returned.

1. ``summarise`` (a): the handler waits for the callback before its span ends, so the span
   carries gen_ai.* (response id, usage) and the raw child repeats the call. OpenAI
   gpt-4o-mini, 1200 prompt tokens (200 cached), 150 completion. tenant acme.
2. ``draft_reply`` (b): the handler's span ends before the callback runs (the real background
   thread's timing; made certain here by holding the callback until the span has ended), so
   LiteLLM's attributes on it are dropped by the SDK and only the raw child records the call.
   OpenAI gpt-4o-mini, 800 prompt (0 cached), 60 completion. The handler's span does not copy
   the request's tenant_id / workflow_id: a leak above the call.
3. ``classify`` (b): as 2 with Anthropic claude-sonnet-4-5 (``llm.anthropic.usage``: input
   EXCLUDES cache tokens), 300 input, 2000 cache read, 500 cache write, 90 output. The handler's
   span carries tenant globex / workflow triage (attributed).
4. ``research`` (a) with Anthropic web search: the answer's usage says
   ``server_tool_use.web_search_requests`` = 2, which LiteLLM copies into the span's
   ``metadata.usage_object`` and the raw child's ``llm.anthropic.usage``; 100 input, 50 output.
   LiteLLM's ``gen_ai.cost.total_cost`` includes the searches (``gen_ai.cost.tool_usage_cost``).

Timestamps: the kit's fake clock drives the SDK, and a subclass of LiteLLM's ``OpenTelemetry``
maps the call's own start/end datetimes (``_to_ns``) to the fake-clock readings taken around
``completion()``, so the file is reproducible; it overrides nothing else. Only LiteLLM's
``hidden_params`` (the fake provider's port, the HTTP date) and ``litellm.call_id`` (a uuid)
differ between runs; nothing the audit reads does. Set
LITELLM_LOCAL_MODEL_COST_MAP=True so LiteLLM does not try to fetch its price map.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import generate_dialects_kit as kit  # noqa: E402

kit.OUT = Path(__file__).resolve().parent / "litellm"


def main() -> None:
    clock = kit.install_clock()
    fake = kit.FakeProvider()
    import litellm
    from litellm.integrations.opentelemetry import OpenTelemetry, OpenTelemetryConfig
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind

    exp = InMemorySpanExporter()
    tp = TracerProvider(resource=Resource.create({"service.name": "invoice-app", "deployment.environment": "sample"}),
                        id_generator=kit.SeededIds(71))
    tp.add_span_processor(SimpleSpanProcessor(exp))
    trace.set_tracer_provider(tp)
    tracer = tp.get_tracer("invoice_app.app")

    class Timed(OpenTelemetry):
        """LiteLLM's callback with reproducible timestamps, optionally held until a span ends."""

        times: dict = {}  # fake-clock readings around completion()
        pair: dict = {}  # the call's start/end datetimes -> those readings
        hold: threading.Event | None = None
        done = threading.Event()

        def log_success_event(self, kwargs, response_obj, start_time, end_time):
            if self.hold is not None:
                self.hold.wait(120)
            Timed.pair = {start_time: Timed.times["start"], end_time: Timed.times["end"]}
            try:
                super().log_success_event(kwargs, response_obj, start_time, end_time)
            finally:
                self.done.set()

        def _to_ns(self, dt):
            return Timed.pair.get(dt) or clock()

    otel = Timed(config=OpenTelemetryConfig(exporter=exp), tracer_provider=tp)
    litellm.callbacks = [otel]

    def call(model: str, text: str, base: str) -> None:
        Timed.done.clear()
        Timed.times = {"start": clock()}
        litellm.completion(model=model, api_base=base, api_key="sk-sample", messages=[{"role": "user", "content": text}],
                           max_tokens=256)
        Timed.times["end"] = clock()

    def request(route: str, handler: str, keys: dict, copy_keys: bool, model: str, text: str, base: str, wait_inside: bool):
        with tracer.start_as_current_span(f"POST {route}", kind=SpanKind.SERVER, attributes={"http.route": route, **keys}):
            hold = None if wait_inside else threading.Event()
            Timed.hold = hold
            with tracer.start_as_current_span(handler, attributes=keys if copy_keys else {}):
                call(model, text, base)
                if wait_inside:
                    Timed.done.wait(120)
            if hold is not None:
                hold.set()  # the handler's span has ended: now let the callback run
                Timed.done.wait(120)
        time.sleep(0.05)

    openai_base = fake.url + "/v1"
    request("/invoices/{id}/summary", "summarise", {"tenant_id": "acme", "workflow_id": "invoice_summary"}, True,
            "openai/gpt-4o-mini", "Summarise invoice 77. [[usage:1200:200:150]]", openai_base, True)
    request("/tickets/{id}/reply", "draft_reply", {"tenant_id": "acme", "workflow_id": "support_reply"}, False,
            "openai/gpt-4o-mini", "Draft a reply to ticket 12. [[usage:800:0:60]]", openai_base, False)
    request("/tickets/{id}/classify", "classify", {"tenant_id": "globex", "workflow_id": "triage"}, True,
            "anthropic/claude-sonnet-4-5", "Classify ticket 9. [[usage:300:2000:500:90]]", fake.url, False)
    request("/vendors/{id}/research", "research", {"tenant_id": "acme", "workflow_id": "vendor_research"}, True,
            "anthropic/claude-sonnet-4-5", "Research vendor 5 on the web. [[usage:100:0:0:50]] [[search:2]]", fake.url, True)
    fake.close()
    print(kit.write_spans("raw-request", exp.get_finished_spans()))


if __name__ == "__main__":
    main()
