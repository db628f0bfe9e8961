"""The live page and its trend: unattributed share per key per minute / hour of trace time.

The trend is derived from the live result, so a late span that re-opens a trace moves its
calls instead of adding them; the sidecar's /api/trend equals the trend of the same spans
audited from a file.
"""

from __future__ import annotations

import json
import re

from builders import LLM, T0, mk, to_json_bytes
from starlette.testclient import TestClient
from test_server_support import Sidecar

from auditor.pipeline import audit_bytes
from auditor.plan import Plan
from auditor.report import live_page
from auditor.result_json import usd
from auditor.server.ui import ui_app
from auditor.trend import trend

MIN = 60 * 10**9
BASE = T0 // 10**9  # 2026-01-01T00:00:00Z, minute aligned


def chat(trace: int, minute: int, lost: bool, second: int = 0, extra_call_at: int | None = None):
    """POST /chat (mints the keys) -> an LLM call that keeps them, or loses them."""
    keys = {"tenant_id": f"t{trace % 3}", "workflow_id": "wf"}
    start = minute * MIN + second * 10**9
    root = trace * 10 + 1
    return [
        mk(trace, root, None, "POST /chat", "web", "web.app", keys, start, 30 * 10**9),
        mk(trace, root + 1, root, "chat gpt-4o-mini", "web", "openai", {**LLM, **({} if lost else keys)}, start + 10**6, 10**8),
    ]


def late_call(trace: int, minute: int):
    """Another call in ``trace``, arriving after it was audited: below the root, without the keys."""
    return [mk(trace, trace * 10 + 5, trace * 10 + 1, "chat gpt-4o-mini", "web", "openai", dict(LLM), minute * MIN + 5 * 10**9, 10**8)]


def first_wave():
    # minute 0: 1 of 2 lost; minute 1: clean; minute 3: 2 of 3 lost; minute 4: 1 of 1 lost
    plan = [(1, 0, True), (2, 0, False), (3, 1, False), (4, 3, True), (5, 3, True), (6, 3, False), (7, 4, True)]
    return [s for t, m, lost in plan for s in chat(t, m, lost, second=t)]


def shares(doc: dict, key: str) -> dict[int, tuple[float, int, int]]:
    return {
        (b["start"] - BASE) // 60: (b["keys"][key]["share_pct"], b["keys"][key]["llm_calls_missing"], b["keys"][key]["llm_calls"])
        for b in doc["buckets"]
    }


def test_trend_buckets_per_minute_and_hour_from_a_file():
    spans = first_wave() + late_call(3, 4)
    result = audit_bytes([("t.json", to_json_bytes(spans))], Plan.of("default"))
    doc = trend(result, "minute").to_json(usd)
    assert doc["bucket_seconds"] == 60 and doc["undated_calls"] == 0
    want = {0: (50.0, 1, 2), 1: (0.0, 0, 1), 3: (66.6667, 2, 3), 4: (100.0, 2, 2)}
    assert shares(doc, "tenant_id") == want
    assert shares(doc, "workflow_id") == want
    # the buckets' spend adds up to the headline, each call once
    total = sum(float(b["keys"]["tenant_id"]["cost_usd"]) for b in doc["buckets"])
    assert abs(total - float(result.total_cost_usd)) < 1e-9
    hour = trend(result, "hour").to_json(usd)
    assert [(b["start"] - BASE) for b in hour["buckets"]] == [0]
    assert hour["buckets"][0]["keys"]["tenant_id"]["llm_calls_missing"] == 5
    assert hour["buckets"][0]["keys"]["tenant_id"]["llm_calls"] == 8


def test_sidecar_trend_over_several_minutes_with_a_late_span(tmp_path):
    s = Sidecar(tmp_path / "d", "--schema", "default").start()
    try:
        wave = first_wave()
        for i in range(0, len(wave), 4):  # several exports, as an SDK's batches
            assert s.post("/v1/traces", to_json_bytes(wave[i:i + 4]), "application/json").status_code == 200
        s.wait_audited()
        before = s.get("/api/trend?bucket=minute").json()
        assert shares(before, "tenant_id") == {0: (50.0, 1, 2), 1: (0.0, 0, 1), 3: (66.6667, 2, 3), 4: (100.0, 1, 1)}

        # a late span re-opens trace 3: its new call lands in minute 4, minute 1 keeps one call
        assert s.post("/v1/traces", to_json_bytes(late_call(3, 4)), "application/json").status_code == 200
        s.wait_audited()
        after = s.get("/api/trend?bucket=minute").json()
        assert shares(after, "tenant_id") == {0: (50.0, 1, 2), 1: (0.0, 0, 1), 3: (66.6667, 2, 3), 4: (100.0, 2, 2)}
        whole = audit_bytes([("t.json", to_json_bytes(wave + late_call(3, 4)))], Plan.of("default"))
        assert after == json.loads(json.dumps(trend(whole, "minute").to_json(usd)))  # one answer
        assert s.get("/api/trend?bucket=week").status_code == 400

        page = s.get("/live").text
        assert "tenant_id at 00:03 UTC: 66.7% unattributed" in page and "tenant_id at 00:04 UTC: 100.0% unattributed" in page
        assert len(re.findall(r'<circle role="listitem"', page)) == 8  # 4 buckets x 2 keys
        assert "Audit another trace" not in page and " input" not in page
        assert "Gate failing" in page
    finally:
        s.stop()


def test_findings_are_paged_and_filtered():
    spans = [sp for t in range(1, 131) for sp in chat(t, t % 7, lost=True)]
    result = audit_bytes([("t.json", to_json_bytes(spans))], Plan.of("default"))
    assert result.finding_counts == {"ATTR001": 260}
    c = TestClient(ui_app(result=lambda: result))
    first = c.get("/live").text
    assert first.count("<tr data-code=") == live_page.PAGE_SIZE == 100
    assert "Page 1 of 3 · findings 1–100 of 260" in first and 'rel="next"' in first and 'rel="prev"' not in first
    last = c.get("/live?page=3").text
    assert last.count("<tr data-code=") == 60 and "Page 3 of 3" in last and 'rel="prev"' in last
    assert c.get("/live?page=99").text.count("<tr data-code=") == 60  # clamped to the last page
    only = c.get("/live?key=workflow_id&page=2").text
    assert "Page 2 of 2 · findings 101–130 of 130" in only
    assert set(re.findall(r'<tr data-code="ATTR001" data-key="([a-z_]+)"', only)) == {"workflow_id"}
    assert c.get("/live?key=<script>").status_code == 200  # unknown filters are ignored
