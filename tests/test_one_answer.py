"""One answer through every door: the same traces give the same JSON however they enter.

For every sample: ``auditor check`` == its three shards merged == ``check --jobs 3`` == the sidecar's /api/report
after the real OTel SDK exporter sent the spans == the upload page (default settings, JSON
download). Equal on everything but ``run`` (inputs, timing): findings, boundaries, calls,
cost, shares, dialects, policy and gate.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, TraceFlags
from starlette.testclient import TestClient

from auditor import ingest
from auditor.cli import cli
from auditor.projection import EVERYTHING
from auditor.server.ui import ui_app
from test_server_support import Sidecar, without_run

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = sorted((ROOT / "sample_traces").glob("*/*.otlp.json"))

pytestmark = pytest.mark.slow


def _cli_json(*args: str) -> dict:
    res = CliRunner().invoke(cli, [*args, "--format", "json"])
    assert res.exit_code in (0, 1), res.output
    return json.loads(res.stdout)


def _is_logs(path: Path) -> bool:
    return "resourceLogs" in json.loads(path.read_text())


def _attr(v):
    """OTel SDK attribute values: primitives and homogeneous sequences."""
    return list(v) if isinstance(v, tuple) else v


def sdk_spans(path: Path) -> list[ReadableSpan]:
    """The file's spans as the SDK holds them, so its exporter encodes them itself."""
    out = []
    for s in ingest.load([str(path)], EVERYTHING).spans:
        tid = int(s.trace_id, 16)
        parent = SpanContext(tid, int(s.parent_span_id, 16), s.remote_parent, TraceFlags(1)) if s.parent_span_id else None
        out.append(ReadableSpan(
            name=s.name,
            context=SpanContext(tid, int(s.span_id, 16), False, TraceFlags(1)),
            parent=parent,
            resource=Resource({k: _attr(v) for k, v in s.resource.items()}),
            attributes={k: _attr(v) for k, v in s.attributes.items()},
            kind=SpanKind(s.kind - 1) if s.kind else SpanKind.INTERNAL,
            start_time=s.start_ns,
            end_time=s.end_ns,
            instrumentation_scope=InstrumentationScope(s.scope),
            links=[Link(SpanContext(int(lt, 16), int(ls, 16), True, TraceFlags(1))) for lt, ls in s.links],
        ))
    return out


def via_shards(path: Path, tmp: Path) -> dict:
    parts = []
    for i in range(3):
        out = tmp / f"shard{i}.json"
        res = CliRunner().invoke(cli, ["check", "--shard", f"{i}/3", "--format", "json", "-o", str(out), str(path)])
        assert res.exit_code in (0, 1), res.output
        parts.append(str(out))
    return _cli_json("merge", *parts)


def via_sidecar(path: Path, tmp: Path) -> dict:
    sidecar = Sidecar(tmp / "data", trace_idle=0.2).start()
    try:
        if _is_logs(path):  # a Collector's otlphttp exporter posts the same OTLP/JSON logs body
            r = sidecar.post("/v1/logs", path.read_bytes(), "application/json")
            assert r.status_code == 200, r.text
        else:
            exporter = OTLPSpanExporter(endpoint=sidecar.http + "/v1/traces", timeout=10)
            assert exporter.export(sdk_spans(path)) is SpanExportResult.SUCCESS
            exporter.shutdown()
        sidecar.wait_audited()
        return sidecar.report()
    finally:
        sidecar.stop()


def via_page(path: Path) -> dict:
    client = TestClient(ui_app())
    form = client.get("/")
    assert form.status_code == 200
    r = client.post("/", data={"format": "json"}, files=[("files", (path.name, path.read_bytes(), "application/json"))])
    assert r.status_code == 200, r.text[:500]
    return r.json()


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_door_gives_the_same_answer(path, tmp_path):
    whole = without_run(_cli_json("check", str(path)))
    assert whole["format_version"] == 2 and whole["summary"]["gate"] is not None
    assert without_run(via_shards(path, tmp_path)) == whole
    assert without_run(_cli_json("check", "--jobs", "3", str(path))) == whole
    assert without_run(via_page(path)) == whole
    assert without_run(via_sidecar(path, tmp_path)) == whole
