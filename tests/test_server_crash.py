"""kill -9 at any moment loses no acknowledged span: SIGKILL the sidecar mid-stream, restart it."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_server_support import Sidecar

pytestmark = pytest.mark.slow

BATCHES, PER_BATCH = 100, 40  # the client must still be mid-stream when the kill comes


def _acked(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def test_sigkill_mid_stream_loses_no_acknowledged_span(tmp_path):
    data = tmp_path / "data"
    acked = tmp_path / "acked.txt"
    first = Sidecar(data, trace_idle=5, workers=2).start()  # acknowledged spans wait in the window when it dies
    client = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; from test_server_support import run_client; "
         f"run_client({first.grpc!r}, {first.http!r}, {str(acked)!r}, {BATCHES}, {PER_BATCH}, 99)"],
        cwd=Path(__file__).parent, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while len(_acked(acked)) < 15 * PER_BATCH:
            assert time.monotonic() < deadline and client.poll() is None, client.stderr and client.poll()
            time.sleep(0.02)
        buffered = first.get("/healthz").json()["buffered_spans"]
        first.kill()
        before_kill = set(_acked(acked))
        assert buffered > 0  # acknowledged yet not audited: only the spool has them
        assert len(before_kill) < BATCHES * PER_BATCH  # the client was mid-stream

        # restarted with one worker: the shards' replay positions fold into one
        second = Sidecar(data, trace_idle=0.3, grpc_port=first.grpc_port, http_port=first.http_port).start()
        try:
            assert client.wait(timeout=180) == 0, client.stderr.read().decode()
            second.wait_audited()
            report = second.report()
        finally:
            second.stop()
    finally:
        first.stop()
        if client.poll() is None:
            client.kill()

    all_acked = set(_acked(acked))
    in_report = {c["span_id"] for c in report["calls"]}
    assert before_kill <= in_report
    assert all_acked == in_report  # every batch was acknowledged in the end, and each span counted once
    assert report["summary"]["spans"] == report["summary"]["traces"] == BATCHES * PER_BATCH
