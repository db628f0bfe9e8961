"""``auditor serve``: this process receives (gRPC + HTTP on one asyncio loop), spools and
acknowledges; ``--workers`` audit processes (``auditor.server.worker``) audit and store,
each the traces whose id hashes to it.

SIGTERM / SIGINT: refuse new exports (retryable UNAVAILABLE), finish the ones in flight,
close the spool, let the workers audit everything buffered and commit, exit 0.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import multiprocessing
import os
import signal
import socket
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import uvicorn

from auditor.errors import UsageError
from auditor.schema import load_schema
from auditor.server import store
from auditor.server.grpc_service import build_server
from auditor.server.http_app import build_app
from auditor.server.http_transport import (
    DEFAULT_BODY_TIMEOUT, DEFAULT_HEADER_TIMEOUT, DEFAULT_MAX_CONNECTIONS, quiet_accept_errors, uvicorn_config,
)
from auditor.server.intake import Intake
from auditor.server.metrics import Metrics
from auditor.server.reporter import Reporter
from auditor.server.spool import SpoolWriter
from auditor.server.web_guard import allowed_hosts
from auditor.server.worker import WorkerConfig, main as worker_main, paths

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ServeConfig:
    host: str = "127.0.0.1"
    grpc_port: int = 4317
    http_port: int = 4318
    data_dir: str = ".auditor"
    schema_ref: str | None = None
    trace_idle: float = 10.0
    trace_max_age: float = 300.0
    max_buffered_spans: int = 200_000
    max_request_bytes: int = 64 * MIB
    auth_token: str | None = None
    workers: int = 2
    allow_hosts: tuple[str, ...] = ()  # HTTP transport (http_transport, web_guard)
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    body_timeout: float = DEFAULT_BODY_TIMEOUT


def _log(msg: str) -> None:
    print(f"auditor serve: {msg}", file=sys.stderr, flush=True)


def _lock(data_dir: Path, wait: float = 10.0):
    """One sidecar per data dir; a just-killed predecessor gets a moment to go."""
    fh = open(data_dir / "serve.lock", "w")
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fh
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise UsageError(f"{data_dir}: another 'auditor serve' is using this data dir") from None
            time.sleep(0.1)


class _Uvicorn(uvicorn.Server):
    @contextmanager
    def capture_signals(self):  # the sidecar owns signals: it must drain, not just stop HTTP
        yield


class _Worker:
    """One audit process, restarted (it replays) should it ever die while we run."""

    def __init__(self, ctx, wcfg: WorkerConfig, committed, done, drain):
        self.ctx = ctx
        self.wcfg = wcfg
        self.committed = committed
        self.done = done
        self.drain = drain
        self.proc = None

    def start(self) -> None:
        self.ready = self.ctx.Event()  # kept: the child unpickles it after start() returns
        self.proc = self.ctx.Process(
            target=worker_main, name=f"auditor-worker-{self.wcfg.shard}",
            args=(self.wcfg, self.committed, self.done, self.drain, self.ready, os.getpid()),
        )
        self.proc.start()

    def check(self) -> None:
        if self.proc is not None and not self.drain.is_set() and self.proc.exitcode is not None:
            _log(f"audit worker {self.wcfg.shard} exited with {self.proc.exitcode}; restarting it (it replays from the spool)")
            self.start()

    def finish(self) -> int:
        """Audit everything buffered. A worker killed by a signal meant for the whole
        process group (systemd, timeout) before it could ignore it is started again."""
        self.drain.set()
        for _attempt in range(3):
            self.proc.join()
            if self.proc.exitcode is not None and self.proc.exitcode >= 0:
                break
            _log(f"audit worker {self.wcfg.shard} ended by signal {-self.proc.exitcode} while draining; starting it again")
            self.start()
        return self.proc.exitcode


class _Workers:
    """N audit processes, each owning the traces whose id hashes to it (like the Collector's
    loadbalancing exporter, inside one machine). ``value`` is their common low-water mark."""

    def __init__(self, wcfg: WorkerConfig, n: int, committed, start_seq: int):
        self.ctx = multiprocessing.get_context("spawn")
        self.drain = self.ctx.Event()
        self.dones = [self.ctx.Value("q", start_seq, lock=False) for _ in range(n)]
        self.workers = [
            _Worker(self.ctx, replace(wcfg, shard=k, shards=n), committed, d, self.drain) for k, d in enumerate(self.dones)
        ]

    @property
    def value(self) -> int:
        return min(d.value for d in self.dones)

    def start(self) -> None:
        for w in self.workers:
            w.start()

    def check(self) -> None:
        for w in self.workers:
            w.check()

    def finish(self) -> int:
        codes = [w.finish() for w in self.workers]
        return next((c for c in codes if c), 0)

    def stop(self) -> None:
        """After a failed start: drain what there is and go (idempotent)."""
        if any(w.proc is not None and w.proc.exitcode is None for w in self.workers):
            self.finish()


def serve(cfg: ServeConfig) -> int:
    data_dir = Path(cfg.data_dir)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"--data-dir {data_dir}: cannot create: {e.strerror or e}") from None
    lock = _lock(data_dir)
    schema = load_schema(cfg.schema_ref)
    spool_dir, db = paths(data_dir)
    writer = store.Store(db)  # creates the tables before any process reads them
    start_seq = writer.reset_shards(cfg.workers)
    writer.close()
    committed = multiprocessing.get_context("spawn").Value("q", 0, lock=False)
    spool = SpoolWriter(spool_dir, on_commit=lambda seq: setattr(committed, "value", seq))
    committed.value = spool.last_seq
    wcfg = WorkerConfig(str(data_dir), cfg.schema_ref, cfg.trace_idle, cfg.trace_max_age, cfg.max_buffered_spans)
    workers = _Workers(wcfg, cfg.workers, committed, start_seq)
    workers.start()
    try:
        code = asyncio.run(_run(cfg, schema, spool, workers, data_dir, db))
    finally:
        spool.close()
        workers.stop()
        lock.close()
    return code


async def _run(cfg, schema, spool, workers: _Workers, data_dir: Path, db: Path) -> int:
    intake = Intake(spool, workers, cfg.max_buffered_spans, cfg.auth_token)
    replay = intake.buffered()
    spool.start()
    reporter = Reporter(db, schema, ("otlp",))
    metrics = Metrics(reporter.stats, lambda: (intake.buffered(), cfg.max_buffered_spans))
    stop = asyncio.Event()

    def status() -> dict:
        return {
            "status": "ok" if intake.accepting else "draining",
            "buffered_spans": intake.buffered(),
            "spooled_seq": spool.last_seq,
            "done_seq": workers.value,
        }

    grpc_server, grpc_port = build_server(intake, metrics, cfg.host, cfg.grpc_port, cfg.max_request_bytes,
                                          cfg.max_connections, cfg.header_timeout)
    if not grpc_port:
        raise UsageError(f"--grpc-port {cfg.grpc_port}: cannot listen on {cfg.host}")
    sock = _listen(cfg.host, cfg.http_port)
    app = build_app(intake, metrics, reporter, cfg.max_request_bytes, status,
                    token=cfg.auth_token, hosts=allowed_hosts(cfg.host, cfg.allow_hosts))
    quiet_accept_errors(asyncio.get_running_loop(), _log)
    http = _Uvicorn(
        uvicorn_config(app, max_connections=cfg.max_connections, header_timeout=cfg.header_timeout,
                       body_timeout=cfg.body_timeout, warn=_log, timeout_graceful_shutdown=5)
    )
    await grpc_server.start()
    http_task = asyncio.create_task(http.serve(sockets=[sock]))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    http_port = sock.getsockname()[1]
    (data_dir / "listen.json").write_text(
        json.dumps({"pid": os.getpid(), "grpc": grpc_port, "http": http_port, "host": cfg.host})
    )
    _log(
        f"OTLP gRPC on {cfg.host}:{grpc_port}, OTLP/HTTP and report on http://{cfg.host}:{http_port}; "
        f"data in {data_dir}" + (f"; replaying {replay} spooled spans" if replay else "")
    )
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), 0.5)
        except asyncio.TimeoutError:
            pass
        spool.retire(workers.value)
        workers.check()
        if http_task.done():
            break
    _log("stopping: refusing new exports, auditing everything buffered")
    await intake.stop()
    await grpc_server.stop(grace=2)
    http.should_exit = True
    await http_task
    await asyncio.to_thread(spool.close)
    code = await asyncio.to_thread(workers.finish)
    spool.retire(workers.value)
    reporter.close()
    if code != 0:
        _log(f"audit worker exited with {code} while draining")
        return 1
    _log(f"stopped; {intake.buffered()} spans left unaudited")
    return 0


def _listen(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        raise UsageError(f"--http-port {port}: cannot listen on {host}: {e.strerror or e}") from None
    sock.listen(1024)
    sock.set_inheritable(False)
    return sock
