"""The paste / upload page over HTTP (Starlette's test client drives the real ASGI app)."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner
from report_fixtures import BAGGAGE, THREADPOOL_PB, leak_json_bytes
from starlette.testclient import TestClient

from auditor.cli import cli
from auditor.pipeline import audit_files
from auditor.plan import Plan
from auditor.resources import schemas_dir
from auditor.server.ui import bundled_schemas, ui_app

LIMIT = 300_000


@pytest.fixture(scope="module")
def client():
    return TestClient(ui_app(max_body_bytes=LIMIT))


def error_of(html: str) -> str:
    return re.search(r'id="error" role="alert">([^<]*)</div>', html).group(1)


def test_form_offers_detection_first_then_default_and_every_preset(client):
    r = client.get("/")
    assert r.status_code == 200
    assert "default-src 'none'" in r.headers["content-security-policy"]
    presets = sorted(p.stem for p in (schemas_dir() / "presets").glob("*.yaml"))
    assert presets, "schemas/presets/ ships presets"
    options = re.findall(r'<option value="([^"]+)">', r.text)
    assert options == ["detect", "default"] + [f"preset:{p}" for p in presets]
    assert options == list(bundled_schemas())
    for field in ('name="trace"', 'name="files" multiple', 'name="schema"', 'name="schema_file"', 'enctype="multipart/form-data"'):
        assert field in r.text


def test_paste_answers_with_the_report(client):
    r = client.post("/", data={"trace": BAGGAGE.read_text(), "schema": "default"})
    assert r.status_code == 200
    assert 'id="gate">Gate failed' in r.text
    assert '<div class="big">$0.020520</div>' in r.text
    assert "scoring-service / scoring_service.app : POST /score</span>" in r.text
    assert "<code>pasted text</code>" in r.text
    assert 'href="./"' in r.text


def test_several_uploads_are_audited_together(client):
    files = [
        ("files", ("baggage.otlp.json", BAGGAGE.read_bytes(), "application/json")),
        ("files", ("threadpool.pb.gz", THREADPOOL_PB.read_bytes(), "application/gzip")),
    ]
    r = client.post("/", data={"schema": "default"}, files=files)
    assert r.status_code == 200
    cli_result = audit_files([str(BAGGAGE), str(THREADPOOL_PB)], Plan.of("default"))
    assert f"{cli_result.counts.traces} traces · {cli_result.counts.spans} spans · 2 inputs" in r.text
    assert "<code>baggage.otlp.json</code>, <code>threadpool.pb.gz</code>" in r.text
    assert r.text.count('<tr data-code="TRACE004"') == 1  # one group: the 4 headless calls at one place
    assert '<td class="num">4 in 4 traces</td>' in r.text.split('<tr data-code="TRACE004"')[1]


def test_uploaded_schema_is_used(client):
    schema = b"version: 1\nname: only-tenant\nextends: [default]\nkeys:\n  workflow_id:\n    required: false\n"
    r = client.post(
        "/", data={"trace": BAGGAGE.read_text()},
        files=[("schema_file", ("mine.yaml", schema, "application/yaml"))],
    )
    assert r.status_code == 200, error_of(r.text)
    assert "schema <code>mine.yaml</code>" in r.text
    assert r.text.count('<tr data-code="ATTR001" data-key="tenant_id"') == 1  # the group of 3 at one boundary
    assert '<td class="num">3 in 3 traces</td>' in r.text.split('<tr data-code="ATTR001" data-key="tenant_id"')[1]
    assert 'data-key="workflow_id"' not in r.text


def test_unreadable_input_is_a_clear_400_that_keeps_the_text(client):
    r = client.post("/", data={"trace": '{"resourceSpans": [{"scopeSpans": 7}]}'})
    assert r.status_code == 400
    msg = error_of(r.text)
    assert msg.startswith("Could not audit: pasted text: ")
    assert "scopeSpans" in msg
    assert "{&#34;resourceSpans&#34;: [{&#34;scopeSpans&#34;: 7}]}</textarea>" in r.text


def test_bad_schema_upload_is_a_400(client):
    r = client.post("/", data={"trace": BAGGAGE.read_text()}, files=[("schema_file", ("bad.yaml", b"keys: [", "text/yaml"))])
    assert r.status_code == 400
    assert error_of(r.text).startswith("Could not audit: bad.yaml")


def test_nothing_given_is_a_400(client):
    r = client.post("/", data={"trace": "   "})
    assert r.status_code == 400
    assert error_of(r.text) == "Paste a trace into the box or choose at least one file."


def test_body_over_the_limit_is_a_413_with_or_without_content_length(client):
    big = b"x" * (LIMIT + 1)
    r = client.post("/", files=[("files", ("big.json", big, "application/json"))])
    assert r.status_code == 413
    assert error_of(r.text) == (
        f"The upload is larger than the limit of {LIMIT} bytes: send fewer or smaller files, or run &#39;auditor check&#39; on them."
    )

    def chunks():
        yield b"--b\r\nContent-Disposition: form-data; name=\"trace\"\r\n\r\n"
        for _ in range(40):
            yield b"y" * 10_000
        yield b"\r\n--b--\r\n"

    r = client.post("/", content=chunks(), headers={"content-type": "multipart/form-data; boundary=b"})
    assert "content-length" not in {k.lower() for k in r.request.headers}
    assert r.status_code == 413


def test_hostile_names_stay_text(client):
    r = client.post("/", files=[("files", ("<img src=x onerror=alert(1)>.json", leak_json_bytes(), "application/json"))])
    assert r.status_code == 200
    assert "<img src=x" not in r.text and "<script>window" not in r.text
    assert "&lt;img src=x onerror=alert(1)&gt;.json" in r.text


def test_live_report_when_mounted_with_a_result():
    result = audit_files([str(BAGGAGE)], Plan.of(None))
    c = TestClient(ui_app(result=lambda: result))
    assert 'href="live"' in c.get("/").text
    r = c.get("/live")
    assert r.status_code == 200 and 'id="gate">Gate failing' in r.text
    # a live page, not an upload answer: no "Audit another trace", no "1 input"
    assert "Audit another trace" not in r.text and "1 input" not in r.text
    assert 'id="chart-trend"' in r.text and 'id="chart-boundaries"' in r.text
    assert "script-src 'none'" in r.headers["content-security-policy"] and "<script" not in r.text
    assert TestClient(ui_app()).get("/live").status_code == 404


def test_ui_command_is_registered():
    res = CliRunner().invoke(cli, ["ui", "--help"])
    assert res.exit_code == 0
    assert "--host" in res.output and "--port" in res.output and "--max-body-bytes" in res.output
