"""Decompression bombs and huge inputs are refused early with bounded memory: the CLI (exit 2,
one line naming file and offset) and the page (413), each watched by its peak RSS; the page
handles a bounded number of submissions at once (503 beyond)."""

from __future__ import annotations

import gzip
import socket
import struct
import time

import httpx
import pytest
from click.testing import CliRunner
from hostile_support import UiServer, peak_rss_mb, run_measured
from report_fixtures import BAGGAGE

from auditor.cli import cli

RSS_LIMIT_MB = 500
GIB = 1 << 30


def _gzip_bomb(path, prefix: bytes, fill: bytes, total: int, suffix: bytes) -> None:
    """``total`` bytes of ``fill`` between prefix and suffix, as concatenated gzip members
    (one 64 MiB member compressed once and repeated): ~1 MB on disk."""
    block = gzip.compress(fill * (64 << 20), 6)
    with open(path, "wb") as f:
        f.write(gzip.compress(prefix))
        for _ in range(total // (64 << 20)):
            f.write(block)
        f.write(gzip.compress(suffix))


@pytest.fixture(scope="module")
def bombs(tmp_path_factory):
    d = tmp_path_factory.mktemp("bombs")
    out = {}
    out["json-document"] = d / "doc.json.gz"
    _gzip_bomb(out["json-document"], b'{"resourceSpans": [], "x": "', b"a", GIB, b'"}')
    out["json-lines"] = d / "lines.jsonl.gz"
    _gzip_bomb(out["json-lines"], b'{"resourceSpans": []}\n{"resourceSpans": [], "x": "', b"a", GIB, b'"}\n')
    out["whitespace"] = d / "spaces.json.gz"
    _gzip_bomb(out["whitespace"], b"", b" ", GIB, b"{}")
    out["protobuf"] = d / "zeros.pb.gz"
    _gzip_bomb(out["protobuf"], b"\x0a", b"\x00", GIB, b"")
    out["record"] = d / "record.pb.gz"  # a length prefix of 100 MiB, then the message
    _gzip_bomb(out["record"], struct.pack(">I", 100 << 20) + b"\x0a", b"\x00", 128 << 20, b"")
    sparse = d / "sparse.pb"
    with open(sparse, "wb") as f:
        f.truncate(2 * GIB)
    out["sparse"] = sparse
    sparse_msg = d / "sparse-message.pb"
    with open(sparse_msg, "wb") as f:
        f.write(b"\x0a")
        f.truncate(2 * GIB)
    out["sparse-message"] = sparse_msg
    return out


@pytest.mark.parametrize("kind", ["json-document", "json-lines", "whitespace", "protobuf", "record", "sparse", "sparse-message"])
def test_cli_refuses_bombs_early_with_bounded_memory(bombs, kind):
    path = bombs[kind]
    assert path.stat().st_size < 3 * GIB
    proc, rss = run_measured(["-m", "auditor", "check", "-s", "default", str(path)], timeout=300)
    err = proc.stderr.decode().strip()
    assert proc.returncode == 2, err
    assert len(err.splitlines()) == 1 and err.startswith(f"auditor: error: {path}"), err
    assert "Traceback" not in err
    if kind != "sparse":  # all zeros: refused from the first byte, before any limit applies
        assert "offset " in err and "larger than 67108864 bytes (after decompression)" in err
    assert rss < RSS_LIMIT_MB, f"{kind}: peak RSS {rss:.0f} MB"


def test_max_input_bytes_flag_sets_the_limit(tmp_path):
    size = BAGGAGE.stat().st_size
    r = CliRunner().invoke(cli, ["check", "--max-input-bytes", "1KiB", "-s", "default", str(BAGGAGE)])
    assert r.exit_code == 2 and "larger than 1024 bytes" in r.output, r.output
    r = CliRunner().invoke(cli, ["check", "--max-input-bytes", str(size), "-s", "default", str(BAGGAGE)])
    assert r.exit_code == 1, r.output  # audited (the sample leaks: gate fails)
    r = CliRunner().invoke(cli, ["check", "-s", "default", str(BAGGAGE)])  # the default is back
    assert r.exit_code == 1, r.output
    r = CliRunner().invoke(cli, ["check", "--max-input-bytes", "lots", str(BAGGAGE)])
    assert r.exit_code == 2 and "expected a byte count" in r.output


@pytest.fixture(scope="module")
def ui():
    srv = UiServer("--max-body-bytes", "4000000")
    yield srv
    srv.stop()


def test_page_refuses_a_gzip_bomb_with_413_and_bounded_memory(ui, bombs):
    before = peak_rss_mb(ui.proc.pid)
    files = [("files", ("doc.json.gz", bombs["json-document"].read_bytes(), "application/gzip"))]
    r = httpx.post(ui.url, data={"schema": "default"}, files=files, timeout=120)
    assert r.status_code == 413, r.text[-500:]
    assert "after gzip decompression" in r.text
    peak = peak_rss_mb(ui.proc.pid)
    assert peak < RSS_LIMIT_MB, f"page peak RSS {peak:.0f} MB (was {before:.0f} MB before the upload)"
    assert httpx.post(ui.url, data={"trace": BAGGAGE.read_text(), "schema": "default"}, timeout=60).status_code == 200


def test_page_handles_a_bounded_number_of_submissions_at_once(ui):
    held = []
    for _ in range(2):  # two submissions whose bodies never finish
        s = socket.create_connection(("127.0.0.1", ui.port))
        s.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=x\r\n"
                  b"Content-Length: 100000\r\n\r\n--x\r\n")
        held.append(s)
    try:
        deadline = time.monotonic() + 30
        while True:
            r = httpx.post(ui.url, data={"trace": BAGGAGE.read_text(), "schema": "default"}, timeout=60)
            if r.status_code == 503:
                break
            assert time.monotonic() < deadline, "a third submission was never refused"
            time.sleep(0.1)
        assert r.headers["retry-after"] == "2"
    finally:
        for s in held:
            s.close()
    deadline = time.monotonic() + 30
    while httpx.post(ui.url, data={"trace": BAGGAGE.read_text(), "schema": "default"}, timeout=60).status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.1)
