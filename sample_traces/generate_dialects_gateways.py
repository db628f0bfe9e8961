"""Gateways with no instrumentation package here, built to their documented span shapes.

    /work/venv-samples/bin/python sample_traces/generate_dialects_gateways.py [NAME...]

Writes sample_traces/dialects/{litellm,portkey,helicone,kong,diy-proxy}.otlp.json. Each run is
real where it can be: an app (OTel SDK, tenant_id / workflow_id in W3C baggage copied onto its
spans by BaggageSpanProcessor) sends real HTTP requests on 127.0.0.1 to a small gateway server,
which extracts the trace context the way that gateway does, forwards to the fake provider and
records spans with the attribute names the gateway's docs and source give
(see shared/reference/conventions.md). What is not documented is said where it is assumed.

* litellm: ``Received Proxy Server Request`` (since v1.81 it carries the request attributes
  itself) -> ``raw_gen_ai_request``, with metadata.* from the standard logging metadata; the body's metadata
  arrives as ``metadata.requester_metadata`` = str(dict); tags as ``metadata.tags`` = str(list);
  usage cache-inclusive; gen_ai.cost.*. Anthropic model with cache read/write.
  Traces: requester metadata (attributed) / tags only / tenant sent as an X-Tenant-Id header that
  LiteLLM does not log (network leak).
* portkey: ``x-portkey-metadata`` JSON header captured on the gateway span; the LLM span carries
  the same object as a ``portkey.metadata`` JSON string (assumed: Portkey's export of metadata is
  undocumented). Traces: attributed / only ``_user`` sent (network leak).
* helicone: an internal gateway records the Helicone-Property-* / Helicone-User-Id /
  Helicone-Session-Id headers it received (http.request.header.*) on its server span and its
  LLM span. Traces: attributed / app forgets Helicone-Property-Workflow (network leak).
* kong: Kong's OpenTelemetry plugin shape: ``kong`` request span (scope kong-internal) with
  kong.consumer, kong.route_name, kong.service_name and the AI Proxy gen_ai.* attributes (assumed
  on the request span), children kong.router / kong.access.plugin.ai-proxy / kong.balancer.
  Kong does not copy baggage onto spans; the chat route runs a post-function plugin that copies
  X-Tenant-Id / X-Workflow-Id onto the request span, the search route does not (network leak).
* diy-proxy: a home-made proxy capturing X-Tenant-Id / X-Workflow-Id headers on its server
  span and setting tenant_id / workflow_id on its LLM span. Traces: attributed / a route that
  does not forward X-Workflow-Id (network leak).
"""

from __future__ import annotations

import json
import sys
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.request import Request, urlopen

sys.path.insert(0, str(Path(__file__).resolve().parent))

import generate_dialects_kit as kit  # noqa: E402

from opentelemetry import baggage, context, propagate  # noqa: E402
from opentelemetry.baggage.propagation import W3CBaggagePropagator  # noqa: E402
from opentelemetry.processor.baggage import ALLOW_ALL_BAGGAGE_KEYS, BaggageSpanProcessor  # noqa: E402
from opentelemetry.propagators.composite import CompositePropagator  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from opentelemetry.trace import SpanKind  # noqa: E402
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator  # noqa: E402

TRACECONTEXT = TraceContextTextMapPropagator()
BOTH = CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])


def provider(service: str, exporter, seed: int, with_baggage: bool) -> TracerProvider:
    tp = TracerProvider(resource=Resource.create({"service.name": service, "deployment.environment": "sample"}), id_generator=kit.SeededIds(seed))
    if with_baggage:
        tp.add_span_processor(BaggageSpanProcessor(ALLOW_ALL_BAGGAGE_KEYS))
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    return tp


def post_json(url: str, body: dict, headers: dict) -> dict:
    req = Request(url, data=json.dumps(body).encode(), headers={"content-type": "application/json", **headers}, method="POST")
    with urlopen(req, timeout=30) as r:
        return json.loads(r.read())


class Gateway:
    """A threaded HTTP server on 127.0.0.1 whose handler is ``handle(path, headers, body)``."""

    def __init__(self, handle):
        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"{}")
                headers = {k.lower(): v for k, v in self.headers.items()}
                out = json.dumps(handle(self.path, headers, body)).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def app_request(app_tracer, name: str, url: str, body: dict, headers: dict, bag: dict, propagator=BOTH) -> None:
    """The calling app: a request span with baggage, then an HTTP client span that injects context."""
    ctx = context.get_current()
    for k, v in bag.items():
        ctx = baggage.set_baggage(k, v, context=ctx)
    token = context.attach(ctx)
    try:
        with app_tracer.start_as_current_span(name, kind=SpanKind.SERVER):
            with app_tracer.start_as_current_span("POST", kind=SpanKind.CLIENT) as client:
                client.set_attribute("http.request.method", "POST")
                client.set_attribute("url.full", url)
                carrier = dict(headers)
                propagator.inject(carrier)
                post_json(url, body, carrier)
    finally:
        context.detach(token)


def header_attrs(headers: dict, names) -> dict:
    return {f"http.request.header.{n}": (headers[n],) for n in names if n in headers}


def anthropic_cost(inp: int, cread: int, cwrite: int, out: int, model: str) -> Decimal:
    import genai_prices

    return genai_prices.calc_price(
        genai_prices.Usage(input_tokens=inp + cread + cwrite, output_tokens=out, cache_read_tokens=cread or None, cache_write_tokens=cwrite or None),
        model_ref=model, provider_id="anthropic",
    ).total_price


# ---------------------------------------------------------------- LiteLLM


def litellm_handler(proxy, fake: kit.FakeProvider):
    """The LiteLLM proxy's request handling, as its OTel integration records it."""

    def handle(path, headers, body):
        # LiteLLM extracts traceparent only; it logs request-body metadata as requester_metadata.
        ctx = TRACECONTEXT.extract(headers)
        requester = dict(body.get("metadata") or {})
        tags = list(body.get("tags") or requester.get("tags") or [])
        with proxy.start_as_current_span("Received Proxy Server Request", context=ctx, kind=SpanKind.SERVER) as span:
            # since v1.81 the request attributes go on this span (no nested litellm_request)
            answer = post_json(fake.url + "/v1/messages", {"model": body["model"], "max_tokens": 512, "messages": body["messages"]}, {})
            u = answer["usage"]
            inp, cr, cw, out = u["input_tokens"], u["cache_read_input_tokens"], u["cache_creation_input_tokens"], u["output_tokens"]
            prompt = inp + cr + cw  # LiteLLM's rewrite: prompt tokens include cache tokens
            cost = anthropic_cost(inp, cr, cw, out, body["model"])
            usage_object = {
                "completion_tokens": out, "prompt_tokens": prompt, "total_tokens": prompt + out,
                "prompt_tokens_details": {"cached_tokens": cr, "audio_tokens": None},
                "cache_creation_input_tokens": cw, "cache_read_input_tokens": cr,
            }
            span.set_attributes({
                "gen_ai.request.model": body["model"],
                "gen_ai.system": "anthropic",
                "llm.request.type": "acompletion",
                "llm.is_streaming": "False",
                "gen_ai.response.id": answer["id"],
                "gen_ai.response.model": answer["model"],
                "gen_ai.usage.input_tokens": prompt,
                "gen_ai.usage.output_tokens": out,
                "gen_ai.usage.total_tokens": prompt + out,
                "gen_ai.cost.total_cost": float(cost),
                "metadata.user_api_key_hash": "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b",
                "metadata.user_api_key_alias": "billing-app-prod",
                "metadata.user_api_key_team_id": "team-billing",
                "metadata.user_api_key_team_alias": "billing",
                "metadata.user_api_key_end_user_id": body.get("user", ""),
                "metadata.requester_metadata": str(requester),
                "metadata.spend_logs_metadata": "None",
                "metadata.usage_object": str(usage_object),
                "metadata.tags": str(tags),
                "metadata.requester_ip_address": "127.0.0.1",
            })
            with proxy.start_as_current_span("raw_gen_ai_request") as raw:
                raw.set_attribute("llm.anthropic.model", body["model"])
                raw.set_attribute("llm.anthropic.max_tokens", 512)
        return {
            "id": answer["id"], "object": "chat.completion", "created": kit.CREATED, "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Done."}, "finish_reason": "stop"}],
            "usage": {**usage_object, "prompt_tokens_details": {"cached_tokens": cr}},
        }

    return handle


def litellm(fake: kit.FakeProvider) -> None:
    exp = InMemorySpanExporter()
    app = provider("billing-app", exp, 31, True).get_tracer("billing_app.app")
    proxy = provider("litellm-proxy", exp, 32, False).get_tracer("litellm")
    handle = litellm_handler(proxy, fake)
    gw = Gateway(handle)
    url = gw.url + "/chat/completions"
    msg = lambda t: [{"role": "user", "content": t}]  # noqa: E731
    app_request(app, "POST /invoices/{id}/summary", url,
                {"model": "claude-sonnet-4-5", "messages": msg("Summarise invoice 77. [[usage:400:3000:0:150]]"),
                 "user": "u-17", "metadata": {"tenant_id": "acme", "workflow_id": "invoice_summary"}},
                {"authorization": "Bearer sk-litellm"}, {"tenant_id": "acme", "workflow_id": "invoice_summary"})
    app_request(app, "POST /tickets/{id}/triage", url,
                {"model": "claude-sonnet-4-5", "messages": msg("Triage ticket 12. [[usage:250:0:2000:80]]"),
                 "user": "u-42", "tags": ["tenant:globex", "workflow:triage"]},
                {"authorization": "Bearer sk-litellm"}, {"tenant_id": "globex", "workflow_id": "triage"})
    app_request(app, "POST /reports/{id}", url,
                {"model": "claude-sonnet-4-5", "messages": msg("Draft report 3. [[usage:600:1500:500:220]]"), "user": "u-8"},
                {"authorization": "Bearer sk-litellm", "x-tenant-id": "initech", "x-workflow-id": "reports"},
                {"tenant_id": "initech", "workflow_id": "reports"})
    gw.close()
    print(kit.write_spans("litellm", exp.get_finished_spans()))


# ---------------------------------------------------------------- Portkey


def portkey(fake: kit.FakeProvider) -> None:
    exp = InMemorySpanExporter()
    app = provider("catalog-app", exp, 41, True).get_tracer("catalog_app.app")
    gw_tracer = provider("portkey-gateway", exp, 42, False).get_tracer("portkey")

    def handle(path, headers, body):
        ctx = TRACECONTEXT.extract(headers)  # W3C trace context is supported; baggage is not logged
        meta_text = headers.get("x-portkey-metadata", "")
        with gw_tracer.start_as_current_span("POST /v1/chat/completions", context=ctx, kind=SpanKind.SERVER) as server:
            server.set_attributes(header_attrs(headers, ["x-portkey-metadata", "x-portkey-trace-id"]))
            with gw_tracer.start_as_current_span(f"chat {body['model']}", kind=SpanKind.CLIENT) as span:
                answer = post_json(fake.url + "/v1/chat/completions", body, {})
                u = answer["usage"]
                span.set_attributes({
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": body["model"],
                    "gen_ai.response.model": answer["model"],
                    "gen_ai.response.id": answer["id"],
                    "gen_ai.usage.input_tokens": u["prompt_tokens"],
                    "gen_ai.usage.cache_read.input_tokens": u["prompt_tokens_details"]["cached_tokens"],
                    "gen_ai.usage.output_tokens": u["completion_tokens"],
                    "portkey.metadata": meta_text,
                })
        return answer

    gw = Gateway(handle)
    url = gw.url + "/v1/chat/completions"
    msg = lambda t: [{"role": "user", "content": t}]  # noqa: E731
    app_request(app, "POST /products/{id}/describe", url, {"model": "gpt-4o-mini", "messages": msg("Describe SKU 1. [[usage:2200:1536:180]]")},
                {"x-portkey-metadata": json.dumps({"tenant_id": "acme", "workflow_id": "catalog_copy", "_user": "u-17"}), "x-portkey-trace-id": "req-1"},
                {"tenant_id": "acme", "workflow_id": "catalog_copy"})
    app_request(app, "POST /products/{id}/translate", url, {"model": "gpt-4o-mini", "messages": msg("Translate SKU 2. [[usage:1300:0:400]]")},
                {"x-portkey-metadata": json.dumps({"_user": "u-42"}), "x-portkey-trace-id": "req-2"},
                {"tenant_id": "globex", "workflow_id": "catalog_translate"})
    gw.close()
    print(kit.write_spans("portkey", exp.get_finished_spans()))


# ---------------------------------------------------------------- Helicone


HELICONE_HEADERS = ["helicone-property-tenant", "helicone-property-workflow", "helicone-user-id", "helicone-session-id"]


def helicone(fake: kit.FakeProvider) -> None:
    exp = InMemorySpanExporter()
    app = provider("notes-app", exp, 51, True).get_tracer("notes_app.app")
    gw_tracer = provider("llm-gateway", exp, 52, False).get_tracer("llm_gateway")

    def handle(path, headers, body):
        ctx = TRACECONTEXT.extract(headers)
        captured = header_attrs(headers, HELICONE_HEADERS)  # OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST
        with gw_tracer.start_as_current_span("POST /v1/chat/completions", context=ctx, kind=SpanKind.SERVER) as server:
            server.set_attributes(captured)
            with gw_tracer.start_as_current_span(f"chat {body['model']}", kind=SpanKind.CLIENT) as span:
                answer = post_json(fake.url + "/v1/chat/completions", body, {})
                u = answer["usage"]
                span.set_attributes({
                    **captured,
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": body["model"],
                    "gen_ai.response.model": answer["model"],
                    "gen_ai.response.id": answer["id"],
                    "gen_ai.usage.input_tokens": u["prompt_tokens"],
                    "gen_ai.usage.cache_read.input_tokens": u["prompt_tokens_details"]["cached_tokens"],
                    "gen_ai.usage.output_tokens": u["completion_tokens"],
                })
        return answer

    gw = Gateway(handle)
    url = gw.url + "/v1/chat/completions"
    msg = lambda t: [{"role": "user", "content": t}]  # noqa: E731
    app_request(app, "POST /notes/{id}/summarise", url, {"model": "gpt-4.1-mini", "messages": msg("Summarise note 5. [[usage:5000:4096:350]]")},
                {"Helicone-Property-Tenant": "acme", "Helicone-Property-Workflow": "note_summary", "Helicone-User-Id": "u-17", "Helicone-Session-Id": "s-1"},
                {"tenant_id": "acme", "workflow_id": "note_summary"})
    app_request(app, "POST /notes/{id}/tags", url, {"model": "gpt-4.1-mini", "messages": msg("Tag note 6. [[usage:700:0:40]]")},
                {"Helicone-Property-Tenant": "globex", "Helicone-User-Id": "u-42"},
                {"tenant_id": "globex", "workflow_id": "note_tags"})
    gw.close()
    print(kit.write_spans("helicone", exp.get_finished_spans()))


# ---------------------------------------------------------------- Kong


def kong(fake: kit.FakeProvider) -> None:
    exp = InMemorySpanExporter()
    app = provider("storefront", exp, 61, True).get_tracer("storefront.app")
    kong_tracer = provider("kong", exp, 62, False).get_tracer("kong-internal")
    consumers = {"Bearer key-acme": "4c0c8bd4-6d8e-4f7e-9d55-2f3c5c3a8a11"}

    def handle(path, headers, body):
        ctx = TRACECONTEXT.extract(headers)  # Kong propagates w3c trace context; baggage is not recorded
        with kong_tracer.start_as_current_span("kong", context=ctx, kind=SpanKind.SERVER) as root:
            root.set_attributes({
                "http.method": "POST", "http.url": f"http://kong{path}", "http.flavor": "1.1",
                "kong.service_name": "openai-service", "kong.route_name": "chat-route" if path.startswith("/openai/") else "search-route",
            })
            consumer = consumers.get(headers.get("authorization", ""))
            if consumer:
                root.set_attribute("kong.consumer", consumer)
            if path.startswith("/openai/"):
                # The openai route runs a post-function plugin that copies the attribution headers
                # onto the request span (kong.tracing.active_span():set_attribute(...)); the
                # search route does not have it.
                for h, key in (("x-tenant-id", "tenant_id"), ("x-workflow-id", "workflow_id")):
                    if h in headers:
                        root.set_attribute(key, headers[h])
            with kong_tracer.start_as_current_span("kong.router"):
                pass
            with kong_tracer.start_as_current_span("kong.access.plugin.ai-proxy"):
                pass
            with kong_tracer.start_as_current_span("kong.balancer", kind=SpanKind.CLIENT):
                answer = post_json(fake.url + "/v1/chat/completions", body, {})
            u = answer["usage"]
            root.set_attributes({
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": body["model"],
                "gen_ai.response.model": answer["model"],
                "gen_ai.response.id": answer["id"],
                "gen_ai.usage.input_tokens": u["prompt_tokens"],
                "gen_ai.usage.output_tokens": u["completion_tokens"],
            })
        return answer

    gw = Gateway(handle)
    msg = lambda t: [{"role": "user", "content": t}]  # noqa: E731
    app_request(app, "POST /cart/{id}/suggest", gw.url + "/openai/v1/chat/completions",
                {"model": "gpt-4o-mini", "messages": msg("Suggest add-ons. [[usage:1800:0:120]]")},
                {"authorization": "Bearer key-acme", "x-tenant-id": "acme", "x-workflow-id": "cart_suggest"},
                {"tenant_id": "acme", "workflow_id": "cart_suggest"})
    app_request(app, "POST /search", gw.url + "/search/v1/chat/completions",
                {"model": "gpt-4o-mini", "messages": msg("Rewrite the query. [[usage:600:0:30]]")},
                {"x-tenant-id": "globex", "x-workflow-id": "search_rewrite"}, {"tenant_id": "globex", "workflow_id": "search_rewrite"})
    gw.close()
    print(kit.write_spans("kong", exp.get_finished_spans()))


# ---------------------------------------------------------------- DIY proxy


def diy_proxy(fake: kit.FakeProvider) -> None:
    exp = InMemorySpanExporter()
    app = provider("crm-app", exp, 71, True).get_tracer("crm_app.app")
    px = provider("llm-proxy", exp, 72, False).get_tracer("llm_proxy")

    def handle(path, headers, body):
        ctx = TRACECONTEXT.extract(headers)
        with px.start_as_current_span("POST /v1/chat/completions", context=ctx, kind=SpanKind.SERVER) as server:
            server.set_attributes(header_attrs(headers, ["x-tenant-id", "x-workflow-id"]))
            with px.start_as_current_span(f"chat {body['model']}", kind=SpanKind.CLIENT) as span:
                for h, key in (("x-tenant-id", "tenant_id"), ("x-workflow-id", "workflow_id")):
                    if h in headers:
                        span.set_attribute(key, headers[h])
                answer = post_json(fake.url + "/v1/chat/completions", body, {})
                u = answer["usage"]
                span.set_attributes({
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": body["model"],
                    "gen_ai.response.model": answer["model"],
                    "gen_ai.response.id": answer["id"],
                    "gen_ai.usage.input_tokens": u["prompt_tokens"],
                    "gen_ai.usage.cache_read.input_tokens": u["prompt_tokens_details"]["cached_tokens"],
                    "gen_ai.usage.output_tokens": u["completion_tokens"],
                })
        return answer

    gw = Gateway(handle)
    url = gw.url + "/v1/chat/completions"
    msg = lambda t: [{"role": "user", "content": t}]  # noqa: E731
    app_request(app, "POST /leads/{id}/score", url, {"model": "gpt-4o-mini", "messages": msg("Score lead 9. [[usage:3000:2048:100]]")},
                {"X-Tenant-Id": "acme", "X-Workflow-Id": "lead_scoring"}, {"tenant_id": "acme", "workflow_id": "lead_scoring"})
    app_request(app, "POST /leads/{id}/email", url, {"model": "gpt-4o-mini", "messages": msg("Draft email 9. [[usage:900:0:250]]")},
                {"X-Tenant-Id": "globex"}, {"tenant_id": "globex", "workflow_id": "lead_email"})
    gw.close()
    print(kit.write_spans("diy-proxy", exp.get_finished_spans()))


SCENARIOS = {"litellm": litellm, "portkey": portkey, "helicone": helicone, "kong": kong, "diy-proxy": diy_proxy}


def main(names) -> None:
    kit.install_clock()
    propagate.set_global_textmap(BOTH)
    fake = kit.FakeProvider()
    for name in names or SCENARIOS:
        SCENARIOS[name](fake)
    fake.close()


if __name__ == "__main__":
    main(sys.argv[1:])
