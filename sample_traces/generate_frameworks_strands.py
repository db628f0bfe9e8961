"""Strands Agents' own OpenTelemetry spans, for real: an orchestrator agent with agents as tools.

    python -m venv /work/venv-frameworks
    /work/venv-frameworks/bin/pip install "strands-agents[openai,anthropic]==1.62.0" opentelemetry-sdk==1.45.1 \\
        opentelemetry-exporter-otlp-proto-common==1.45.1
    PYTHONPATH=. /work/venv-frameworks/bin/python sample_traces/generate_frameworks_strands.py

Writes sample_traces/frameworks/strands.otlp.json (strands-agents 1.62.0, openai 2.54.0, anthropic
0.125.0 as strands-agents[anthropic] pins it below 1.0, opentelemetry-sdk 1.45.1; Strands' default,
pre-"latest" GenAI conventions). No third-party instrumentation: every gen_ai span is Strands' own
(scope ``strands.telemetry.tracer``).

``support-desk`` serves ``POST /tickets/{id}/reply`` (a real HTTP server on 127.0.0.1). The
handler sets ``tenant_id`` / ``workflow_id`` on its server span and gives them to the
``concierge`` agent as Strands' ``trace_attributes`` (the documented way to label an agent's
spans). The concierge (OpenAI ``gpt-4o-mini`` against the local fake provider, streamed) calls
tools in a real loop:

* ``lookup_order``: plain Python.
* ``research``: builds a ``researcher`` agent (Anthropic ``claude-haiku-4-5``, streamed, with
  prompt-cache reads and writes) *without* the caller's trace_attributes (the usual
  agents-as-tools snippet): its spans lose tenant_id and workflow_id, an in-process leak at
  ``execute_tool research -> invoke_agent researcher``.
* ``draft_reply``: builds a ``writer`` agent with ``trace_attributes`` copied from the calling
  agent (via the tool context): attributed.

Requests: acme's ticket uses all three tools; globex's only lookup_order and draft_reply.
Token counts are scripted per model turn (see generate_dialects_kit.py), so the expected costs in
tests/test_frameworks.py are exact.
"""

import json
import os
import sys
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.request import Request, urlopen

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.pop("OTEL_SEMCONV_STABILITY_OPT_IN", None)  # Strands' default conventions

import generate_dialects_kit as kit  # noqa: E402

OUT = Path(__file__).resolve().parent / "frameworks"


def script(*turns) -> str:
    return "<<script:" + json.dumps(list(turns)) + ">>"


# Per model turn: usage [prompt, cached, completion] (OpenAI counts cached inside prompt).
CONCIERGE = {
    "acme": script(
        {"usage": [2400, 1024, 120], "tools": [["lookup_order", {"order_id": "A-1017"}], ["research", {"question": "Is a late delivery refundable?"}]]},
        {"usage": [3100, 2048, 90], "tools": [["draft_reply", {"facts": "order late; refundable"}]]},
        {"usage": [3500, 2048, 60], "text": "Reply sent."},
    ),
    "globex": script(
        {"usage": [1800, 0, 70], "tools": [["lookup_order", {"order_id": "G-220"}]]},
        {"usage": [2000, 1024, 80], "tools": [["draft_reply", {"facts": "order shipped"}]]},
        {"usage": [2300, 1024, 40], "text": "Reply sent."},
    ),
}
# Anthropic usage [input (cache excluded, as Anthropic reports it), cache read, cache write, output].
RESEARCHER = script({"usage": [800, 4000, 1200, 400], "text": "Late deliveries are refundable within 30 days."})
WRITER = script({"usage": [1500, 0, 250], "text": "Dear customer, ..."})


class FrozenDatetime(datetime):
    """Strands stamps gen_ai.event.start_time / end_time from the wall clock: use the sample clock."""

    clock = None

    @classmethod
    def now(cls, tz=None):
        return datetime.fromtimestamp(cls.clock.t / 1e9, tz or timezone.utc)


def main() -> None:
    clock = kit.install_clock()
    FrozenDatetime.clock = clock
    fake = kit.FakeProvider()
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind

    exporter = InMemorySpanExporter()
    tp = TracerProvider(resource=Resource.create({"service.name": "support-desk", "deployment.environment": "sample"}), id_generator=kit.SeededIds(701))
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(tp)

    import strands.telemetry.tracer as strands_tracer
    from strands import Agent, ToolContext, tool
    from strands.models.anthropic import AnthropicModel
    from strands.models.openai import OpenAIModel

    strands_tracer.datetime = FrozenDatetime
    app = trace.get_tracer("support_desk.app")

    def model() -> OpenAIModel:
        return OpenAIModel(client_args={"api_key": "sk-sample", "base_url": fake.url + "/v1", "max_retries": 0}, model_id="gpt-4o-mini")

    def claude() -> AnthropicModel:
        return AnthropicModel(client_args={"api_key": "sk-ant-sample", "base_url": fake.url, "max_retries": 0}, model_id="claude-haiku-4-5", max_tokens=1024)

    @tool
    def lookup_order(order_id: str) -> str:
        """Look an order up in the order database."""
        return json.dumps({"order_id": order_id, "status": "late"})

    @tool
    def research(question: str) -> str:
        """Ask the research agent a policy question."""
        researcher = Agent(name="researcher", model=claude(), system_prompt="You research refund policy. " + RESEARCHER, callback_handler=None)
        return str(researcher(question))

    @tool(context=True)
    def draft_reply(facts: str, tool_context: ToolContext) -> str:
        """Have the writer agent draft the customer reply."""
        writer = Agent(
            name="writer", model=model(), system_prompt="You write short replies. " + WRITER, callback_handler=None,
            trace_attributes=dict(tool_context.agent.trace_attributes),
        )
        return str(writer(facts))

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)))
            tenant = self.headers["x-tenant-id"]
            with app.start_as_current_span("POST /tickets/{id}/reply", kind=SpanKind.SERVER) as span:
                span.set_attribute("tenant_id", tenant)
                span.set_attribute("workflow_id", "ticket_reply")
                concierge = Agent(
                    name="concierge", model=model(), tools=[lookup_order, research, draft_reply], callback_handler=None,
                    system_prompt="You answer support tickets. " + CONCIERGE[tenant],
                    trace_attributes={"tenant_id": tenant, "workflow_id": "ticket_reply", "session.id": body["ticket"]},
                )
                concierge(body["text"])
            out = b"{}"
            self.send_response(200)
            self.send_header("content-length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    for tenant, ticket in (("acme", "T-88"), ("globex", "T-91")):
        req = Request(f"{base}/tickets/{ticket}/reply", data=json.dumps({"ticket": ticket, "text": "Where is my order?"}).encode(),
                      headers={"content-type": "application/json", "x-tenant-id": tenant}, method="POST")
        urlopen(req, timeout=60).read()
    server.shutdown()
    server.server_close()
    kit.OUT = OUT
    print(kit.write_spans("strands", exporter.get_finished_spans()))
    fake.close()


if __name__ == "__main__":
    main()
