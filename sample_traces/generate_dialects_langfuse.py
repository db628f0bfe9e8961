"""Langfuse (the OTel-native SDK: @observe, propagate_attributes, its OpenAI wrapper), for real.

    /work/venv-samples/bin/python sample_traces/generate_dialects_langfuse.py

The SDK exports over OTLP/HTTP to its host; the host here is the local fake provider, which
keeps the protobuf bodies, so the committed file is exactly what Langfuse would have received.
Writes sample_traces/dialects/langfuse.otlp.json, service ``docs-assistant``:

* ``answer_question`` (@observe) enters ``propagate_attributes(user_id, session_id,
  metadata={tenant_id, workflow_id})`` and makes two OpenAI generations (attributed).
* ``bulk_summaries`` enters the same context, then hands two generations to a
  ThreadPoolExecutor without copying the context: they become traces of their own with no
  attributes (headless calls, never minted).
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import generate_dialects_kit as kit  # noqa: E402


def main() -> None:
    kit.install_clock()
    fake = kit.FakeProvider()
    os.environ["OTEL_SERVICE_NAME"] = "docs-assistant"
    os.environ["LANGFUSE_TRACING_ENVIRONMENT"] = "sample"
    from langfuse import Langfuse, observe, propagate_attributes
    from langfuse.openai import OpenAI

    lf = Langfuse(public_key="pk-lf-sample", secret_key="sk-lf-sample", host=fake.url, flush_at=1000)
    tp = lf._resources.tracer_provider if hasattr(lf, "_resources") else None
    if tp is not None and hasattr(tp, "id_generator"):
        tp.id_generator = kit.SeededIds(81)
    client = OpenAI(api_key="sk-sample", base_url=fake.url + "/v1", max_retries=0)

    def ask(text: str, name: str) -> None:
        client.chat.completions.create(model="gpt-4o-mini", name=name, messages=[{"role": "user", "content": text}])

    @observe(name="answer_question")
    def answer_question(tenant: str, user: str) -> None:
        with propagate_attributes(user_id=user, session_id=f"sess-{user}", metadata={"tenant_id": tenant, "workflow_id": "docs_qa"}):
            ask("Find the relevant pages. [[usage:2600:2048:120]]", "retrieve_rerank")
            ask("Answer from the pages. [[usage:3100:2048:380]]", "answer")

    @observe(name="bulk_summaries")
    def bulk_summaries(tenant: str) -> None:
        with propagate_attributes(user_id="batch", metadata={"tenant_id": tenant, "workflow_id": "bulk_summary"}):
            with ThreadPoolExecutor(max_workers=2) as pool:  # no contextvars.copy_context()
                for f in [pool.submit(ask, f"Summarise doc {i}. [[usage:1400:0:{200 + i}]]", "summarise") for i in range(2)]:
                    f.result()

    answer_question("acme", "u-17")
    bulk_summaries("globex")
    lf.flush()
    lf.shutdown()
    print(kit.write_request("langfuse", kit.merge_requests(fake.otlp_requests())))
    fake.close()


if __name__ == "__main__":
    main()
