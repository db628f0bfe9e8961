"""OpenInference (openinference-instrumentation-openai and -langchain, with LangGraph), for real.

    /work/venv-samples/bin/python sample_traces/generate_dialects_openinference.py

Writes sample_traces/dialects/openinference.otlp.json, service ``research-agent``:

* ``POST /v1/research``: the handler enters ``using_attributes(metadata={tenant_id, workflow_id},
  session_id, user_id, tags)`` and calls OpenAI once in the request thread (attributed), then
  fans out two calls to a ThreadPoolExecutor WITHOUT copying the context: those LLM spans start
  new traces with no metadata (headless, never minted).
* ``POST /v1/plan``: the handler sets tenant_id / workflow_id on its span and invokes a LangGraph
  graph with ``config={"metadata": {tenant_id, workflow_id}}``; the ``plan`` node calls
  ChatOpenAI (attributed); the ``research`` node runs a subgraph in a worker thread. The OTel
  context follows (opentelemetry-instrumentation-threading) but LangChain's run config does
  not, so the subgraph and its LLM call carry no metadata: a leak below the request span.
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypedDict

sys.path.insert(0, str(Path(__file__).resolve().parent))

import generate_dialects_kit as kit  # noqa: E402


def main() -> None:
    kit.install_clock()
    fake = kit.FakeProvider()
    import openai
    from langchain_openai import ChatOpenAI
    from langgraph.graph import END, START, StateGraph
    from openinference.instrumentation import using_attributes
    from openinference.instrumentation.langchain import LangChainInstrumentor
    from openinference.instrumentation.openai import OpenAIInstrumentor
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.instrumentation.threading import ThreadingInstrumentor
    from opentelemetry.trace import SpanKind

    exporter = InMemorySpanExporter()
    tp = TracerProvider(
        resource=Resource.create({"service.name": "research-agent", "deployment.environment": "sample"}),
        id_generator=kit.SeededIds(21),
    )
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(tp)
    OpenAIInstrumentor().instrument(tracer_provider=tp)
    LangChainInstrumentor().instrument(tracer_provider=tp)
    app = tp.get_tracer("research_agent.app")

    client = openai.OpenAI(api_key="sk-sample", base_url=fake.url + "/v1", max_retries=0)

    def ask(text: str) -> None:
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": text}])

    # 1. Thread pool without a context copy.
    pool = ThreadPoolExecutor(max_workers=2)
    with app.start_as_current_span("POST /v1/research", kind=SpanKind.SERVER) as root:
        root.set_attribute("http.route", "/v1/research")
        with using_attributes(
            session_id="sess-881",
            user_id="u-17",
            metadata={"tenant_id": "acme", "workflow_id": "deep_research"},
            tags=["tenant:acme", "tier:gold"],
        ):
            ask("Outline the report. [[usage:1500:1024:200]]")
            futures = [pool.submit(ask, f"Research section {i}. [[usage:900:0:{300 + i}]]") for i in range(2)]
            for f in futures:
                f.result()
    pool.shutdown()

    # The LangGraph part is traced by the LangChain instrumentor alone (with both, every call
    # would also be recorded by the OpenAI instrumentor: see the openllmetry sample for that).
    OpenAIInstrumentor().uninstrument()

    # 2. LangGraph: the subgraph gets a config built by hand, so run metadata stops there.
    llm = ChatOpenAI(model="gpt-4o-mini", api_key="sk-sample", base_url=fake.url + "/v1", max_retries=0)

    class State(TypedDict, total=False):
        topic: str
        notes: str

    def plan(state: State) -> State:
        llm.invoke(f"Plan research on {state['topic']}. [[usage:1100:0:90]]")
        return {"notes": "plan"}

    def dig(state: State) -> State:
        llm.invoke(f"Dig into {state['topic']}. [[usage:2400:2048:310]]")
        return {"notes": state.get("notes", "") + "+dig"}

    sub_builder = StateGraph(State)
    sub_builder.add_node("dig", dig)
    sub_builder.add_edge(START, "dig")
    sub_builder.add_edge("dig", END)
    subgraph = sub_builder.compile()

    # The team made worker threads keep the trace (opentelemetry-instrumentation-threading copies
    # the OTel context into pool tasks) but LangChain's run config lives in its own contextvar,
    # which that does not copy: the subgraph run in a worker starts with empty metadata.
    ThreadingInstrumentor().instrument()
    workers = ThreadPoolExecutor(max_workers=1)

    def research(state: State) -> State:
        return workers.submit(subgraph.invoke, state, {"run_name": "research_subgraph"}).result(timeout=30)

    builder = StateGraph(State)
    builder.add_node("plan", plan)
    builder.add_node("research", research)
    builder.add_edge(START, "plan")
    builder.add_edge("plan", "research")
    builder.add_edge("research", END)
    graph = builder.compile()

    with app.start_as_current_span("POST /v1/plan", kind=SpanKind.SERVER) as root:
        root.set_attribute("http.route", "/v1/plan")
        root.set_attribute("tenant_id", "globex")
        root.set_attribute("workflow_id", "planner")
        graph.invoke({"topic": "cache pricing"}, config={"metadata": {"tenant_id": "globex", "workflow_id": "planner"}, "run_name": "planner"})

    workers.shutdown()
    print(kit.write_spans("openinference", exporter.get_finished_spans()))
    fake.close()


if __name__ == "__main__":
    main()
