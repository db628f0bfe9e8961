"""Poison values: impossible numbers are findings, never crashes, through every door.

1e308, NaN, 2**63 - 1, -1, 1e26 and a string where a number belongs: each call is a GENAI004
finding and unpriced (never $0, never $2.5e20); the one sound call is priced; the CLI, the
sidecar's report (also after a restart) and the page answer without a traceback.
"""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from auditor.cli import cli
from auditor.model import RunInfo
from auditor.pipeline import audit_files, judge_traces
from auditor.plan import Plan
from auditor.report import Format, RenderOptions, render
from auditor.result_json import to_json
from auditor.server.ui import ui_app
from builders import LLM, mk, to_json_bytes
from test_server_support import Sidecar

POISON = {
    1: ('{"doubleValue": 1e308}', "input tokens (1e+308) exceed 1,000,000,000, more than any call can use"),
    2: ('{"doubleValue": "NaN"}', "gen_ai.usage.input_tokens is nan"),
    3: ('{"intValue": "9223372036854775807"}', "input tokens (9.22e+18) exceed 1,000,000,000, more than any call can use"),
    4: ('{"intValue": "-1"}', "input tokens are negative (-1)"),
    5: ('{"doubleValue": 1e26}', "input tokens (1e+26) exceed 1,000,000,000, more than any call can use"),
    6: ('{"doubleValue": "Infinity"}', "gen_ai.usage.input_tokens is inf"),
}


def poison_file(path: Path) -> Path:
    """Seven traces, one LLM call each; calls 1-6 carry a poison input count, 7 is sound and
    8 sends its count as a string that is no number."""
    spans = []
    for n in range(1, 9):
        tokens = 1000 + n  # a placeholder each poison replaces in the JSON text
        attrs = {**LLM, "gen_ai.usage.input_tokens": tokens, "tenant_id": "acme", "workflow_id": "w"}
        if n == 8:
            attrs["gen_ai.usage.input_tokens"] = "12x"
        spans += [mk(n, n * 10, None, "POST", attrs={"tenant_id": "acme", "workflow_id": "w"}), mk(n, n * 10 + 1, n * 10, "chat", attrs=attrs)]
    doc = to_json_bytes(spans).decode()
    for n, (value, _) in POISON.items():
        doc = doc.replace(f'{{"intValue": "{1000 + n}"}}', value)
    path.write_text(doc)
    return path


def test_cli_reports_each_poison_as_genai004_and_leaves_the_call_unpriced(tmp_path):
    path = poison_file(tmp_path / "poison.otlp.json")
    res = CliRunner().invoke(cli, ["check", "--format", "json", str(path)])
    assert res.exit_code == 1 and "Traceback" not in res.output, res.output  # GENAI004 is an error: the gate fails
    doc = json.loads(res.stdout)
    genai004 = {f["trace_id"][-1]: f["message"] for f in doc["findings"] if f["code"] == "GENAI004"}
    assert genai004 == {str(n): f"{msg}: the call is counted as unpriced; fix the instrumentation that wrote it"
                        for n, (_, msg) in POISON.items()}
    # the sound call alone is priced: 1007 input + 100 output tokens of gpt-4o-mini
    assert doc["summary"]["cost"]["total_usd"] == "0.000211"
    assert doc["summary"]["cost"]["unpriced_calls"] == 7
    cost001 = [f["trace_id"][-1] for f in doc["findings"] if f["code"] == "COST001"]
    assert cost001 == ["8"]  # a count that is no number: unpriced for want of an input count
    result = audit_files([str(path)], Plan.detect())
    for fmt in Format:
        assert render(fmt, result, RenderOptions(verbose=True))


@pytest.mark.slow
def test_sidecar_report_and_live_page_survive_poison_and_a_restart(tmp_path):
    path = poison_file(tmp_path / "poison.otlp.json")
    data = tmp_path / "data"
    sidecar = Sidecar(data, trace_idle=0.2).start()
    try:
        assert sidecar.post("/v1/traces", path.read_bytes(), "application/json").status_code == 200
        sidecar.wait_audited()
        first = sidecar.report()
        assert sidecar.get("/live").status_code == 200
        assert sidecar.get("/metrics").status_code == 200
    finally:
        rc, err = sidecar.terminate()
    assert rc == 0 and "Traceback" not in err
    again = Sidecar(data, trace_idle=0.2).start()
    try:
        again.wait_audited()
        after = again.report()
        # run.seconds is the time the report took to build: it differs under load, nothing else may
        assert after["run"]["inputs"] == first["run"]["inputs"]
        assert {k: v for k, v in after.items() if k != "run"} == {k: v for k, v in first.items() if k != "run"}
        assert again.get("/live").status_code == 200
    finally:
        again.stop()
    assert first["summary"]["findings"]["GENAI004"] == 6 and first["summary"]["cost"]["total_usd"] == "0.000211"


def test_page_audits_poison_without_a_traceback(tmp_path):
    path = poison_file(tmp_path / "poison.otlp.json")
    r = TestClient(ui_app()).post("/", files=[("files", (path.name, path.read_bytes(), "application/json"))])
    assert r.status_code == 200
    assert "GENAI004" in r.text and "Traceback" not in r.text


def test_one_trace_that_breaks_the_report_is_left_out_as_tool002(tmp_path):
    """Stored parts that cannot be reported (a $1e308 cost, as an older build stored for 1e308 tokens)
    take out that trace only; every other trace still reports."""
    path = poison_file(tmp_path / "poison.otlp.json")
    plan = Plan.detect()
    from auditor import ingest
    from auditor.engine import audit_spans

    spans = ingest.load([str(path)], plan.projection).spans
    by_trace = {}
    for tid in sorted({s.trace_id for s in spans}):
        by_trace[tid] = audit_spans([s for s in spans if s.trace_id == tid], plan)
    bad_tid = sorted(by_trace)[6]  # the sound call's trace
    p = by_trace[bad_tid]
    by_trace[bad_tid] = replace(p, calls=tuple(replace(c, cost_usd=Decimal("1e308")) for c in p.calls))
    result, doc = judge_traces(by_trace, plan.empty_parts(), RunInfo(), to_json)
    tool = [f for f in result.findings if f.code == "TOOL002"]
    assert [(f.trace_id, f.severity.value) for f in tool] == [(bad_tid, "error")]
    assert tool[0].message.startswith("reporting this trace failed (InvalidOperation")
    assert result.counts.traces == 7 and not result.gate.passed
    assert doc == to_json(result) and doc["summary"]["cost"]["total_usd"] == "0.000000"


def test_megabyte_names_and_values_are_clipped_in_every_finding(tmp_path):
    """A 2 MB span name and tenant_id cannot make a report of megabytes per finding."""
    huge = "x" * 2_000_000
    spans = [mk(1, 1, None, "POST", attrs={"tenant_id": "acme", "workflow_id": "w"}),
             mk(1, 2, 1, huge, attrs={"tenant_id": huge, "workflow_id": "w"}),
             mk(1, 3, 2, "chat", attrs={**LLM, "tenant_id": huge, "workflow_id": "w"})]
    path = tmp_path / "huge.otlp.json"
    path.write_bytes(to_json_bytes(spans))
    result = audit_files([str(path)], Plan.detect())
    assert {f.code for f in result.findings} >= {"ATTR003", "ATTR005"}
    for f in result.findings:
        assert len(f.message) <= 2_000 + len("… (clipped)")
        assert all(not isinstance(v, str) or len(v) <= 513 for v in (f.parent_value, f.child_value))
