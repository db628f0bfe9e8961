"""Future AGI traceAI (traceai-openai on fi_instrumentation), for real.

    /work/venv-samples/bin/python sample_traces/generate_dialects_traceai.py

Writes sample_traces/dialects/traceai.otlp.json, service ``contracts-api``:

* ``POST /contracts/{id}/review``: the handler records tenant_id / workflow_id on its own span
  and enters ``using_attributes(session_id, user_id, metadata={tenant_id, workflow_id})`` for
  the review call (attributed). The follow-up ``risk score`` call is made after the ``with``
  block ends: traceAI applies context attributes only to spans its instrumentors create inside
  the block, so that LLM span carries no metadata although its parent does (a library leak).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import generate_dialects_kit as kit  # noqa: E402


def main() -> None:
    kit.install_clock()
    fake = kit.FakeProvider()
    import openai
    from fi_instrumentation import using_attributes
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind
    from traceai_openai import OpenAIInstrumentor

    exporter = InMemorySpanExporter()
    tp = TracerProvider(
        resource=Resource.create({"service.name": "contracts-api", "deployment.environment": "sample"}),
        id_generator=kit.SeededIds(91),
    )
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(tp)
    OpenAIInstrumentor().instrument(tracer_provider=tp)
    app = tp.get_tracer("contracts_api.app")
    client = openai.OpenAI(api_key="sk-sample", base_url=fake.url + "/v1", max_retries=0)

    def ask(model: str, text: str) -> None:
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": text}])

    for n, (tenant, usage, score_usage) in enumerate([("acme", "[[usage:6000:4096:700]]", "[[usage:800:0:20]]"),
                                                      ("globex", "[[usage:4200:0:520]]", "[[usage:750:0:25]]")]):
        with app.start_as_current_span("POST /contracts/{id}/review", kind=SpanKind.SERVER) as root:
            root.set_attribute("http.route", "/contracts/{id}/review")
            root.set_attribute("tenant_id", tenant)
            root.set_attribute("workflow_id", "contract_review")
            with using_attributes(session_id=f"c-{n}", user_id=f"lawyer-{n}", metadata={"tenant_id": tenant, "workflow_id": "contract_review"}):
                ask("gpt-4.1-mini", f"Review contract {n}. {usage}")
            ask("gpt-4o-mini", f"Score the risk of contract {n}. {score_usage}")  # outside the block

    print(kit.write_spans("traceai", exporter.get_finished_spans()))
    fake.close()


if __name__ == "__main__":
    main()
