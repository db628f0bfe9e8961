"""OTLP/HTTP receiver and the read side, as one Starlette app (served by uvicorn).

POST /v1/<signal> (protobuf or JSON, gzip or identity) for every signal in
``auditor.server.signals.SIGNALS``; GET /api/report, /metrics, /healthz, and / (the web UI
from ``auditor.server.ui`` when present, else a small page). With --auth-token every route
but /healthz needs ``Authorization: Bearer <token>`` (or, from a browser, the session cookie
that /login sets); Host allow-list and cross-site refusal: ``auditor.server.web_guard``.
"""

from __future__ import annotations

import html
import importlib.util
import json
import time
import zlib
from typing import Callable

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route

from auditor.server import answers
from auditor.server.answers import Failure
from auditor.server.intake import Intake
from auditor.server.metrics import Metrics
from auditor.server.reporter import Reporter
from auditor.server.signals import SIGNALS, Checked, Signal
from auditor.server.web_guard import WebGuard, allowed_hosts
from auditor.result_json import usd
from auditor.trend import BUCKETS


def _media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


async def read_body(request: Request, limit: int) -> bytes | Failure:
    """The raw body, refused as soon as it passes ``limit`` (never buffered beyond it)."""
    cl = request.headers.get("content-length")
    if cl is not None and cl.isdigit() and int(cl) > limit:
        return answers.too_large(limit)
    chunks = []
    n = 0
    try:
        async for chunk in request.stream():
            n += len(chunk)
            if n > limit:
                return answers.too_large(limit)
            chunks.append(chunk)
    except ClientDisconnect:  # gone (or closed by the body timeout): nobody to answer, nothing to log
        return answers.bad_request("client disconnected before sending the whole body")
    return b"".join(chunks)


def gunzip(data: bytes, limit: int) -> bytes | Failure:
    """Decompress at most ``limit`` bytes: a gzip bomb costs limit + 1 bytes, then a 413."""
    out = []
    total = 0
    while data:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            chunk = d.decompress(data, limit + 1 - total)
        except zlib.error as e:
            return answers.bad_request(f"body: corrupt gzip stream: {e}")
        total += len(chunk)
        if total > limit:
            return answers.too_large(limit, decompressed=True)
        out.append(chunk)
        if not d.eof:
            return answers.bad_request("body: truncated gzip stream")
        data = d.unused_data  # concatenated gzip members
    return b"".join(out)


def _failure_response(f: Failure, ctype: str) -> Response:
    headers = {}
    if f.retry_after is not None:
        headers["Retry-After"] = str(f.retry_after)
    if f.http_status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="auditor"'
    if ctype != answers.JSON:
        ctype = answers.PROTOBUF
    return Response(answers.encode(f.status(), ctype), f.http_status, headers=headers, media_type=ctype)


def export_route(signal: Signal, intake: Intake, metrics: Metrics, limit: int) -> Route:
    async def export(request: Request) -> Response:
        t0 = time.perf_counter()
        ctype = _media_type(request.headers.get("content-type"))
        reply_type = ctype if ctype in (answers.JSON, answers.PROTOBUF) else answers.PROTOBUF
        outcome: Checked | Failure
        if not intake.authorized(request.headers.get("authorization")):
            outcome = answers.unauthenticated()
        elif reply_type != ctype:
            outcome = answers.unsupported_type(ctype)
        else:
            enc = _media_type(request.headers.get("content-encoding")) or "identity"
            if enc not in ("gzip", "identity"):
                outcome = answers.unsupported_encoding(enc)
            else:
                body = await read_body(request, limit)
                if not isinstance(body, Failure) and enc == "gzip":
                    body = gunzip(body, limit)
                outcome = body if isinstance(body, Failure) else await intake.export(signal, body, ctype)
        if isinstance(outcome, Failure):
            metrics.requests.labels("http", str(outcome.http_status)).inc()
            return _failure_response(outcome, reply_type)
        metrics.accepted.labels("http").inc(outcome.accepted)
        if outcome.rejected:
            metrics.rejected.labels("http").inc(outcome.rejected)
        metrics.requests.labels("http", "200").inc()
        metrics.latency.labels("http").observe(time.perf_counter() - t0)
        return Response(answers.encode(answers.response_message(signal, outcome), reply_type), 200, media_type=reply_type)

    return Route(signal.http_path, export, methods=["POST"])


def _home(reporter: Reporter) -> Route:
    async def home(request: Request) -> Response:
        r = await run_in_threadpool(reporter.result)
        rows = "".join(
            f"<tr><td>{html.escape(code)}</td><td>{n}</td></tr>" for code, n in r.finding_counts.items()
        )
        keys = "".join(
            f"<tr><td>{html.escape(k.key)}</td><td>{k.llm_calls_missing} of {k.llm_calls}</td><td>${k.unattributed_usd:.6f}</td></tr>"
            for k in r.keys
        )
        page = (
            "<!doctype html><meta charset=utf-8><title>auditor sidecar</title>"
            "<h1>Trace attribution auditor</h1>"
            f"<p>{r.counts.traces} traces, {r.counts.spans} spans audited; total LLM cost ${r.total_cost_usd:.6f}.</p>"
            f"<h2>Unattributed</h2><table><tr><th>key</th><th>calls missing</th><th>cost</th></tr>{keys}</table>"
            f"<h2>Findings</h2><table><tr><th>code</th><th>count</th></tr>{rows}</table>"
            '<p><a href="/api/report">JSON report</a> · <a href="/metrics">metrics</a></p>'
        )
        return HTMLResponse(page)

    return Route("/", home)


def ui_available() -> bool:
    return importlib.util.find_spec("auditor.server.ui") is not None


def build_app(intake: Intake, metrics: Metrics, reporter: Reporter, limit: int, status: Callable[[], dict],
              token: str | None = None, hosts: frozenset[str] | None = None) -> WebGuard:
    """The app behind ``WebGuard``: export routes answer 401 themselves, as a google.rpc.Status
    in the request's encoding; the guard handles the read side, the page and /login."""
    async def report(request: Request) -> Response:
        text = await run_in_threadpool(reporter.report_json)
        return Response(text, media_type="application/json")

    async def trend_route(request: Request) -> Response:
        bucket = request.query_params.get("bucket", "minute")
        if bucket not in BUCKETS:
            return Response(json.dumps({"error": f"bucket must be one of {', '.join(BUCKETS)}"}), 400,
                            media_type="application/json")
        tr = await run_in_threadpool(reporter.trend, bucket)
        return Response(json.dumps(tr.to_json(usd)), media_type="application/json")

    async def metrics_route(request: Request) -> Response:
        return Response(await run_in_threadpool(metrics.render), media_type=CONTENT_TYPE_LATEST)

    async def healthz(request: Request) -> Response:
        s = status()
        return Response(json.dumps(s), 200 if s["status"] == "ok" else 503, media_type="application/json")

    routes = [export_route(sig, intake, metrics, limit) for sig in SIGNALS]
    routes += [
        Route("/api/report", report),
        Route("/api/trend", trend_route),
        Route("/metrics", metrics_route),
        Route("/healthz", healthz),
    ]
    if ui_available():
        from auditor.server import ui

        routes.append(Mount("/", app=ui.ui_app(result=reporter.result, trend=reporter.trend)))
    else:
        routes.append(_home(reporter))
    return WebGuard(Starlette(routes=routes), token, hosts if hosts is not None else allowed_hosts("127.0.0.1"),
                    exports=[s.http_path for s in SIGNALS])
