"""Attribution across queues: real Celery and RabbitMQ (pika) spans, producer -> consumer.

    apt-get install rabbitmq-server                               # RabbitMQ 3.10.8 (Debian bookworm)
    HOME=/var/lib/rabbitmq RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 rabbitmq-server &   # a real broker on 127.0.0.1:5672
    python -m venv /work/venv-links && /work/venv-links/bin/pip install -e . celery==5.7.0 kombu==5.7.0 \
        opentelemetry-api==1.45.1 opentelemetry-sdk==1.45.1 opentelemetry-instrumentation==0.66b1 \
        opentelemetry-instrumentation-celery==0.66b1 opentelemetry-instrumentation-pika==0.66b1 pika==1.4.4 \
        opentelemetry-processor-baggage==0.66b1 opentelemetry-exporter-otlp-proto-common==1.45.1 \
        opentelemetry-instrumentation-openai-v2==2.3b0 openai==3.57.0 httpx==0.28.1 wrapt==1.17.3
    /work/venv-links/bin/python sample_traces/generate_links.py
    rabbitmqctl stop

(opentelemetry-instrumentation-openai-v2 2.3b0 needs wrapt < 2 and httpx, which openai 3.x no longer
pulls in.) Writes ``sample_traces/links/NAME.otlp.json`` and the same
spans as gzipped protobuf, ``NAME.pb.gz``. Every LLM call is
a real ``openai`` client call, instrumented by opentelemetry-instrumentation-openai-v2, against the
local FakeProvider (``generate_dialects_kit``). The web side puts ``tenant_id`` / ``workflow_id`` in W3C
baggage and copies baggage onto its spans (BaggageSpanProcessor), so its PRODUCER span carries them.

* ``celery-parent``: Celery's default. The ``memory://`` broker with a real worker thread
  (``celery.contrib.testing.worker.start_worker``, pool ``solo``), so the instrumentation makes the real
  PRODUCER ``apply_async/...`` and CONSUMER ``run/...`` spans; the worker continues the producer's trace
  (a parent-child hop). ``reports.summarise`` is published with ``OTEL_PROPAGATORS=tracecontext`` (the
  message headers carry traceparent, not baggage): a ``messaging`` leak at apply_async -> run.
  ``reports.digest`` is published with tracecontext and baggage: the worker's spans carry the keys.
* ``celery-links``: ``CeleryInstrumentor().instrument(use_span_links=True)``: each ``run/...`` span roots
  a new trace with a span link to the producer span, and the producer's context (baggage too) is not
  attached. ``reports.summarise``: the consumer's call lacks the keys the linked producer carried (a
  ``messaging`` leak across the link). ``reports.summarise_for`` takes the keys as task arguments and
  sets them as baggage before its call: nothing to report. A third message is published by a
  ``scheduler`` whose spans are not in this export: its link is unresolved.
* ``rabbitmq``: pika against the real RabbitMQ broker. ``orders-api`` publishes to two queues; the pika
  instrumentation parents the CONSUMER span on the PRODUCER span through the message headers.
  ``report-worker`` (queue ``reports``) does not copy baggage onto its spans: a ``messaging`` leak;
  ``report-worker-v2`` (queue ``reports.v2``) does: attributed.

Producer and worker of the Celery samples share one process (the memory broker is per process): a
tracer provider that answers by thread gives the worker thread its own ``service.name``, as its own
process would have. Tasks are published before the worker starts and run one at a time, so the fake
clock's readings, and the samples, are the same on every run.
"""

from __future__ import annotations

import gzip
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "gen_ai_latest_experimental")

import generate_dialects_kit as kit  # noqa: E402

kit.OUT = Path(__file__).resolve().parent / "links"
KEYS = {"tenant_id": "acme", "workflow_id": "weekly-report"}


def write(name: str, spans) -> None:
    """OTLP JSON (``NAME.otlp.json``) and the same request as gzipped protobuf (``NAME.pb.gz``)."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    print(kit.write_spans(name, spans))
    spans = sorted(spans, key=lambda s: (s.context.trace_id, s.start_time, s.context.span_id))
    with gzip.GzipFile(kit.OUT / f"{name}.pb.gz", "wb", mtime=0) as fh:
        fh.write(encode_spans(spans).SerializeToString())


class ByThread:
    """A tracer provider for one instrumentation in one process: the main thread's spans go to
    ``main``, every other thread's to ``worker`` (both plain SDK providers, switched per sample)."""

    def __init__(self):
        self.main = self.worker = None

    def get_tracer(self, *args, **kwargs):
        router = self

        class Tracer:
            def start_span(self, *a, **kw):
                tp = router.main if threading.current_thread() is threading.main_thread() else router.worker
                return tp.get_tracer(*args, **kwargs).start_span(*a, **kw)

            def start_as_current_span(self, *a, **kw):
                tp = router.main if threading.current_thread() is threading.main_thread() else router.worker
                return tp.get_tracer(*args, **kwargs).start_as_current_span(*a, **kw)

        return Tracer()


def main() -> None:
    kit.install_clock()
    fake = kit.FakeProvider()
    import openai
    from opentelemetry import baggage, context, propagate
    from opentelemetry.baggage.propagation import W3CBaggagePropagator
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
    from opentelemetry.processor.baggage import ALLOW_ALL_BAGGAGE_KEYS, BaggageSpanProcessor
    from opentelemetry.propagators.composite import CompositePropagator
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    both = CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])
    traceparent_only = TraceContextTextMapPropagator()

    def provider(service: str, seed: int, exporter, copy_baggage: bool = True) -> TracerProvider:
        tp = TracerProvider(resource=Resource.create({"service.name": service, "service.instance.id": f"{service}-1",
                                                     "deployment.environment": "sample"}),
                            id_generator=kit.SeededIds(seed))
        if copy_baggage:
            tp.add_span_processor(BaggageSpanProcessor(ALLOW_ALL_BAGGAGE_KEYS))
        tp.add_span_processor(SimpleSpanProcessor(exporter))
        return tp

    router = ByThread()
    OpenAIInstrumentor().instrument(tracer_provider=router)
    client = openai.OpenAI(api_key="sk-sample", base_url=fake.url + "/v1", max_retries=0)

    def chat(text: str) -> None:
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": text}])

    def with_keys(fn):
        ctx = context.get_current()
        for k, v in KEYS.items():
            ctx = baggage.set_baggage(k, v, context=ctx)
        token = context.attach(ctx)
        try:
            return fn()
        finally:
            context.detach(token)

    # ------------------------------------------------------------------ Celery
    from celery import Celery
    from celery.contrib.testing.worker import start_worker

    app = Celery("reports", broker="memory://", backend="cache+memory://")
    app.conf.update(task_always_eager=False, worker_hijack_root_logger=False, broker_connection_retry_on_startup=True)

    @app.task(name="reports.summarise")
    def summarise(text: str) -> str:
        chat(text)
        return "ok"

    @app.task(name="reports.digest")
    def digest(text: str) -> str:
        chat(text)
        return "ok"

    @app.task(name="reports.summarise_for")
    def summarise_for(text: str, tenant_id: str, workflow_id: str) -> str:
        ctx = baggage.set_baggage("workflow_id", workflow_id, context=baggage.set_baggage("tenant_id", tenant_id))
        token = context.attach(ctx)
        try:
            chat(text)
        finally:
            context.detach(token)
        return "ok"

    def send(task, task_id: str, *args):
        """``apply_async`` with fixed ids, so the samples are the same on every run."""
        return task.apply_async(args, task_id=task_id, reply_to="web-sample", origin="web@sample")

    def run_worker(results) -> None:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30, hostname="report-worker@sample"):
            for r in results:
                r.get(timeout=60)

    def celery_sample(name: str, use_links: bool, seed: int, publish) -> None:
        exporter = InMemorySpanExporter()
        web_tracer_provider = provider("web", seed, exporter)
        router.main = web_tracer_provider
        router.worker = provider("report-worker", seed + 1, exporter)
        CeleryInstrumentor().instrument(tracer_provider=router, use_span_links=use_links)
        web = web_tracer_provider.get_tracer("web.app")
        results = publish(web)
        run_worker(results)
        CeleryInstrumentor().uninstrument()
        propagate.set_global_textmap(both)
        write(name, exporter.get_finished_spans())

    def parent_case(web):
        out = []
        propagate.set_global_textmap(traceparent_only)  # the producer's OTEL_PROPAGATORS=tracecontext
        with_keys(lambda: _request(web, "POST /reports/{id}/summary", lambda: out.append(
            send(summarise, "task-parent-1", "Summarise the report. [[usage:3000:1024:250]]"))))
        propagate.set_global_textmap(both)
        with_keys(lambda: _request(web, "POST /reports/{id}/digest", lambda: out.append(
            send(digest, "task-parent-2", "Digest the report. [[usage:1800:0:120]]"))))
        return out

    def link_case(web):
        out = []
        with_keys(lambda: _request(web, "POST /reports/{id}/summary", lambda: out.append(
            send(summarise, "task-links-1", "Summarise the report. [[usage:2600:512:200]]"))))
        with_keys(lambda: _request(web, "POST /reports/{id}/summary-for", lambda: out.append(
            send(summarise_for, "task-links-2", "Summarise for the tenant. [[usage:2200:0:160]]",
                 KEYS["tenant_id"], KEYS["workflow_id"]))))
        # Published by a scheduler whose own spans go to another export (not this file).
        elsewhere = InMemorySpanExporter()
        router.main = provider("scheduler", 777, elsewhere)
        with_keys(lambda: out.append(send(summarise, "task-links-3", "Nightly summary. [[usage:1500:0:90]]")))
        return out

    def _request(tracer, name, fn):
        with tracer.start_as_current_span(name, kind=SpanKind.SERVER):
            fn()

    propagate.set_global_textmap(both)
    celery_sample("celery-parent", False, 501, parent_case)
    celery_sample("celery-links", True, 601, link_case)

    # ------------------------------------------------------------------ RabbitMQ (pika)
    import pika
    from opentelemetry.instrumentation.pika import PikaInstrumentor

    exporter = InMemorySpanExporter()
    api_tp = provider("orders-api", 701, exporter)
    router.main = api_tp
    api = api_tp.get_tracer("orders_api.app")
    params = pika.ConnectionParameters(host="127.0.0.1", port=5672)
    conn = pika.BlockingConnection(params)
    ch = conn.channel()
    for q in ("reports", "reports.v2"):
        ch.queue_declare(queue=q)
        ch.queue_purge(queue=q)
    PikaInstrumentor.instrument_channel(ch, tracer_provider=api_tp)
    with_keys(lambda: _request(api, "POST /orders/{id}/report", lambda: ch.basic_publish(
        "", "reports", b"Summarise the order. [[usage:2800:0:210]]")))
    with_keys(lambda: _request(api, "POST /orders/{id}/report", lambda: ch.basic_publish(
        "", "reports.v2", b"Summarise the order. [[usage:2400:1024:190]]")))
    conn.close()

    def consume(queue: str, service: str, seed: int, copy_baggage: bool) -> None:
        tp = provider(service, seed, exporter, copy_baggage)
        router.worker = tp
        done = threading.Event()

        def work():
            c = pika.BlockingConnection(params)
            cch = c.channel()
            PikaInstrumentor.instrument_channel(cch, tracer_provider=tp)

            def on_message(channel, method, properties, body):
                chat(body.decode())
                channel.basic_ack(method.delivery_tag)
                done.set()

            cch.basic_consume(queue=queue, on_message_callback=on_message)
            while not done.is_set():
                c.process_data_events(time_limit=1)
            c.close()

        t = threading.Thread(target=work)
        t.start()
        t.join(60)

    consume("reports", "report-worker", 702, copy_baggage=False)
    consume("reports.v2", "report-worker-v2", 703, copy_baggage=True)
    time.sleep(0.1)
    write("rabbitmq", exporter.get_finished_spans())
    fake.close()


if __name__ == "__main__":
    main()
