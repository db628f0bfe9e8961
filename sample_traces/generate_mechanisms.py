"""One sample per root-cause mechanism (auditor/mechanism.py), each made by the real library.

    python -m venv /work/venv-mech
    /work/venv-mech/bin/pip install opentelemetry-sdk==1.45.2 opentelemetry-processor-baggage==0.66b1 \\
        openinference-instrumentation-openai==0.1.66 openinference-instrumentation==0.1.72 openai==3.57.0 \\
        kombu==5.7.0 litellm==1.110.2
    PYTHONPATH=. /work/venv-mech/bin/python sample_traces/generate_mechanisms.py [NAME...]

Writes sample_traces/mechanisms/NAME.otlp.json (versions above are the ones the committed files
were made with; Python 3.11.7). Run all scenarios at once to reproduce them: executor thread
names count the pools made so far in the process (ThreadPoolExecutor-2_0). What LiteLLM writes
from its own state differs per run (litellm.call_id, a uuid4; hidden_params: port, date); the
rest is reproducible. The code.line.number values point into this file: regenerate the samples
(and their goldens, reports/) after editing it.

Every LLM call is a real OpenAI SDK request to the kit's FakeProvider on 127.0.0.1, traced by openinference-instrumentation-openai (or by LiteLLM's own
OpenTelemetry logger). Apps carry tenant_id / workflow_id in W3C baggage, copied onto their spans
by opentelemetry-processor-baggage's BaggageSpanProcessor, unless said otherwise.

The OTel Python SDK records no thread or code attributes by itself. Every provider here adds
``ThreadDetails``: the OTel Java agent's AddThreadDetailsSpanProcessor (thread.id, thread.name
on every span at start) ported to Python, plus code.function.name / code.file.path /
code.line.number of the first frame of this file on the stack (what Logfire records). Thread
names are the real ones (ThreadPoolExecutor-0_0, asyncio_0, MainThread); thread.id is numbered
by first appearance so the files are reproducible. Without this processor the traces carry no
evidence and the auditor says "unknown" (see unknown.otlp.json and core/threadpool).

Scenarios:
  thread_pool          a request fans out to a ThreadPoolExecutor without copying the context:
                       one task re-parents its span explicitly (the key, in baggage, is lost:
                       a leak), one does not (a headless call)
  run_in_executor      an asyncio handler calls the sync client via loop.run_in_executor(None, ...)
  async_task           an asyncio worker task created at startup, outside any request, serves
                       the requests' jobs from an asyncio.Queue
  closed_scope         OpenInference using_attributes(metadata=...) around an agent run; the
                       framework fires an on-end callback that re-enters the run's span after
                       the block and the span closed
  gateway_allow_list   the app passes metadata={"tenant_id", "workflow_id"} to litellm.completion;
                       LiteLLM's OTel logger keeps only its StandardLoggingMetadata keys (a leak);
                       a second request sends them in spend_logs_metadata, the patch (attributed).
                       USE_OTEL_LITELLM_REQUEST_SPAN=true gives LiteLLM's own litellm_request span
  receiver_no_baggage  a real HTTP hop whose receiver extracts traceparent but not baggage
  queue_hop            kombu (memory:// transport): the producer injects traceparent only into
                       the message headers. kombu has no OTel instrumentation: the app makes its
                       PRODUCER / CONSUMER spans (messaging.* attributes) and injects / extracts
                       the context itself, as kombu users do
  unknown              tenant_id / workflow_id set as attributes on the request span only: the
                       child is lost on the same thread, inside its parent: no evidence says why
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.request import Request, urlopen

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # never fetch at run time
# LiteLLM's documented switch for its own litellm_request span under a caller's span (without it,
# LiteLLM writes its attributes onto the caller's span).
os.environ.setdefault("USE_OTEL_LITELLM_REQUEST_SPAN", "true")

import generate_dialects_kit as kit  # noqa: E402

from opentelemetry import baggage, context, propagate, trace  # noqa: E402
from opentelemetry.baggage.propagation import W3CBaggagePropagator  # noqa: E402
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans  # noqa: E402
from opentelemetry.processor.baggage import ALLOW_ALL_BAGGAGE_KEYS, BaggageSpanProcessor  # noqa: E402
from opentelemetry.propagators.composite import CompositePropagator  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from opentelemetry.trace import SpanKind  # noqa: E402
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator  # noqa: E402

from auditor.ingest.otlp_json_writer import to_otlp_json  # noqa: E402

OUT = HERE / "mechanisms"
ME = Path(__file__).resolve()
SRC = "sample_traces/generate_mechanisms.py"  # code.file.path, relative to the repository root


class ThreadDetails(SpanProcessor):
    """thread.id / thread.name (as the OTel Java agent's AddThreadDetailsSpanProcessor) and the
    code.* location of the first frame of this file on the stack (as Logfire), on span start."""

    _ids: dict[int, int] = {}  # one numbering for the process, shared by every provider
    _lock = threading.Lock()

    def on_start(self, span, parent_context=None):
        with self._lock:
            tid = self._ids.setdefault(threading.get_ident(), len(self._ids) + 1)
        span.set_attribute("thread.id", tid)
        span.set_attribute("thread.name", threading.current_thread().name)
        f = sys._getframe(1)
        while f is not None and Path(f.f_code.co_filename).resolve() != ME:
            f = f.f_back
        if f is not None and f.f_code.co_name != "on_start":
            span.set_attribute("code.function.name", f.f_code.co_name)
            span.set_attribute("code.file.path", SRC)
            span.set_attribute("code.line.number", f.f_lineno)


def provider(service: str, exporter: InMemorySpanExporter, seed: int, baggage_copy: bool = True) -> TracerProvider:
    tp = TracerProvider(resource=Resource.create({"service.name": service, "deployment.environment": "sample",
                                                  "service.instance.id": f"{service}-1"}),
                        id_generator=kit.SeededIds(seed))
    tp.add_span_processor(ThreadDetails())
    if baggage_copy:
        tp.add_span_processor(BaggageSpanProcessor(ALLOW_ALL_BAGGAGE_KEYS))
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    return tp


def request_context(tenant: str, workflow: str):
    ctx = baggage.set_baggage("tenant_id", tenant)
    return baggage.set_baggage("workflow_id", workflow, context=ctx)


def write(name: str, spans) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    spans = sorted(spans, key=lambda s: (s.context.trace_id, s.start_time, s.context.span_id))
    path = OUT / f"{name}.otlp.json"
    path.write_text(json.dumps(to_otlp_json(encode_spans(spans)), indent=1) + "\n")
    return path


class OpenAIApp:
    """A service whose OpenAI calls are traced by openinference-instrumentation-openai."""

    def __init__(self, fake: kit.FakeProvider, tp: TracerProvider):
        import openai
        from openinference.instrumentation.openai import OpenAIInstrumentor

        self.instrumentor = OpenAIInstrumentor()
        self.instrumentor.instrument(tracer_provider=tp)
        self.client = openai.OpenAI(api_key="sk-sample", base_url=fake.url + "/v1", max_retries=0)
        self.aclient = openai.AsyncOpenAI(api_key="sk-sample", base_url=fake.url + "/v1", max_retries=0)

    def ask(self, text: str) -> None:
        self.client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": text}])

    async def aask(self, text: str) -> None:
        await self.aclient.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": text}])

    def close(self) -> None:
        self.instrumentor.uninstrument()


def thread_pool(fake: kit.FakeProvider) -> Path:
    kit.install_clock()
    exp = InMemorySpanExporter()
    tp = provider("support-bot", exp, 101)
    app, tracer = OpenAIApp(fake, tp), tp.get_tracer("support_bot.app")
    pool = ThreadPoolExecutor(max_workers=1)

    def summarise(parent, text: str) -> None:
        # The span is re-parented by hand; the context (and its baggage) stays behind.
        with tracer.start_as_current_span("summarise_section", context=trace.set_span_in_context(parent)):
            app.ask(text)

    token = context.attach(request_context("acme", "digest"))
    with tracer.start_as_current_span("POST /v1/digests", kind=SpanKind.SERVER) as root:
        root.set_attribute("http.route", "/v1/digests")
        with tracer.start_as_current_span("fan_out") as fan:
            pool.submit(summarise, fan, "Summarise part 1. [[usage:1200:0:150]]").result()
            pool.submit(app.ask, "Summarise part 2. [[usage:900:0:120]]").result()
    context.detach(token)
    pool.shutdown()
    app.close()
    return write("thread_pool", exp.get_finished_spans())


def run_in_executor(fake: kit.FakeProvider) -> Path:
    kit.install_clock()
    exp = InMemorySpanExporter()
    tp = provider("report-api", exp, 102)
    app, tracer = OpenAIApp(fake, tp), tp.get_tracer("report_api.app")

    async def handle(tenant: str, n: int) -> None:
        token = context.attach(request_context(tenant, "report"))
        with tracer.start_as_current_span("POST /v1/reports", kind=SpanKind.SERVER) as root:
            root.set_attribute("http.route", "/v1/reports")
            loop = asyncio.get_running_loop()
            # The bug: the default executor runs ask() in a worker thread with an empty context.
            await loop.run_in_executor(None, app.ask, f"Write report {n}. [[usage:1500:512:200]]")
        context.detach(token)

    async def main() -> None:
        await handle("globex", 1)

    asyncio.run(main())
    app.close()
    return write("run_in_executor", exp.get_finished_spans())


def async_task(fake: kit.FakeProvider) -> Path:
    kit.install_clock()
    exp = InMemorySpanExporter()
    tp = provider("summary-api", exp, 103)
    app, tracer = OpenAIApp(fake, tp), tp.get_tracer("summary_api.app")

    async def worker(jobs: asyncio.Queue) -> None:
        while True:
            text, done = await jobs.get()
            await app.aask(text)
            done.set_result(None)

    async def main() -> None:
        jobs: asyncio.Queue = asyncio.Queue()
        # The bug: the worker task is created at startup, so it runs in the startup context,
        # never in a request's.
        task = asyncio.create_task(worker(jobs))
        for n, tenant in enumerate(["acme", "initech"]):
            token = context.attach(request_context(tenant, "summary"))
            with tracer.start_as_current_span("POST /v1/summaries", kind=SpanKind.SERVER) as root:
                root.set_attribute("http.route", "/v1/summaries")
                done = asyncio.get_running_loop().create_future()
                await jobs.put((f"Summarise ticket {n}. [[usage:700:0:{60 + n}]]", done))
                await done
            context.detach(token)
        task.cancel()

    asyncio.run(main())
    app.close()
    return write("async_task", exp.get_finished_spans())


def closed_scope(fake: kit.FakeProvider) -> Path:
    from openinference.instrumentation import OITracer, TraceConfig, using_attributes

    kit.install_clock()
    exp = InMemorySpanExporter()
    tp = provider("agent-service", exp, 104, baggage_copy=False)
    app = OpenAIApp(fake, tp)
    tracer = OITracer(tp.get_tracer("agent_service.app"), config=TraceConfig())
    on_end: list = []

    def run_agent(tenant: str) -> None:
        with using_attributes(session_id=f"sess-{tenant}", metadata={"tenant_id": tenant, "workflow_id": "agent"}):
            with tracer.start_as_current_span("agent.run", openinference_span_kind="chain") as run:
                app.ask(f"Plan for {tenant}. [[usage:1100:0:90]]")
                # A framework-style callback keeps the run's span and fires when the run is over.
                on_end.append(lambda: _summarise(run, tenant))

    def _summarise(run, tenant: str) -> None:
        with trace.use_span(run, end_on_exit=False):
            app.ask(f"Summarise the run for {tenant}. [[usage:800:0:70]]")

    run_agent("acme")
    for cb in on_end:  # after the using_attributes block and the span have closed
        cb()
    app.close()
    return write("closed_scope", exp.get_finished_spans())


def gateway_allow_list(fake: kit.FakeProvider) -> Path:
    import litellm
    from litellm.integrations.opentelemetry import OpenTelemetry, OpenTelemetryConfig

    clock = kit.install_clock()
    _litellm_reads(clock)
    exp = InMemorySpanExporter()
    app_tp = provider("billing-app", exp, 105)
    gw_tp = provider("litellm", exp, 106, baggage_copy=False)
    otel = OpenTelemetry(config=OpenTelemetryConfig(exporter=exp, skip_set_global=True), tracer_provider=gw_tp)
    litellm.callbacks = [otel]
    tracer = app_tp.get_tracer("billing_app.app")
    for n, (tenant, metadata) in enumerate([
        ("acme", {"tenant_id": "acme", "workflow_id": "invoice_summary"}),  # the bug: not keys LiteLLM logs
        ("globex", {"spend_logs_metadata": {"tenant_id": "globex", "workflow_id": "invoice_summary"}}),  # the patch
    ]):
        token = context.attach(request_context(tenant, "invoice_summary"))
        with tracer.start_as_current_span("POST /v1/invoices/summary", kind=SpanKind.SERVER) as root:
            root.set_attribute("http.route", "/v1/invoices/summary")
            litellm.completion(
                model="openai/gpt-4o-mini", api_base=fake.url + "/v1", api_key="sk-sample",
                messages=[{"role": "user", "content": f"Summarise invoice {n}. [[usage:1300:256:110]]"}],
                metadata=metadata,
            )
        context.detach(token)
        _wait_for(exp, lambda s, n=n: s.name == "litellm_request" and s.attributes.get("gen_ai.response.id") is not None
                  and sum(x.name == "litellm_request" for x in exp.get_finished_spans()) > n)
    litellm.callbacks = []
    return write("gateway_allow_list", exp.get_finished_spans())


def _litellm_reads(clock) -> None:
    """LiteLLM times a call with datetime.datetime.now() (litellm/utils.py) and writes those times on
    its spans: give it the fake clock too, so its spans nest in time with the app's and the file
    is reproducible (as install_clock does for the OTel SDK)."""
    import datetime as real
    import types

    import litellm.utils

    class ClockDatetime(real.datetime):
        @classmethod
        def now(cls, tz=None):
            return real.datetime.fromtimestamp(clock() // 1_000_000 / 1000, tz)

    shim = types.SimpleNamespace(**{k: getattr(real, k) for k in dir(real) if not k.startswith("__")})
    shim.datetime = ClockDatetime
    litellm.utils.datetime = shim


def _wait_for(exp: InMemorySpanExporter, pred, seconds: float = 20.0) -> None:
    import time

    end = time.monotonic() + seconds
    while not any(pred(s) for s in exp.get_finished_spans()):
        if time.monotonic() > end:
            raise SystemExit("LiteLLM logged no span")
        time.sleep(0.05)


def receiver_no_baggage(fake: kit.FakeProvider) -> Path:
    kit.install_clock()
    exp = InMemorySpanExporter()
    front = provider("web-frontend", exp, 107).get_tracer("web_frontend.app")
    scorer_tp = provider("scoring-service", exp, 108)
    app, scorer = OpenAIApp(fake, scorer_tp), scorer_tp.get_tracer("scoring_service.app")
    sender = CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])
    receiver = TraceContextTextMapPropagator()  # the bug: baggage is not extracted

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            ctx = receiver.extract({k.lower(): v for k, v in self.headers.items()})
            with scorer.start_as_current_span("POST /score", context=ctx, kind=SpanKind.SERVER):
                app.ask("Score this lead. [[usage:2000:1024:300]]")
            body = b'{"score": 0.7}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=server.serve_forever, daemon=True, name="http-server")
    t.start()
    try:
        token = context.attach(request_context("acme", "lead-scoring"))
        with front.start_as_current_span("POST /leads", kind=SpanKind.SERVER):
            with front.start_as_current_span("POST", kind=SpanKind.CLIENT):
                headers: dict = {}
                sender.inject(headers)
                req = Request(f"http://127.0.0.1:{server.server_port}/score", data=b"{}", headers=headers, method="POST")
                with urlopen(req, timeout=10) as r:
                    r.read()
        context.detach(token)
    finally:
        server.shutdown()
        server.server_close()
    app.close()
    return write("receiver_no_baggage", exp.get_finished_spans())


def queue_hop(fake: kit.FakeProvider) -> Path:
    from kombu import Connection, Exchange, Producer, Queue

    kit.install_clock()
    exp = InMemorySpanExporter()
    api = provider("intake-api", exp, 109).get_tracer("intake_api.app")
    worker_tp = provider("summary-worker", exp, 110)
    app, worker = OpenAIApp(fake, worker_tp), worker_tp.get_tracer("summary_worker.app")
    exchange = Exchange("documents", type="direct")
    queue = Queue("summaries", exchange, routing_key="summaries")
    messaging = {"messaging.system": "kombu", "messaging.destination.name": "summaries"}
    with Connection("memory://") as conn:
        queue(conn.channel()).declare()
        token = context.attach(request_context("globex", "doc-summary"))
        with api.start_as_current_span("POST /v1/documents", kind=SpanKind.SERVER):
            with api.start_as_current_span("summaries publish", kind=SpanKind.PRODUCER,
                                           attributes={**messaging, "messaging.operation.type": "send"}):
                headers: dict = {}
                TraceContextTextMapPropagator().inject(headers)  # the bug: traceparent only, no baggage
                Producer(conn.channel()).publish({"doc": 7}, exchange=exchange, routing_key="summaries",
                                                 headers=headers, declare=[queue], serializer="json")
        context.detach(token)

        def on_message(body, message):
            ctx = propagate.extract(message.headers)
            with worker.start_as_current_span("summaries process", context=ctx, kind=SpanKind.CONSUMER,
                                              attributes={**messaging, "messaging.operation.type": "process"}):
                app.ask(f"Summarise document {body['doc']}. [[usage:1800:0:220]]")
            message.ack()

        with conn.Consumer(queue, callbacks=[on_message]):
            conn.drain_events(timeout=2)
    app.close()
    return write("queue_hop", exp.get_finished_spans())


def unknown(fake: kit.FakeProvider) -> Path:
    kit.install_clock()
    exp = InMemorySpanExporter()
    tp = provider("notes-api", exp, 111, baggage_copy=False)
    app, tracer = OpenAIApp(fake, tp), tp.get_tracer("notes_api.app")
    with tracer.start_as_current_span("POST /v1/notes", kind=SpanKind.SERVER) as root:
        root.set_attribute("http.route", "/v1/notes")
        root.set_attribute("tenant_id", "umbrella")  # set on this span only: nothing carries it on
        root.set_attribute("workflow_id", "notes")
        app.ask("Tidy these notes. [[usage:600:0:50]]")
    app.close()
    return write("unknown", exp.get_finished_spans())


SCENARIOS = {
    "thread_pool": thread_pool, "run_in_executor": run_in_executor, "async_task": async_task,
    "closed_scope": closed_scope, "gateway_allow_list": gateway_allow_list,
    "receiver_no_baggage": receiver_no_baggage, "queue_hop": queue_hop, "unknown": unknown,
}


def main(names: list[str]) -> None:
    propagate.set_global_textmap(CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()]))
    fake = kit.FakeProvider()
    try:
        for name in names or list(SCENARIOS):
            print(SCENARIOS[name](fake))
    finally:
        fake.close()


if __name__ == "__main__":
    main(sys.argv[1:])
