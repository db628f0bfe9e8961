"""The paste / upload page: audit a trace from the browser and answer with the HTML report.

``ui_app(...)`` is a Starlette app served alone by ``auditor ui`` and mounted at ``/`` by the
sidecar (which passes ``result`` so ``/live`` shows the running audit). The form works
without JavaScript; the script only adds drag and drop. Bodies are counted while they are
read, so a client that omits Content-Length still cannot push more than the limit, and gzip
uploads are inflated (streamed) within the same limit: a bomb is a 413 after at most
limit + 1 bytes. At most ``max_concurrent`` submissions are handled at once (503 beyond).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from auditor import ingest
from auditor.errors import AuditorError
from auditor.model import AuditResult
from auditor.pipeline import audit_bytes
from auditor.plan import Plan
from auditor.report import html_report, json_report, live_page
from auditor.resources import schemas_dir
from auditor.schema import load_schema_text
from auditor.trend import Trend, auto_bucket, trend as trend_of

DEFAULT_MAX_BODY = 32 * 1024 * 1024
DEFAULT_MAX_CONCURRENT = 2  # audits at once: each may hold its limit, decoded, several times over
PASTED = "pasted text"


DETECT = "detect"


def bundled_schemas() -> dict[str, str]:
    """Schema reference -> label: detection (as ``check`` without --schema), the default and
    every preset shipped in schemas/presets/."""
    out = {DETECT: "detect dialects per trace (as auditor check does)", "default": "default (tenant_id, workflow_id)"}
    presets = schemas_dir() / "presets"
    if presets.is_dir():
        for p in sorted(presets.glob("*.yaml")):
            out[f"preset:{p.stem}"] = f"preset: {p.stem}"
    return out


class TooLarge(Exception):
    pass


class Disconnected(Exception):
    pass


def _inflate_all(sub: Submission, limit: int) -> Submission:
    """Every gzip upload inflated (streamed); the whole submission stays within ``limit`` bytes
    after decompression, like the sidecar's exports. ``ingest.TooLarge`` past it."""
    budget = limit
    sources = []
    for name, data in sub.sources:
        plain = ingest.inflate(data, name, budget)
        budget -= len(plain)
        sources.append((name, plain))
    return replace(sub, sources=tuple(sources))


@dataclass(frozen=True, slots=True)
class Submission:
    sources: tuple[tuple[str, bytes], ...]  # (display name, bytes)
    schema_ref: str
    schema_upload: tuple[str, bytes] | None
    want_json: bool = False  # the JSON report (as 'auditor check --format json') instead of the page


def _hash_csp(script: str, form_action: str) -> str:
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    return (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        f"script-src 'sha256-{digest}'; form-action {form_action}; base-uri 'none'; frame-ancestors 'none'"
    )


async def _read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge()
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise TooLarge()
            chunks.append(chunk)
    except ClientDisconnect:  # gone (or closed by the body timeout)
        raise Disconnected() from None
    return b"".join(chunks)


async def _parse(request: Request, limit: int, choices: Mapping[str, str]) -> Submission:
    body = await _read_limited(request, limit)
    sent = False

    async def replay():
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    form = await Request(request.scope, replay).form(max_files=200, max_fields=20, max_part_size=limit)
    sources: list[tuple[str, bytes]] = []
    text = form.get("trace")
    if isinstance(text, str) and text.strip():
        sources.append((PASTED, text.encode("utf-8")))
    for item in form.getlist("files"):
        if isinstance(item, UploadFile) and item.filename:
            sources.append((item.filename, await item.read()))
    ref = form.get("schema")
    ref = ref if isinstance(ref, str) and ref in choices else next(iter(choices))
    upload = form.get("schema_file")
    schema_upload = None
    if isinstance(upload, UploadFile) and upload.filename:
        schema_upload = (upload.filename, await upload.read())
    want_json = form.get("format") == "json"
    await form.close()
    return Submission(tuple(sources), ref, schema_upload, want_json)


def audit_submission(sub: Submission) -> AuditResult:
    """The pipeline on what was pasted or uploaded; AuditorError for anything unreadable."""
    if sub.schema_upload is not None:
        name, data = sub.schema_upload
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise AuditorError(f"{name}: schema is not UTF-8 text (byte {e.start})") from None
        plan = Plan.fixed(load_schema_text(text, name))
    else:
        plan = Plan.of(None if sub.schema_ref == DETECT else sub.schema_ref)
    return audit_bytes(sub.sources, plan)


def ui_app(
    schema_choices: Mapping[str, str] | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY,
    result: Callable[[], AuditResult] | None = None,
    max_concurrent: int = DEFAULT_MAX_CONCURRENT,
    trend: Callable[[str], Trend] | None = None,
) -> Starlette:
    choices = dict(schema_choices) if schema_choices else bundled_schemas()
    env = html_report._env()
    script = env.get_template("ui.js").render()
    csp = _hash_csp(script, "'self'")

    def page(error: str = "", status: int = 200, text: str = "", headers: dict | None = None) -> HTMLResponse:
        html = env.get_template("ui.html.j2").render(
            choices=choices, error=error, text=text, script=script, live=result is not None,
            max_mb=f"{max_body_bytes / 1048576:g}",
        )
        return HTMLResponse(html, status, headers={**_headers(csp), **(headers or {})})

    busy = 0

    async def home(request: Request) -> Response:
        nonlocal busy
        if request.method == "GET":
            return page()
        if busy >= max_concurrent:
            return page(f"The server is auditing {busy} other submission(s); try again in a moment.", 503,
                        headers={"Retry-After": "2"})
        busy += 1
        try:
            return await submit(request)
        finally:
            busy -= 1

    def too_large(inflated: bool = False) -> HTMLResponse:
        after = " after gzip decompression" if inflated else ""
        return page(f"The upload is larger than the limit of {max_body_bytes} bytes{after}: "
                    "send fewer or smaller files, or run 'auditor check' on them.", 413)

    async def submit(request: Request) -> Response:
        try:
            sub = await _parse(request, max_body_bytes, choices)
        except TooLarge:
            return too_large()
        except Disconnected:
            return Response(status_code=400)  # nobody left to read it
        except Exception as e:  # malformed multipart: a client error, never a crash
            return page(f"Could not read the form: {type(e).__name__}: {e}", 400)
        if not sub.sources:
            return page("Paste a trace into the box or choose at least one file.", 400)
        try:
            sub = await run_in_threadpool(_inflate_all, sub, max_body_bytes)
        except ingest.TooLarge:
            return too_large(inflated=True)
        except AuditorError as e:
            return page(f"Could not audit: {e}", 400)
        try:
            res = await run_in_threadpool(audit_submission, sub)
        except ingest.TooLarge:
            return too_large(inflated=True)
        except AuditorError as e:
            pasted = next((d.decode("utf-8", "replace") for n, d in sub.sources if n == PASTED), "")
            return page(f"Could not audit: {e}", 400, text=pasted[:200_000])
        except RecursionError:
            return page("Could not audit: input nested too deeply to process.", 400)
        if sub.want_json:
            return Response(
                json_report.render(res), media_type="application/json",
                headers={**_headers(csp), "Content-Disposition": 'attachment; filename="audit.json"'},
            )
        return _report(res, back="./")

    def live_html(query: Mapping[str, str]) -> tuple[str, str]:
        res = result()
        bucket = live_page.bucket_of(query, auto_bucket(res))
        tr = trend(bucket) if trend is not None else trend_of(res, bucket)
        return live_page.page(res, tr, query)

    async def live(request: Request) -> Response:
        html, page_csp = await run_in_threadpool(live_html, dict(request.query_params))
        return HTMLResponse(html, headers=_headers(page_csp))

    routes = [Route("/", home, methods=["GET", "POST"])]
    if result is not None:
        routes.append(Route("/live", live))
    return Starlette(routes=routes)


def _headers(csp: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",  # the form's POST then carries a real Origin (no-referrer sends "null")
        "Cache-Control": "no-store",
    }


def _report(result: AuditResult, back: str) -> HTMLResponse:
    html, csp = html_report.page(result, back_link=back)
    return HTMLResponse(html, headers=_headers(csp))
