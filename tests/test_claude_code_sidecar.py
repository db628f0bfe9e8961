"""Claude Code telemetry through the sidecar: the real OTel SDK log exporters (gRPC, HTTP
protobuf) and an http/json POST to /v1/logs, plus the beta spans to /v1/traces, give the same
report as ``auditor check`` on the same records written to files."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, LogRecordExportResult, SimpleLogRecordProcessor
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from auditor.cli import cli
from test_claude_code import AGENT_FINDINGS, TOTAL, gen
from test_server_support import Sidecar, without_run

pytestmark = pytest.mark.slow


def check_json(*paths) -> dict:
    out = CliRunner().invoke(cli, ["check", "-s", "preset:claude-code", "--format", "json", *map(str, paths)])
    assert out.exit_code == 1, out.output  # the sample's AGENT/ATTR errors fail the gate
    return json.loads(out.stdout)


@pytest.fixture
def sidecar(tmp_path):
    s = Sidecar(tmp_path / "data", "-s", "preset:claude-code", workers=2).start()
    yield s
    s.stop()


def test_logs_over_grpc_http_and_json_report_equals_check(sidecar, tmp_path):
    logs, spans = InMemoryLogRecordExporter(), InMemorySpanExporter()
    gen.emit([SimpleLogRecordProcessor(logs)], [SimpleSpanProcessor(spans)])
    records, beta = logs.get_finished_logs(), spans.get_finished_spans()
    assert (len(records), len(beta)) == (36, 12)
    a, b, c = records[:12], records[12:24], records[24:]

    grpc_exp = GrpcLogExporter(endpoint=sidecar.grpc, insecure=True, timeout=10)
    http_exp = HttpLogExporter(endpoint=sidecar.http + "/v1/logs", timeout=10)
    assert grpc_exp.export(a) is LogRecordExportResult.SUCCESS
    assert http_exp.export(b) is LogRecordExportResult.SUCCESS
    r = sidecar.post("/v1/logs", json.dumps(gen.logs_json(encode_logs(c))).encode(), "application/json")
    assert (r.status_code, r.json()) == (200, {})
    span_exp = HttpSpanExporter(endpoint=sidecar.http + "/v1/traces", timeout=10)
    assert span_exp.export(beta) is SpanExportResult.SUCCESS
    for e in (grpc_exp, http_exp, span_exp):
        e.shutdown()

    logs_pb = tmp_path / "logs.pb"
    logs_pb.write_bytes(encode_logs(records).SerializeToString())
    traces_pb = tmp_path / "traces.pb"
    traces_pb.write_bytes(encode_spans(beta).SerializeToString())

    sidecar.wait_audited()
    got, expected = sidecar.report(), check_json(logs_pb, traces_pb)
    assert without_run(got) == without_run(expected)
    cost = got["summary"]["cost"]
    assert cost["total_usd"] == f"{TOTAL:.6f}"
    assert cost["unattributed_usd"]["team"] == "0.139050"
    assert cost["concentration"]["top_pct"] == 86.3
    assert (got["summary"]["llm_calls"], got["summary"]["llm_call_records"]) == (17, 21)  # 4 logged and traced
    agent = sorted(
        ((f["code"], f["key"], f["values"]["child"]) for f in got["findings"] if f["code"].startswith("AGENT")),
        key=lambda t: (t[0], t[1] or "", str(t[2])),
    )
    assert agent == AGENT_FINDINGS

    m = sidecar.metrics()
    assert m['auditor_spans_accepted_total{transport="grpc"}'] == 12
    assert m['auditor_spans_accepted_total{transport="http"}'] == 24 + 12


def test_a_logs_body_on_the_traces_path_and_garbage_are_refused(sidecar):
    r = sidecar.post("/v1/logs", b'{"resourceSpans": []}', "application/json")
    assert r.status_code == 400
    assert "expected an OTLP JSON ExportLogsServiceRequest (an object with resourceLogs)" in r.json()["message"]
    r = sidecar.post("/v1/logs", b"\x0a\xff\xff", "application/x-protobuf")
    assert r.status_code == 400


def test_one_bad_value_in_a_logs_request_costs_its_record_only(sidecar):
    """A JSON logs request with one record whose time is not a number: partial success naming it,
    and the other records are audited."""
    logs = InMemoryLogRecordExporter()
    gen.emit([SimpleLogRecordProcessor(logs)], [])
    records = logs.get_finished_logs()[:3]
    doc = gen.logs_json(encode_logs(records))
    doc["resourceLogs"][0]["scopeLogs"][0]["logRecords"][1]["timeUnixNano"] = "soon"
    r = sidecar.post("/v1/logs", json.dumps(doc).encode(), "application/json")
    assert r.status_code == 200
    assert r.json() == {"partialSuccess": {
        "rejectedLogRecords": "1",
        "errorMessage": "1 log record(s) rejected: body: $.resourceLogs[0].scopeLogs[0].logRecords[1].timeUnixNano: "
                        "expected an integer (number or decimal string), got 'soon'"}}
    sidecar.wait_audited()
    assert sidecar.report()["summary"]["spans"] == 2
