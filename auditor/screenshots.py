"""Screenshots of the HTML report and of the sidecar's live page, for reports/screenshots/.

    python -m auditor.regenerate_reports --screenshots

Kept apart from the rendered reports: pixels vary with the fonts installed, so these are
regenerated on demand and are not part of the staleness check. Needs Debian's chromium and
chromium-driver and selenium (the dev extra). The report is every core and dialect sample
audited together; the live page is a real ``auditor serve`` fed thirty minutes of trace time
(2026-01-01 03:00-03:30 UTC) in which a service hop starts dropping baggage at 03:18.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
DRIVER = "/usr/bin/chromedriver"
WINDOW = (1280, 1800)
T3AM = 1_767_236_400 * 10**9  # 2026-01-01T03:00:00Z


def _attr(k: str, v) -> dict:
    if isinstance(v, int):
        return {"key": k, "value": {"intValue": str(v)}}
    return {"key": k, "value": {"stringValue": str(v)}}


def _span(trace: int, span: int, parent: int, name: str, start: int, dur: int, attrs: dict, kind: int = 1) -> dict:
    return {
        "traceId": f"{trace:032x}", "spanId": f"{span:016x}", "parentSpanId": f"{parent:016x}" if parent else "",
        "name": name, "kind": kind, "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + dur),
        "attributes": [_attr(k, v) for k, v in attrs.items()],
    }


def live_traces() -> list[bytes]:
    """One OTLP JSON export per minute of trace time: web -> planner (network) -> LLM call, and
    an in-process summariser; from 03:18 the planner no longer extracts baggage."""
    exports = []
    n = 0
    for minute in range(30):
        by_service: dict[tuple[str, str], list[dict]] = {}
        for j in range(3):
            n += 1
            t0 = T3AM + minute * 60 * 10**9 + j * 15 * 10**9
            tenant = ("acme", "globex", "initech", "umbrella")[n % 4]
            keys = {"tenant_id": tenant, "workflow_id": ("support", "search")[n % 2]}
            base = n * 100
            llm = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
                   "gen_ai.usage.input_tokens": 900 + 37 * (n % 11), "gen_ai.usage.output_tokens": 120 + 9 * (n % 7)}
            lost = minute >= 18 and j != 0
            by_service.setdefault(("web", "web.app"), []).append(
                _span(n, base + 1, 0, "POST /chat", t0, 4 * 10**9, keys, kind=2))
            planner_keys = {} if lost else keys
            by_service.setdefault(("planner", "planner.app"), []).append(
                _span(n, base + 2, base + 1, "POST /plan", t0 + 10**8, 3 * 10**9, planner_keys, kind=2))
            by_service.setdefault(("planner", "opentelemetry.instrumentation.openai"), []).append(
                _span(n, base + 3, base + 2, "chat gpt-4o", t0 + 2 * 10**8, 2 * 10**9, {**llm, **planner_keys}, kind=3))
            if n % 5 == 0:  # a summary step in a thread pool that does not copy the context
                by_service.setdefault(("web", "opentelemetry.instrumentation.openai"), []).append(
                    _span(n, base + 4, base + 1, "chat gpt-4o-mini", t0 + 3 * 10**9, 5 * 10**8,
                          {**llm, "gen_ai.request.model": "gpt-4o-mini"}, kind=3))
        doc = {"resourceSpans": []}
        for (service, scope), spans in by_service.items():
            doc["resourceSpans"].append({
                "resource": {"attributes": [_attr("service.name", service)]},
                "scopeSpans": [{"scope": {"name": scope}, "spans": spans}],
            })
        exports.append(json.dumps(doc).encode())
    return exports


def _driver(profile: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for f in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", "--hide-scrollbars", "--force-device-scale-factor=1",
              f"--window-size={WINDOW[0]},{WINDOW[1]}", f"--user-data-dir={profile}"):
        opts.add_argument(f)
    return webdriver.Chrome(service=Service(DRIVER), options=opts)


def _get(url: str) -> bytes:
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url, timeout=30) as r:
        return r.read()


def _post(url: str, body: bytes) -> None:
    req = urllib.request.Request(url, body, {"Content-Type": "application/json"}, method="POST")
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(req, timeout=30) as r:
        r.read()


def serve_live(data_dir: Path, exports: list[bytes]):
    """A real sidecar fed ``exports``, audited; returns (process, base url)."""
    listen = data_dir / "listen.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "auditor", "serve", "--data-dir", str(data_dir), "--grpc-port", "0", "--http-port", "0",
         "--trace-idle", "0.3", "--workers", "1", "--schema", "default"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while not (listen.exists() and json.loads(listen.read_text() or "{}").get("pid") == proc.pid):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"auditor serve did not start: {proc.stderr.read().decode()[-2000:]}")
        time.sleep(0.05)
    base = f"http://127.0.0.1:{json.loads(listen.read_text())['http']}"
    for body in exports:
        _post(base + "/v1/traces", body)
    while True:
        h = json.loads(_get(base + "/healthz"))
        if h["buffered_spans"] == 0 and h["done_seq"] > h["spooled_seq"]:
            return proc, base
        if time.monotonic() > deadline + 60:
            proc.kill()
            raise RuntimeError(f"not audited: {h}")
        time.sleep(0.1)


def take(root: Path) -> list[Path]:
    """Write reports/screenshots/report.png and live.png; returns their paths."""
    from auditor.pipeline import audit_files
    from auditor.plan import Plan
    from auditor.report import html_report

    out = root / "reports" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    files = [str(root / "sample_traces" / "core" / "baggage_dropped.otlp.json"),
             *sorted(str(p) for p in (root / "sample_traces" / "dialects").glob("*.otlp.json"))]
    with tempfile.TemporaryDirectory(prefix="auditor-shots-") as tmp:
        tmp = Path(tmp)
        page = tmp / "report.html"
        page.write_text(html_report.render(audit_files(files, Plan.detect())), encoding="utf-8")
        d = _driver(tmp / "profile")
        proc = None
        try:
            d.get(page.as_uri())
            d.save_screenshot(str(out / "report.png"))
            proc, base = serve_live(tmp / "data", live_traces())
            d.get(base + "/live")
            d.save_screenshot(str(out / "live.png"))
        finally:
            d.quit()
            if proc is not None:
                proc.send_signal(signal.SIGTERM)
                proc.communicate(timeout=60)
    return [out / "report.png", out / "live.png"]
