"""Google ADK's own OpenTelemetry spans, for real: a planner agent with a sub-agent as a tool.

    python -m venv /work/venv-frameworks-adk
    /work/venv-frameworks-adk/bin/pip install google-adk==2.13.0 litellm==1.110.2 opentelemetry-sdk==1.44.0 \\
        opentelemetry-exporter-otlp-proto-common==1.44.0 opentelemetry-processor-baggage==0.65b0
    PYTHONPATH=. /work/venv-frameworks-adk/bin/python sample_traces/generate_frameworks_adk.py
    PYTHONPATH=. /work/venv-frameworks-adk/bin/python sample_traces/generate_frameworks_adk.py --schema-v1

Writes sample_traces/frameworks/adk.otlp.json (google-adk 2.13.0, litellm 1.110.2, openai
3.57.0, opentelemetry-sdk 1.44.0, opentelemetry-processor-baggage 0.65b0; ADK's default
telemetry schema v2), and with ``--schema-v1`` adk-schema-v1.otlp.json: the same app with
``ADK_TELEMETRY_SCHEMA_VERSION_OPT_IN=1``, ADK's legacy span format (the only one of ADK 1.x;
supported until at least 2027-03), where each model call is a ``call_llm`` span (gen_ai.system
``gcp.vertex.agent``, no operation name) over a ``generate_content`` span of the same scope with
the same token counts: one call recorded twice. ADK has its own virtualenv: it pins OpenTelemetry below what
strands-agents and agent-framework want. Every gen_ai span is ADK's own (scope
``gcp.vertex.agent``); the model is ADK's ``LiteLlm`` wrapper pointed at the local fake provider
(OpenAI-shaped), so no Google endpoint is involved and no third-party instrumentation is installed.

``trip-planner`` serves ``POST /v1/plan`` and ``POST /v2/plan`` (a real HTTP server on
127.0.0.1). The ``planner`` agent calls, in a real tool loop, ``get_weather`` (plain Python) and
the ``flights`` agent wrapped as an ``AgentTool``.

* ``/v2/plan`` puts tenant_id / workflow_id in W3C baggage, copied onto every span by a
  BaggageSpanProcessor: attributed.
* ``/v1/plan`` (the old handler) only sets them as attributes of its own server span: ADK's
  spans below never carry them, a library leak at ``POST /v1/plan -> invoke_workflow``.

Token counts are scripted per model turn (see generate_dialects_kit.py), so the expected costs in
tests/test_frameworks.py are exact.
"""

import asyncio
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.request import Request, urlopen

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.pop("OTEL_SEMCONV_STABILITY_OPT_IN", None)
SCHEMA_V1 = "--schema-v1" in sys.argv[1:]
if SCHEMA_V1:
    os.environ["ADK_TELEMETRY_SCHEMA_VERSION_OPT_IN"] = "1"  # the legacy format
else:
    os.environ.pop("ADK_TELEMETRY_SCHEMA_VERSION_OPT_IN", None)  # ADK's default schema
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # litellm must not fetch its price list

import generate_dialects_kit as kit  # noqa: E402

OUT = Path(__file__).resolve().parent / "frameworks"


def script(*turns) -> str:
    return "<<script:" + json.dumps(list(turns)) + ">>"


# Per model turn: usage [prompt, cached, completion] (OpenAI counts cached inside prompt).
PLANNER = {
    "acme": script(
        {"usage": [2600, 1024, 110], "tools": [["get_weather", {"city": "Lisbon"}], ["flights", {"request": "acme: BER to LIS on 2026-12-03"}]]},
        {"usage": [3300, 2048, 240], "text": "Plan ready."},
    ),
    "globex": script(
        {"usage": [2200, 0, 100], "tools": [["get_weather", {"city": "Oslo"}], ["flights", {"request": "globex: AMS to OSL on 2026-12-08"}]]},
        {"usage": [2900, 1024, 210], "text": "Plan ready."},
    ),
}
FLIGHTS = script({"usage": [1400, 0, 180], "text": "Two direct flights found."})


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
    tp = TracerProvider(resource=Resource.create({"service.name": "trip-planner", "deployment.environment": "sample"}), id_generator=kit.SeededIds(901))
    tp.add_span_processor(BaggageSpanProcessor(ALLOW_ALL_BAGGAGE_KEYS))
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(tp)

    from google.adk.agents import LlmAgent
    from google.adk.models.lite_llm import LiteLlm
    from google.adk.runners import InMemoryRunner
    from google.adk.tools.agent_tool import AgentTool
    from google.genai import types

    app = trace.get_tracer("trip_planner.app")

    def model(tenant: str) -> LiteLlm:
        return LiteLlm(model="openai/gpt-4o-mini", api_base=fake.url + "/v1", api_key="sk-sample")

    def get_weather(city: str) -> dict:
        """Weather forecast for a city."""
        return {"city": city, "forecast": "sunny"}

    def planner_for(tenant: str) -> LlmAgent:
        flights = LlmAgent(name="flights", model=model(tenant), description="Finds flights.", instruction="You find flights. " + FLIGHTS)
        return LlmAgent(
            name="planner", model=model(tenant), instruction="You plan business trips. " + PLANNER[tenant],
            tools=[get_weather, AgentTool(agent=flights)],
        )

    async def run_agent(tenant: str, text: str) -> None:
        runner = InMemoryRunner(agent=planner_for(tenant), app_name="trip_planner")
        session = await runner.session_service.create_session(app_name="trip_planner", user_id=f"{tenant}-traveller")
        async for _ in runner.run_async(user_id=session.user_id, session_id=session.id,
                                        new_message=types.Content(role="user", parts=[types.Part(text=text)])):
            pass

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)))
            tenant = self.headers["x-tenant-id"]
            token = None
            if self.path.startswith("/v2/"):
                ctx = baggage.set_baggage("tenant_id", tenant)
                token = context.attach(baggage.set_baggage("workflow_id", "trip_plan", context=ctx))
            try:
                with app.start_as_current_span(f"POST {self.path}", kind=SpanKind.SERVER) as span:
                    span.set_attribute("tenant_id", tenant)
                    span.set_attribute("workflow_id", "trip_plan")
                    asyncio.run(run_agent(tenant, body["text"]))
            finally:
                if token is not None:
                    context.detach(token)
            out = b"{}"
            self.send_response(200)
            self.send_header("content-length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    for path, tenant in (("/v2/plan", "acme"), ("/v1/plan", "globex")):
        req = Request(base + path, data=json.dumps({"text": "Plan my trip next week."}).encode(),
                      headers={"content-type": "application/json", "x-tenant-id": tenant}, method="POST")
        urlopen(req, timeout=120).read()
    server.shutdown()
    server.server_close()
    kit.OUT = OUT
    print(kit.write_spans("adk-schema-v1" if SCHEMA_V1 else "adk", exporter.get_finished_spans()))
    fake.close()


if __name__ == "__main__":
    main()
