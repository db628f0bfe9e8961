"""Issue 19: every acknowledged span is audited, through full disks, crashes and restarts.

Real ``auditor serve`` processes, the real OpenTelemetry SDK exporters, real tmpfs mounts.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.trace.export import SpanExportResult

from auditor.cli import cli
from auditor.ingest.otlp_json_writer import to_otlp_json
from test_server_support import LLM_ATTRS, ROOT, Sidecar, _provider, llm_only_spans

pytestmark = pytest.mark.slow


def _mount_tmpfs(where: Path, size: str, *extra: str) -> None:
    where.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join([f"size={size}", *extra]), "tmpfs", str(where)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN): {r.stderr.strip()}")


def _umount(where: Path) -> None:
    subprocess.run(["umount", "-l", str(where)], capture_output=True)


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "disk"
    _mount_tmpfs(mnt, "1m")
    yield mnt
    _umount(mnt)


def prompt_spans(n: int, seed: int):
    """LLM calls carrying their prompt (a few KiB each, of varying length), as apps record them."""
    provider, exporter = _provider(seed, "chat")
    llm = provider.get_tracer("opentelemetry.instrumentation.openai")
    for i in range(n):
        prompt = f"[{{'role': 'user', 'content': '{'question %d ' % i * (150 + i % 97)}'}}]"
        with llm.start_as_current_span("chat gpt-4o-mini", attributes={**LLM_ATTRS, "tenant_id": f"t{i % 5}",
                                                                      "gen_ai.input.messages": prompt}):
            pass
    provider.shutdown()
    return list(exporter.get_finished_spans())


def _fill(path: Path) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)


def _export_all(exporter, spans, per: int) -> tuple[set[str], int]:
    """Export in batches; the ids of the acknowledged ones and how many were refused."""
    acked, refused = set(), 0
    for i in range(0, len(spans), per):
        batch = spans[i : i + per]
        if exporter.export(batch) is SpanExportResult.SUCCESS:
            acked.update(f"{s.context.span_id:016x}" for s in batch)
        else:
            refused += 1
    return acked, refused


def test_full_disk_refuses_exports_and_loses_no_acknowledged_span(small_disk):
    data = small_disk / "data"
    spans = prompt_spans(160 * 18 + 10 * 18, seed=19)
    first = Sidecar(data, trace_idle=60).start()  # the acknowledged spans wait in the workers' window
    try:
        exporter = HttpExporter(endpoint=first.http + "/v1/traces", timeout=1)
        acked, refused = _export_all(exporter, spans[: 160 * 18], 18)
        assert refused > 0 and acked  # the 1 MiB disk filled up part way
        health = first.get("/healthz")
        assert health.status_code == 503 and health.json()["status"] == "degraded", health.text
        assert any("disk full" in p for p in health.json()["problems"])
        assert first.get("/metrics").status_code == 200
        body = encode_spans(spans[-1:]).SerializeToString()
        refusal = first.post("/v1/traces", body, "application/x-protobuf")
        assert refusal.status_code == 503 and int(refusal.headers["retry-after"]) > 0

        _fill(small_disk / "filler")  # something else takes the reserve: the workers cannot store either
        first.proc.send_signal(signal.SIGTERM)  # a drain that cannot finish: bounded by --drain-timeout
        during = None
        while first.proc.poll() is None:
            try:
                during = first.post("/v1/traces", body, "application/x-protobuf")
            except httpx.TransportError:
                break
            time.sleep(0.2)
        code, err = first.proc.wait(timeout=120), first.proc.stderr.read().decode()
        assert during is not None and during.status_code == 503 and "retry-after" in during.headers
        assert code == 1 and "stay in the queue" in err, err
        assert "cannot write the store" in err and "Traceback" not in err, err
    finally:
        first.stop()
    (small_disk / "filler").unlink()

    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)  # the operator grows the disk
    second = Sidecar(data).start()
    try:
        exporter = HttpExporter(endpoint=second.http + "/v1/traces", timeout=10)
        more, refused_after = _export_all(exporter, spans[160 * 18 :], 18)
        assert refused_after == 0
        second.wait_audited(timeout=60)
        assert second.get("/healthz").json()["status"] == "ok"
        code, err = second.terminate()
        assert code == 0, err
    finally:
        second.stop()
    third = Sidecar(data).start()  # and once more from disk, after a clean stop
    try:
        third.wait_audited(timeout=60)
        in_report = {c["span_id"] for c in third.report()["calls"]}
    finally:
        third.stop()
    assert acked | more <= in_report
    assert len(in_report) == len(acked | more)


def test_numbers_continue_after_a_crash_left_only_an_empty_newest_spool_segment(tmp_path):
    """The state a kill -9 between a segment roll and its first write left behind (the old
    segments retired because the new one's first number was at the workers' cursor): only
    an empty segment named by that number, and the cursor in the store. New exports must get
    numbers above the cursor, or the workers skip them."""
    data = tmp_path / "data"
    first = Sidecar(data).start()
    spans = llm_only_spans(300, seed=7)
    try:
        exporter = HttpExporter(endpoint=first.http + "/v1/traces", timeout=10)
        acked, _ = _export_all(exporter, spans[:140], 10)
        first.wait_audited()
    finally:
        first.kill()
    with sqlite3.connect(data / "auditor.sqlite3") as c:
        (cursor,) = c.execute("SELECT v FROM meta WHERE k='done_seq.0'").fetchone()
    assert int(cursor) == 15
    (data / "queue.sqlite3").unlink(missing_ok=True)  # the crash state of the segment spool
    for leftover in data.glob("queue.sqlite3-*"):
        leftover.unlink()
    (data / "spool").mkdir(exist_ok=True)
    for segment in (data / "spool").glob("*.spool"):  # retired: below the workers' cursor
        segment.unlink()
    (data / "spool" / f"{int(cursor):020d}.spool").write_bytes(b"")

    second = Sidecar(data).start()
    try:
        exporter = HttpExporter(endpoint=second.http + "/v1/traces", timeout=10)
        more, _ = _export_all(exporter, spans[140:], 10)
        second.wait_audited()
        health = second.get("/healthz").json()
        assert health["spooled_seq"] >= int(cursor)
        report = second.report()
    finally:
        second.stop()
    assert {c["span_id"] for c in report["calls"]} == acked | more
    assert report["summary"]["spans"] == 300


def test_numbers_continue_after_every_record_was_retired_and_the_sidecar_killed(tmp_path):
    data = tmp_path / "data"
    spans = llm_only_spans(200, seed=8)
    first = Sidecar(data).start()
    try:
        exporter = HttpExporter(endpoint=first.http + "/v1/traces", timeout=10)
        acked, _ = _export_all(exporter, spans[:100], 10)
        first.wait_audited()
        deadline = time.monotonic() + 30
        while sqlite3.connect(data / "queue.sqlite3").execute("SELECT COUNT(*) FROM records").fetchone()[0]:
            assert time.monotonic() < deadline, "the queue was never retired"
            time.sleep(0.1)
    finally:
        first.kill()  # nothing left in the queue; only the store's cursor says where numbering stood
    second = Sidecar(data).start()
    try:
        exporter = HttpExporter(endpoint=second.http + "/v1/traces", timeout=10)
        more, _ = _export_all(exporter, spans[100:], 10)
        second.wait_audited()
        report = second.report()
    finally:
        second.stop()
    assert {c["span_id"] for c in report["calls"]} == acked | more
    assert report["summary"]["spans"] == 200


def _json_with_one_bad_value(n: int, seed: int) -> tuple[bytes, str]:
    doc = to_otlp_json(encode_spans(llm_only_spans(n, seed)))
    span = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][7]
    for kv in span["attributes"]:
        if kv["key"] == "gen_ai.usage.input_tokens":
            kv["value"] = {"intValue": "12x"}
    return json.dumps(doc).encode(), span["spanId"]


def test_json_export_with_one_bad_value_keeps_the_other_spans_and_counts_the_bad_one_once(tmp_path):
    body, bad_id = _json_with_one_bad_value(50, seed=5)
    sidecar = Sidecar(tmp_path / "data").start()
    try:
        for _attempt in range(2):  # a client retry of the same request
            r = sidecar.post("/v1/traces", body, "application/json")
            assert r.status_code == 200, r.text
            partial = r.json()["partialSuccess"]
            assert partial["rejectedSpans"] == "1"
            assert "spans[7].attributes" in partial["errorMessage"] and "12x" in partial["errorMessage"]
        sidecar.wait_audited()
        report = sidecar.report()
    finally:
        sidecar.stop()
    assert report["summary"]["spans"] == 49 and report["summary"]["rejected_spans"] == 1
    assert bad_id not in {c["span_id"] for c in report["calls"]}

    path = tmp_path / "export.json"
    path.write_bytes(body)
    out = CliRunner().invoke(cli, ["check", "--format", "json", str(path)])
    assert out.exit_code in (0, 1), out.output
    assert "1 span(s) rejected; first:" in out.stderr and "spans[7].attributes" in out.stderr
    checked = json.loads(out.stdout)
    assert (checked["summary"]["spans"], checked["summary"]["rejected_spans"]) == (49, 1)
    assert checked["summary"] == report["summary"]


def test_a_different_schema_on_a_used_data_dir_is_refused_in_one_line(tmp_path):
    data = tmp_path / "data"
    sidecar = Sidecar(data).start()
    try:
        exporter = HttpExporter(endpoint=sidecar.http + "/v1/traces", timeout=10)
        _export_all(exporter, llm_only_spans(10, seed=3), 10)
        sidecar.wait_audited()
        assert sidecar.terminate()[0] == 0
    finally:
        sidecar.stop()
    r = subprocess.run([sys.executable, "-m", "auditor", "serve", "--data-dir", str(data), "--grpc-port", "0",
                        "--http-port", "0", "--schema", "preset:langfuse"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "holds audits made with schema 'auto'" in r.stderr, r.stderr


def test_a_read_only_data_dir_is_a_one_line_error(tmp_path):
    ro = tmp_path / "ro"
    _mount_tmpfs(ro, "1m", "ro")
    try:
        r = subprocess.run([sys.executable, "-m", "auditor", "serve", "--data-dir", str(ro), "--grpc-port", "0",
                            "--http-port", "0"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    finally:
        _umount(ro)
    assert r.returncode == 2
    assert r.stderr.startswith(f"auditor: error: --data-dir {ro}") and r.stderr.count("\n") == 1, r.stderr


def test_kill_9_leaves_no_leaked_semaphore_warning(tmp_path):
    sidecar = Sidecar(tmp_path / "data", workers=2).start()
    sidecar.wait_audited()
    os.kill(sidecar.proc.pid, signal.SIGKILL)
    _out, err = sidecar.proc.communicate(timeout=60)  # EOF once the workers and the resource tracker are gone too
    assert "leaked semaphore" not in err.decode(), err.decode()


def test_retention_by_age_drops_old_traces_and_says_what_window_is_covered(tmp_path):
    sidecar = Sidecar(tmp_path / "data", "--retain-for", "2s").start()
    old, new = llm_only_spans(20, seed=11), llm_only_spans(10, seed=12)
    try:
        exporter = HttpExporter(endpoint=sidecar.http + "/v1/traces", timeout=10)
        _export_all(exporter, old, 10)
        sidecar.wait_audited()
        deadline = time.monotonic() + 60
        while sidecar.get("/healthz").json()["window"]["evicted_traces"] < 20:
            assert time.monotonic() < deadline, sidecar.get("/healthz").text
            time.sleep(0.2)
        _export_all(exporter, new, 10)
        sidecar.wait_audited()
        window = sidecar.get("/healthz").json()["window"]
        report = sidecar.report()
    finally:
        sidecar.stop()
    assert {c["span_id"] for c in report["calls"]} == {f"{s.context.span_id:016x}" for s in new}
    assert (window["evicted_traces"], window["evicted_spans"]) == (20, 20)
    assert window["retention"]["max_age_seconds"] == 2
    assert window["evicted_before"] <= window["since"] <= window["until"]
