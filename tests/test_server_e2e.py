"""``auditor serve`` end to end: real OTel SDK exporters against a real sidecar process.

The live report must equal ``auditor check`` on the same spans written to a file.
"""

from __future__ import annotations

import gzip
import json
import socket
import subprocess
import sys

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.trace.export import SpanExportResult

from auditor.ingest.otlp_json_writer import to_otlp_json
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

from test_server_support import Sidecar, check_json, shop_spans, without_run, write_pb

pytestmark = pytest.mark.slow


@pytest.fixture
def sidecar(tmp_path):
    s = Sidecar(tmp_path / "data", workers=2).start()  # two audit shards: the report must still be exact
    yield s
    s.stop()


def test_report_equals_check_over_grpc_http_protobuf_and_http_json(sidecar, tmp_path):
    spans = shop_spans(24, seed=7)
    a, b, c = spans[:20], spans[20:45], spans[45:]
    grpc_exp = GrpcExporter(endpoint=sidecar.grpc, insecure=True, timeout=10)
    http_exp = HttpExporter(endpoint=sidecar.http + "/v1/traces", timeout=10)
    assert grpc_exp.export(a) is SpanExportResult.SUCCESS
    assert http_exp.export(b) is SpanExportResult.SUCCESS
    body = json.dumps(to_otlp_json(encode_spans(c))).encode()
    r = sidecar.post("/v1/traces", gzip.compress(body), "application/json", **{"content-encoding": "gzip"})
    assert (r.status_code, r.headers["content-type"], r.json()) == (200, "application/json", {})
    grpc_exp.shutdown()
    http_exp.shutdown()

    sidecar.wait_audited()
    expected = check_json(write_pb(tmp_path / "all.pb", spans))
    got = sidecar.report()
    assert without_run(got) == without_run(expected)
    assert got["summary"]["traces"] == 24 + 6  # 6 headless calls are traces of their own
    assert got["summary"]["findings"]["ATTR001"] == 2 * 8  # 8 leaking traces, two keys each
    assert got["summary"]["findings"]["TRACE004"] == 6

    m = sidecar.metrics()
    assert m['auditor_spans_accepted_total{transport="grpc"}'] == 20
    assert m['auditor_spans_accepted_total{transport="http"}'] == len(spans) - 20
    assert m["auditor_traces_stored"] == 30
    assert m['auditor_findings{code="ATTR001"}'] == 16
    assert m['auditor_findings{code="TRACE004"}'] == 6
    assert m["auditor_buffer_spans"] == 0
    unattributed = float(got["summary"]["cost"]["unattributed_usd"]["tenant_id"])
    assert m['auditor_unattributed_cost_usd{key="tenant_id"}'] == pytest.approx(unattributed, abs=1e-6)
    assert m['auditor_export_latency_seconds_count{transport="grpc"}'] == 1

    page = sidecar.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert sidecar.get("/healthz").json()["status"] == "ok"


def test_late_span_reopens_its_trace_and_replaces_its_findings(sidecar, tmp_path):
    spans = shop_spans(6, seed=3)
    leak_trace = next(s.context.trace_id for s in spans if s.name == "plan" and s.attributes.get("tenant_id") == "tenant-1")
    late = [s for s in spans if s.context.trace_id == leak_trace and s.name == "chat gpt-4o-mini"]
    first = [s for s in spans if s not in late]
    exp = GrpcExporter(endpoint=sidecar.grpc, insecure=True, timeout=10)
    assert exp.export(first) is SpanExportResult.SUCCESS
    sidecar.wait_audited()
    before = sidecar.report()
    assert without_run(before) == without_run(check_json(write_pb(tmp_path / "first.pb", first)))

    assert exp.export(late) is SpanExportResult.SUCCESS  # the trace was audited already
    sidecar.wait_audited()
    after = sidecar.report()
    assert without_run(after) == without_run(check_json(write_pb(tmp_path / "all.pb", spans)))
    assert after["summary"]["traces"] == before["summary"]["traces"]  # re-opened, not a new trace
    assert after["summary"]["findings"]["ATTR001"] == before["summary"]["findings"].get("ATTR001", 0) + 2
    # a re-delivery of the same spans changes nothing (OTLP is at-least-once)
    assert exp.export(late) is SpanExportResult.SUCCESS
    sidecar.wait_audited()
    assert without_run(sidecar.report()) == without_run(after)
    assert sidecar.metrics()["auditor_traces_audited_total"] == after["summary"]["traces"] + 2
    exp.shutdown()


def test_sigterm_audits_everything_buffered_and_exits_0(tmp_path):
    s = Sidecar(tmp_path / "data", trace_idle=3600).start()  # nothing would go idle on its own
    try:
        spans = shop_spans(9, seed=5)
        exp = HttpExporter(endpoint=s.http + "/v1/traces", timeout=10)
        assert exp.export(spans) is SpanExportResult.SUCCESS
        assert s.get("/healthz").json()["buffered_spans"] == len(spans)
        code, err = s.terminate()
        assert code == 0, err
        assert "0 spans left unaudited" in err
        s2 = Sidecar(tmp_path / "data").start()
        try:
            assert without_run(s2.report()) == without_run(check_json(write_pb(tmp_path / "all.pb", spans)))
            assert s2.get("/healthz").json()["buffered_spans"] == 0  # nothing to replay
        finally:
            s2.stop()
    finally:
        s.stop()


def test_a_taken_port_is_a_one_line_usage_error(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = subprocess.run(
            [sys.executable, "-m", "auditor", "serve", "--data-dir", str(tmp_path), "--grpc-port", "0",
             "--http-port", str(port)],
            capture_output=True, timeout=120,
        )
    assert out.returncode == 2
    assert out.stderr.decode().splitlines()[-1] == (
        f"auditor: error: --http-port {port}: cannot listen on 127.0.0.1: Address already in use"
    )
