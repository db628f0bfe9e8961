"""Slow and numerous clients against the sidecar under a real descriptor limit (item 2 of #13):
1,100 half-sent HTTP requests and 1,100 gRPC connections that never finish their handshake,
against RLIMIT_NOFILE 1024, must not kill it, fill its log with tracebacks or stop it from
accepting once they are gone."""

from __future__ import annotations

import json
import resource
import socket
import subprocess
import sys
import time

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from test_server_support import ROOT, Sidecar, llm_only_spans

pytestmark = pytest.mark.slow

NOFILE = 1024
ATTACKERS = 1100
PB = "application/x-protobuf"


class LimitedSidecar(Sidecar):
    """The sidecar with a real RLIMIT_NOFILE set in the child before it runs."""

    def start(self) -> "LimitedSidecar":
        listen = self.data_dir / "listen.json"
        listen.unlink(missing_ok=True)

        def limit():
            resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))

        self.log = open(self.data_dir / "stderr.log", "w+b")  # a file, not a pipe: a flood cannot block it
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "auditor", "serve", "--data-dir", str(self.data_dir),
             "--grpc-port", "0", "--http-port", "0", "--trace-idle", str(self.trace_idle), *self.args],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=self.log, preexec_fn=limit,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if listen.exists():
                try:
                    info = json.loads(listen.read_text())
                except json.JSONDecodeError:
                    info = {}
                if info.get("pid") == self.proc.pid:
                    self.grpc_port, self.http_port = info["grpc"], info["http"]
                    return self
            assert self.proc.poll() is None, self.stderr()
            time.sleep(0.05)
        raise AssertionError("sidecar did not start")

    def stderr(self) -> str:
        return (self.data_dir / "stderr.log").read_text(errors="replace")

    def terminate(self, timeout: float = 60) -> tuple[int, str]:
        self.proc.terminate()
        self.proc.wait(timeout=timeout)
        return self.proc.returncode, self.stderr()


def _open_fds(pid: int) -> int:
    import os

    return len(os.listdir(f"/proc/{pid}/fd"))


def _attack(port: int, n: int) -> list[socket.socket]:
    """``n`` connections, each with half a request: headers unfinished, or a body that stalls."""
    socks = []
    for i in range(n):
        s = socket.socket()
        s.settimeout(1)
        try:
            s.connect(("127.0.0.1", port))
        except OSError:  # the backlog is full: the kernel refuses, which is fine
            s.close()
            continue
        s.setblocking(False)
        try:
            if i % 2:
                s.send(b"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-protobuf\r\n")
            else:
                s.send(b"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-protobuf\r\n"
                       b"Content-Length: 100000\r\n\r\n\x0a\x00")
        except OSError:
            pass
        socks.append(s)
    return socks


def _connect_only(port: int, n: int) -> list[socket.socket]:
    """``n`` TCP connections that never send the HTTP/2 preface."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.settimeout(1)
        try:
            s.connect(("127.0.0.1", port))
        except OSError:
            s.close()
            continue
        socks.append(s)
    return socks


def _closed_by_peer(s: socket.socket) -> bool:
    try:
        data = s.recv(4096)
    except BlockingIOError:
        return False
    except OSError:
        return True
    return data == b"" or data.startswith(b"HTTP/1.1 408") or data.startswith(b"HTTP/1.1 4")


@pytest.fixture()
def sidecar(tmp_path):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4 * ATTACKERS:  # the attacker (this process) needs its own descriptors
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8 * ATTACKERS), hard))
    s = LimitedSidecar(tmp_path, "--header-timeout", "1", "--body-timeout", "1").start()
    yield s
    if s.proc.poll() is None:
        s.proc.kill()
        s.proc.wait()
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_half_sent_requests_neither_kill_nor_block_the_sidecar(sidecar):
    s = sidecar
    grpc_socks = _connect_only(s.grpc_port, ATTACKERS)
    socks = _attack(s.http_port, ATTACKERS)
    try:
        assert len(socks) > 200 and len(grpc_socks) > 200
        # the sidecar never holds more descriptors than its limit allows, and stays up
        assert s.proc.poll() is None
        assert _open_fds(s.proc.pid) < NOFILE
        # every half-sent request is closed by the server (header/body timeout or the cap)
        deadline = time.monotonic() + 60
        pending = list(socks)
        while pending and time.monotonic() < deadline:
            pending = [p for p in pending if not _closed_by_peer(p)]
            time.sleep(0.2)
        assert not pending, f"{len(pending)} slow connections still open"
        # and the gRPC handshake timeout frees the descriptors of the silent connections
        while _open_fds(s.proc.pid) > 100 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _open_fds(s.proc.pid) <= 100
    finally:
        for p in socks + grpc_socks:
            p.close()
    assert s.proc.poll() is None, "the sidecar died"
    # and it accepts and audits again, on both transports
    assert s.get("/healthz").status_code == 200
    body = encode_spans(llm_only_spans(3, 41)).SerializeToString()
    assert s.post("/v1/traces", body, PB).status_code == 200
    with grpc.insecure_channel(s.grpc) as ch:
        ch.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")(
            encode_spans(llm_only_spans(2, 42)).SerializeToString(), timeout=20)
    s.wait_audited()
    assert s.report()["summary"]["llm_calls"] == 5
    code, err = s.terminate()
    assert code == 0, err
    assert "Traceback" not in err and "OSError" not in err
    assert len(err.splitlines()) < 20, err
