"""OpenLLMetry (traceloop-sdk with its openai and anthropic instrumentations), for real.

    /work/venv-samples/bin/python sample_traces/generate_dialects_openllmetry.py

Writes sample_traces/dialects/openllmetry.otlp.json. The app is a support bot:

* ``answer_ticket`` (a Traceloop @workflow) sets association properties tenant_id / workflow_id /
  user_id, then calls OpenAI (gpt-4o-mini, cached prompt tokens) and Anthropic
  (claude-sonnet-4-5 with cache read and cache write) against the local fake provider.
* The official ``opentelemetry-instrumentation-openai-v2`` is ALSO enabled (a second team added
  it), so every OpenAI call is recorded by two instrumentations (TRACE005: counted once).
* ``nightly_digest`` is a batch workflow that never sets association properties: its calls
  carry the workflow name but no tenant (never minted).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TRACELOOP_TELEMETRY", "false")
os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "gen_ai_latest_experimental")

import generate_dialects_kit as kit  # noqa: E402


def main() -> None:
    kit.install_clock()
    fake = kit.FakeProvider()
    import anthropic
    import openai
    from opentelemetry import trace
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor as OfficialOpenAIInstrumentor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from traceloop.sdk import Traceloop
    from traceloop.sdk.decorators import task, workflow
    from traceloop.sdk.instruments import Instruments

    exporter = InMemorySpanExporter()
    Traceloop.init(
        app_name="support-bot",
        exporter=exporter,
        disable_batch=True,
        telemetry_enabled=False,
        resource_attributes={"service.name": "support-bot", "deployment.environment": "sample"},
        instruments={Instruments.OPENAI, Instruments.ANTHROPIC},
    )
    tp = trace.get_tracer_provider()
    tp.id_generator = kit.SeededIds(11)
    OfficialOpenAIInstrumentor().instrument(tracer_provider=tp)

    oai = openai.OpenAI(api_key="sk-sample", base_url=fake.url + "/v1", max_retries=0)
    claude = anthropic.Anthropic(api_key="sk-ant-sample", base_url=fake.url, max_retries=0)

    @task(name="draft_reply")
    def draft(ticket: str, usage: str) -> None:
        oai.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "system", "content": "You draft support replies."}, {"role": "user", "content": f"{ticket} {usage}"}],
        )

    @task(name="review_reply")
    def review(ticket: str, usage: str) -> None:
        claude.messages.create(
            model="claude-sonnet-4-5",
            max_tokens=256,
            system=[{"type": "text", "text": "Review the draft.", "cache_control": {"type": "ephemeral"}}],
            messages=[{"role": "user", "content": f"{ticket} {usage}"}],
        )

    @workflow(name="answer_ticket")
    def answer_ticket(tenant: str, user: str, ticket: str, oai_usage: str, claude_usage: str) -> None:
        Traceloop.set_association_properties({"tenant_id": tenant, "workflow_id": "answer_ticket", "user_id": user})
        draft(ticket, oai_usage)
        review(ticket, claude_usage)

    @workflow(name="nightly_digest")
    def nightly_digest() -> None:
        draft("Summarise yesterday's tickets.", "[[usage:3000:0:400]]")

    answer_ticket("acme", "u-17", "Ticket 4711: refund?", "[[usage:1200:400:150]]", "[[usage:300:2000:500:120]]")
    answer_ticket("globex", "u-42", "Ticket 4712: invoice copy", "[[usage:800:0:60]]", "[[usage:200:2500:0:90]]")
    nightly_digest()

    print(kit.write_spans("openllmetry", exporter.get_finished_spans()))
    fake.close()


if __name__ == "__main__":
    main()
