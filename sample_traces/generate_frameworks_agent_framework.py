"""Microsoft Agent Framework's own OpenTelemetry spans, for real: a queue-consumer job whose
coordinator agent delegates to an agent-as-tool and to a tool that runs an agent in a thread pool.

    python -m venv /work/venv-frameworks-af
    /work/venv-frameworks-af/bin/pip install agent-framework-core==1.23.0 agent-framework-openai==1.17.0 \\
        agent-framework-anthropic==1.0.0b261022 opentelemetry-sdk==1.45.1 \\
        opentelemetry-processor-baggage==0.66b1 opentelemetry-exporter-otlp-proto-common==1.45.1
    PYTHONPATH=. /work/venv-frameworks-af/bin/python sample_traces/generate_frameworks_agent_framework.py

Writes sample_traces/frameworks/agent-framework.otlp.json (agent-framework-core 1.23.0,
agent-framework-openai 1.17.0, agent-framework-anthropic 1.0.0b261022, openai 3.57.0, anthropic
1.17.0, opentelemetry-sdk 1.45.1, opentelemetry-processor-baggage 0.66b1). Every gen_ai span is
the framework's own (scope ``agent_framework``, switched on by ``enable_instrumentation()``); no
third-party instrumentation, and the anthropic SDK's own spans are switched off
(``ANTHROPIC_OPEN_TELEMETRY=false``), so the sample shows what the framework alone records.

``billing-assistant`` consumes ``invoice_digest`` messages (a CONSUMER span per message). The
consumer puts tenant_id / workflow_id in W3C baggage; a BaggageSpanProcessor copies baggage onto
every span started in that context (the usual OTel way to label spans). The ``coordinator``
agent (OpenAI chat completions, ``gpt-4o-mini``, against the local fake provider) calls tools
in a real loop:

* ``fetch_invoices``: plain Python.
* ``analyst``: the ``analyst`` agent as a tool (``Agent.as_tool()``): same context, attributed.
  It runs on Anthropic ``claude-haiku-4-5`` with prompt-cache reads and writes. Agent Framework
  writes each provider's own input count as gen_ai.usage.input_tokens: Anthropic's without the
  cache tokens, OpenAI's (the other agents) with them.
* ``translate`` (globex's digest only): runs the ``translator`` agent with ``asyncio.run`` in a
  ``ThreadPoolExecutor`` that does not copy contextvars: the translator's spans root a trace of
  their own with no baggage, so its LLM call is headless (TRACE004, the service consumes
  messages) and never attributed (ATTR002).

Token counts are scripted per model turn (see generate_dialects_kit.py), so the expected costs in
tests/test_frameworks.py are exact.
"""

import asyncio
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.pop("OTEL_SEMCONV_STABILITY_OPT_IN", None)
os.environ["ANTHROPIC_OPEN_TELEMETRY"] = "false"  # the framework's spans only (see above)

import generate_dialects_kit as kit  # noqa: E402

OUT = Path(__file__).resolve().parent / "frameworks"


def script(*turns) -> str:
    return "<<script:" + json.dumps(list(turns)) + ">>"


# Per model turn: usage [prompt, cached, completion] (OpenAI counts cached inside prompt).
COORDINATOR = {
    "acme": script(
        {"usage": [3000, 2048, 150], "tools": [["fetch_invoices", {"month": "2026-10"}], ["analyst", {"task": "Find anomalies in acme's October invoices."}]]},
        {"usage": [3600, 2048, 200], "text": "Digest ready."},
    ),
    "globex": script(
        {"usage": [2800, 0, 140], "tools": [["fetch_invoices", {"month": "2026-10"}], ["analyst", {"task": "Find anomalies in globex's October invoices."}]]},
        {"usage": [3400, 2048, 120], "tools": [["translate", {"text": "Two invoices are duplicated.", "language": "de"}]]},
        {"usage": [3900, 2048, 180], "text": "Digest ready."},
    ),
}
# Anthropic usage [input (cache excluded, as Anthropic reports it), cache read, cache write, output].
ANALYST = script({"usage": [6000, 4000, 1000, 500], "text": "Two invoices are duplicated."})
TRANSLATOR = script({"usage": [900, 0, 300], "text": "Zwei Rechnungen sind doppelt."})


def main() -> None:
    kit.install_clock()
    fake = kit.FakeProvider()
    from opentelemetry import baggage, context, trace
    from opentelemetry.processor.baggage import ALLOW_ALL_BAGGAGE_KEYS, BaggageSpanProcessor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind

    exporter = InMemorySpanExporter()
    tp = TracerProvider(resource=Resource.create({"service.name": "billing-assistant", "deployment.environment": "sample"}), id_generator=kit.SeededIds(801))
    tp.add_span_processor(BaggageSpanProcessor(ALLOW_ALL_BAGGAGE_KEYS))
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(tp)

    from agent_framework import Agent, tool
    from agent_framework.observability import enable_instrumentation
    from agent_framework.openai import OpenAIChatCompletionClient
    from agent_framework_anthropic import AnthropicClient

    enable_instrumentation()
    app = trace.get_tracer("billing_assistant.worker")

    def client() -> OpenAIChatCompletionClient:
        return OpenAIChatCompletionClient(model="gpt-4o-mini", api_key="sk-sample", base_url=fake.url + "/v1")

    @tool
    def fetch_invoices(month: str) -> str:
        """Fetch the tenant's invoices for a month."""
        return json.dumps([{"id": "INV-1", "month": month}, {"id": "INV-2", "month": month}])

    translator = Agent(client(), instructions="You translate billing text. " + TRANSLATOR, name="translator")
    pool = ThreadPoolExecutor(max_workers=1)  # a plain pool: contextvars are not copied

    @tool
    def translate(text: str, language: str) -> str:
        """Translate text for the tenant's billing contact."""
        return pool.submit(lambda: asyncio.run(translator.run(f"Translate to {language}: {text}")).text).result()

    claude = AnthropicClient(model="claude-haiku-4-5", api_key="sk-ant-sample", base_url=fake.url)
    analyst = Agent(claude, instructions="You audit invoices. " + ANALYST, name="analyst", description="Finds anomalies in invoices.")

    async def handle(tenant: str) -> None:
        ctx = baggage.set_baggage("tenant_id", tenant)
        ctx = baggage.set_baggage("workflow_id", "invoice_digest", context=ctx)
        token = context.attach(ctx)
        try:
            with app.start_as_current_span("invoice_digest process", kind=SpanKind.CONSUMER, attributes={"messaging.system": "rabbitmq", "messaging.operation.type": "process", "messaging.destination.name": "invoice_digest"}):
                coordinator = Agent(
                    client(), instructions="You prepare monthly invoice digests. " + COORDINATOR[tenant], name="coordinator",
                    tools=[fetch_invoices, analyst.as_tool(), translate],
                )
                await coordinator.run(f"Prepare the October digest for {tenant}.")
        finally:
            context.detach(token)

    for tenant in ("acme", "globex"):
        asyncio.run(handle(tenant))
    pool.shutdown()
    kit.OUT = OUT
    print(kit.write_spans("agent-framework", exporter.get_finished_spans()))
    fake.close()


if __name__ == "__main__":
    main()
