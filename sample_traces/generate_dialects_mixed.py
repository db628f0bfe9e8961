"""A mixed trace: an OpenInference-instrumented LangChain app calling a LiteLLM proxy.

    /work/venv-samples/bin/python sample_traces/generate_dialects_mixed.py

Writes sample_traces/dialects/mixed-openinference-litellm.otlp.json. The app (``ask-app``,
openinference-instrumentation-langchain, real ChatOpenAI) handles ``POST /ask`` (its request span
carries tenant_id / workflow_id) and runs a chain with
``config={"metadata": {tenant_id, workflow_id}}`` (OpenInference writes ONE JSON string
``metadata``) and points ChatOpenAI at the LiteLLM proxy on 127.0.0.1 (shape as in
generate_dialects_gateways.py), injecting W3C trace context into each request. The proxy logs
the request body's metadata as the Python-repr ``metadata.requester_metadata``. Same key, two
shapes, two services: the audit must read them as one key.

* ``acme``: the app forwards its metadata in the request body (extra_body): attributed end to end.
* ``globex``: a second chain built without extra_body: the proxy sees no tenant (network leak).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import generate_dialects_gateways as gws  # noqa: E402
import generate_dialects_kit as kit  # noqa: E402


def main() -> None:
    kit.install_clock()
    fake = kit.FakeProvider()
    import httpx
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_openai import ChatOpenAI
    from openinference.instrumentation.langchain import LangChainInstrumentor
    from opentelemetry import propagate
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind

    exp = InMemorySpanExporter()
    app_tp = gws.provider("ask-app", exp, 111, False)
    LangChainInstrumentor().instrument(tracer_provider=app_tp)
    proxy = gws.provider("litellm-proxy", exp, 112, False).get_tracer("litellm")
    gw = gws.Gateway(gws.litellm_handler(proxy, fake))
    propagate.set_global_textmap(gws.TRACECONTEXT)

    def inject(request: httpx.Request) -> None:
        # The app's OTel setup propagates trace context on outgoing HTTP requests.
        carrier: dict = {}
        propagate.inject(carrier)
        request.headers.update(carrier)

    http_client = httpx.Client(event_hooks={"request": [inject]})
    prompt = ChatPromptTemplate.from_messages([("user", "{question} {usage}")])

    def chain(extra_body):
        llm = ChatOpenAI(model="claude-sonnet-4-5", api_key="sk-litellm", base_url=gw.url, http_client=http_client,
                         max_retries=0, extra_body=extra_body)
        return prompt | llm

    handler = app_tp.get_tracer("ask_app.app")
    for tenant, extra, question, usage in [
        ("acme", True, "What is our refund policy?", "[[usage:350:4000:0:140]]"),
        ("globex", False, "How do I reset my password?", "[[usage:500:0:3000:90]]"),
    ]:
        meta = {"tenant_id": tenant, "workflow_id": "faq"}
        # The request handler's span is the current OTel span (OpenInference's LangChain spans are
        # not made current), so the proxy request continues this trace below it.
        with handler.start_as_current_span("POST /ask", kind=SpanKind.SERVER) as root:
            root.set_attributes(meta)
            chain({"metadata": meta} if extra else None).invoke({"question": question, "usage": usage},
                                                               config={"metadata": meta, "run_name": "faq_chain"})
    gw.close()
    print(kit.write_spans("mixed-openinference-litellm", exp.get_finished_spans()))
    fake.close()


if __name__ == "__main__":
    main()
