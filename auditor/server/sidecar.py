"""``auditor serve``: this process receives (gRPC + HTTP on one asyncio loop), queues
(``auditor.server.queue``) and acknowledges; ``--workers`` audit processes (``auditor.server.worker``) audit and store,
each the traces whose id hashes to it.

SIGTERM / SIGINT: refuse new exports (retryable 503 / UNAVAILABLE; HTTP keeps answering
while the workers drain), finish the ones in flight, close the queue, let the workers audit
everything buffered and commit, exit 0; past --drain-timeout (a store that cannot be written)
the workers are stopped and what they had not stored stays queued for the next start (exit 1).
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import multiprocessing
import os
import signal
import hashlib
import socket
import sqlite3
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import uvicorn

from auditor.errors import UsageError
from auditor.plan import Plan
from auditor.server import store
from auditor.server.alerts import Alerter
from auditor.server.grpc_service import build_server
from auditor.server.http_app import build_app
from auditor.server.http_transport import quiet_accept_errors, uvicorn_config
from auditor.server.intake import Intake
from auditor.server.metrics import Metrics
from auditor.server.reporter import Reporter
from auditor.server.transport_limits import DEFAULT_BODY_TIMEOUT, DEFAULT_HEADER_TIMEOUT, DEFAULT_MAX_CONNECTIONS
from auditor.server import queue
from auditor.server.web_guard import allowed_hosts
from auditor.server.worker import MAX_WINDOW_SPANS, STALLED, STARTING, WorkerConfig, main as worker_main, paths

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
    max_buffered_spans: int | None = None  # spans acknowledged, not yet stored (None: bounded in bytes only)
    max_request_bytes: int = 64 * MIB
    auth_token: str | None = None
    workers: int = 2
    drain_timeout: float = 20.0  # SIGTERM: seconds to audit what is buffered; the rest stays queued
    retain_age: float | None = None  # seconds: traces last audited longer ago are deleted
    retain_bytes: int | None = None  # the store's live pages are kept under this
    retain_every: float = 5.0  # seconds between retention passes
    allow_hosts: tuple[str, ...] = ()  # HTTP transport (http_transport, web_guard)
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    body_timeout: float = DEFAULT_BODY_TIMEOUT
    alert_webhook: str | None = None  # POST a JSON message here when the live gate changes state
    alert_window: float = 300.0  # at most one message per key and state within this many seconds
    alert_interval: float = 10.0  # seconds between looks at the live gate
    max_buffered_bytes: int = 1024 * MIB  # acknowledged, not yet stored: bytes in the queue on disk (+ the disk reserve)


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
    """One audit process, restarted (it replays) should it ever die while we run; a worker
    that keeps dying (e.g. the store cannot be opened on a full disk) is restarted ever more
    slowly (up to RESTART_MAX seconds apart), with one line each time, never a hot loop."""

    RESTART_MAX = 30.0

    def __init__(self, ctx, wcfg: WorkerConfig, committed, done, drain):
        self.ctx = ctx
        self.wcfg = wcfg
        self.committed = committed
        self.done = done
        self.drain = drain
        self.state = ctx.Value("q", STARTING, lock=False)  # shared memory, no semaphore: nothing leaks on kill -9
        self.proc = None
        self._started = 0.0
        self._delay = 0.0
        self._next_start = 0.0

    def start(self) -> None:
        self.state.value = STARTING
        self._started = time.monotonic()
        self.proc = self.ctx.Process(
            target=worker_main, name=f"auditor-worker-{self.wcfg.shard}",
            args=(self.wcfg, self.committed, self.done, self.drain, self.state, os.getpid()),
        )
        self.proc.start()

    @property
    def stalled(self) -> bool:
        return self.state.value == STALLED or (self.proc is not None and self.proc.exitcode is not None)

    def check(self) -> None:
        if self.proc is None or self.drain.value or self.proc.exitcode is None:
            return
        now = time.monotonic()
        if not self._next_start:
            lived = now - self._started
            self._delay = 0.0 if lived > self.RESTART_MAX else min(max(self._delay * 2, 0.5), self.RESTART_MAX)
            self._next_start = now + self._delay
            _log(f"audit worker {self.wcfg.shard} exited with {self.proc.exitcode}; restarting it"
                 + (f" in {self._delay:g}s" if self._delay else "") + " (it replays from the queue)")
        if now >= self._next_start:
            self._next_start = 0.0
            self.start()

    def finish(self, deadline: float) -> int:
        """Audit everything buffered, until ``deadline`` (monotonic). A worker killed by a
        signal meant for the whole process group (systemd, timeout) before it could ignore
        it is started again. Past the deadline (a store that cannot be written) the worker is
        killed: what it had not stored stays in the queue for the next start."""
        self.drain.value = 1
        for _attempt in range(3):
            if self.proc.exitcode is not None and self.proc.exitcode != 0 and not self.proc.is_alive():
                self.start()  # died before the drain (or while backing off): one more go
            self.proc.join(max(0.0, deadline - time.monotonic()))
            if self.proc.exitcode is None:
                self.proc.kill()
                self.proc.join()
                return -1
            if self.proc.exitcode >= 0:
                break
            _log(f"audit worker {self.wcfg.shard} ended by signal {-self.proc.exitcode} while draining; starting it again")
            self.start()
        return self.proc.exitcode


class _Workers:
    """N audit processes, each owning the traces whose id hashes to it (like the Collector's
    loadbalancing exporter, inside one machine). ``value`` is their common low-water mark."""

    def __init__(self, wcfg: WorkerConfig, n: int, committed, start_seq: int):
        self.ctx = multiprocessing.get_context("spawn")
        self.drain = self.ctx.Value("b", 0, lock=False)
        self.dones = [self.ctx.Value("q", start_seq, lock=False) for _ in range(n)]
        self.workers = [
            _Worker(self.ctx, replace(wcfg, shard=k, shards=n), committed, d, self.drain) for k, d in enumerate(self.dones)
        ]

    @property
    def value(self) -> int:
        return min(d.value for d in self.dones)

    @property
    def stalled(self) -> list[int]:
        """Shards that cannot store their audits right now (disk full, store unreadable)."""
        return [w.wcfg.shard for w in self.workers if w.stalled]

    def start(self) -> None:
        for w in self.workers:
            w.start()

    def check(self) -> None:
        for w in self.workers:
            w.check()

    def finish(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        codes = [w.finish(deadline) for w in self.workers]
        return next((c for c in codes if c), 0)

    def stop(self) -> None:
        """After a failed start: drain what there is and go (idempotent)."""
        if any(w.proc is not None and w.proc.exitcode is None for w in self.workers):
            self.finish(10.0)


def schema_fingerprint(plan: Plan) -> str:
    """What reads the stored spans: the schema (with detection, every preset it may compose)."""
    doc = {"detect": plan.detecting, "schema": plan.widest.raw}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _open_store(data_dir: Path, db: Path, plan: Plan, schema_ref: str | None, workers: int) -> tuple[int, int]:
    """Create the tables, check the schema, fold the shards' cursors. Returns (replay start,
    largest stored cursor). A data dir we cannot write is one line, not a traceback."""
    try:
        writer = store.Store(db)  # creates the tables before any process reads them
    except (sqlite3.Error, OSError) as e:
        raise UsageError(f"--data-dir {data_dir}: cannot open the store {db.name}: {e}") from None
    try:
        old = writer.claim_schema(schema_fingerprint(plan), plan.name)
        if old is not None:
            raise UsageError(
                f"--schema {schema_ref or 'default'}: {data_dir} holds audits made with schema {old!r}, whose "
                "spans were kept only as that schema needs them; use a new --data-dir (or remove this one) to audit with another schema"
            )
        floor = writer.max_done_seq()
        return writer.reset_shards(workers), floor
    except sqlite3.Error as e:
        raise UsageError(f"--data-dir {data_dir}: cannot write the store {db.name}: {e}") from None
    finally:
        writer.close()


def serve(cfg: ServeConfig) -> int:
    data_dir = Path(cfg.data_dir)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"--data-dir {data_dir}: cannot create: {e.strerror or e}") from None
    if not os.access(data_dir, os.W_OK | os.X_OK):
        raise UsageError(f"--data-dir {data_dir}: not writable (the queue and the store live there)")
    try:
        lock = _lock(data_dir)
    except OSError as e:
        raise UsageError(f"--data-dir {data_dir}: cannot create its lock file: {e.strerror or e}") from None
    plan = Plan.of(cfg.schema_ref)  # a bad schema is a usage error before anything listens
    spool_dir, db = paths(data_dir)
    start_seq, floor = _open_store(data_dir, db, plan, cfg.schema_ref, cfg.workers)
    committed = multiprocessing.get_context("spawn").Value("q", 0, lock=False)
    publish = lambda seq: setattr(committed, "value", seq)  # noqa: E731
    try:
        spool = queue.QueueWriter(data_dir / queue.NAME, on_commit=publish, floor=floor,
                                  legacy_spool=spool_dir if spool_dir.is_dir() else None)
    except (sqlite3.Error, OSError) as e:
        raise UsageError(f"--data-dir {data_dir}: cannot open the queue {queue.NAME}: {e}") from None
    committed.value = spool.last_seq
    window = min(cfg.max_buffered_spans or MAX_WINDOW_SPANS, MAX_WINDOW_SPANS)
    wcfg = WorkerConfig(str(data_dir), cfg.schema_ref, cfg.trace_idle, cfg.trace_max_age, window)
    workers = _Workers(wcfg, cfg.workers, committed, start_seq)
    workers.start()
    try:
        code = asyncio.run(_run(cfg, plan, spool, workers, data_dir, db))
    finally:
        spool.close()
        workers.stop()
        lock.close()
    return code


async def _run(cfg, plan, spool, workers: _Workers, data_dir: Path, db: Path) -> int:
    intake = Intake(spool, workers, cfg.max_buffered_spans, cfg.auth_token, plan.projection,
                    max_buffered_bytes=cfg.max_buffered_bytes, shards=cfg.workers)
    replay = intake.buffered()
    spool.start()
    reporter = Reporter(db, plan, ("otlp",))
    metrics = Metrics(reporter.stats, reporter.result, lambda: (intake.buffered(), intake.buffered_bytes(), intake.fill()), reporter.trend)
    stop = asyncio.Event()
    # kept open while we run: the store's -wal and -shm files then exist (and keep their room)
    # from the start, so readers and workers still work once the disk is full
    window_conn = store.connect(db)
    window_conn.execute("SELECT COUNT(*) FROM meta").fetchone()
    retention = {"max_age_seconds": cfg.retain_age, "max_bytes": cfg.retain_bytes}

    def window() -> dict | None:
        try:
            return {**store.window(window_conn), "retention": retention}
        except sqlite3.Error:
            return None

    def status() -> dict:
        problems = []
        if spool.full:
            problems.append("disk full: exports are refused (503 / UNAVAILABLE, retryable) until space is freed")
        stalled = workers.stalled
        if stalled:
            problems.append(f"audit worker(s) {', '.join(map(str, stalled))} cannot store audits (disk full or store unwritable); retrying")
        out = {
            "status": "draining" if not intake.accepting else ("degraded" if problems else "ok"),
            "buffered_spans": intake.buffered(),
            "buffered_bytes": intake.buffered_bytes(),
            "spooled_seq": spool.last_seq,
            "done_seq": workers.value,
        }
        if problems:
            out["problems"] = problems
        out["window"] = window()  # what the report covers: retention may have removed older traces
        try:
            st = os.statvfs(data_dir)
            out["disk_free_bytes"] = st.f_bavail * st.f_frsize
        except OSError:
            pass
        return out

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
    retainer = _Retainer(db, cfg) if cfg.retain_age is not None or cfg.retain_bytes is not None else None
    retaining: asyncio.Task | None = None
    next_retain = 0.0
    alerter = (Alerter(cfg.alert_webhook, cfg.alert_window, data_dir / "alerts.json", _log)
               if cfg.alert_webhook else None)
    alerting: asyncio.Task | None = None
    next_alert = 0.0

    def alert_pass() -> None:
        try:
            alerter.check(reporter.result())
        except Exception as e:  # noqa: BLE001 - alerts must never take the sidecar down
            _log(f"alert webhook: {type(e).__name__}: {e}")

    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), 0.5)
        except asyncio.TimeoutError:
            pass
        spool.retire(workers.value)
        workers.check()
        if retainer is not None and (retaining is None or retaining.done()) and time.monotonic() >= next_retain:
            retaining = asyncio.create_task(asyncio.to_thread(retainer.run))
            next_retain = time.monotonic() + cfg.retain_every
        if alerter is not None and (alerting is None or alerting.done()) and time.monotonic() >= next_alert:
            alerting = asyncio.create_task(asyncio.to_thread(alert_pass))
            next_alert = time.monotonic() + cfg.alert_interval
        if http_task.done():
            break
    if retaining is not None:
        await retaining
    if alerting is not None:
        alerter.stop.set()  # ends a retry's back-off at once
        await alerting
    _log(f"stopping: refusing new exports (503 / UNAVAILABLE), auditing everything buffered (at most {cfg.drain_timeout:g}s)")
    await intake.stop()
    await grpc_server.stop(grace=2)
    await asyncio.to_thread(spool.close)
    # HTTP stays up while the workers drain: exporters get 503 + Retry-After, not connection refused
    code = await asyncio.to_thread(workers.finish, cfg.drain_timeout)
    http.should_exit = True
    await http_task
    spool.retire(workers.value)
    reporter.close()
    window_conn.close()
    if retainer is not None:
        retainer.close()
    if code == -1:
        _log(f"drain not finished in {cfg.drain_timeout:g}s (the store cannot be written?); "
             f"{intake.buffered()} acknowledged spans stay in the queue and are audited at the next start")
        return 1
    if code != 0:
        _log(f"audit worker exited with {code} while draining")
        return 1
    _log(f"stopped; {intake.buffered()} spans left unaudited")
    return 0


class _Retainer:
    """Retention by age and by size, run off the event loop every ``retain_every`` seconds."""

    def __init__(self, db: Path, cfg: ServeConfig):
        self.store = store.Store(db)
        self.cfg = cfg
        self.failing = False
        self.told = False

    def run(self) -> None:
        try:
            n = self.store.retain(self.cfg.retain_age, self.cfg.retain_bytes)
        except sqlite3.Error as e:  # e.g. a full disk: tried again at the next pass
            if not self.failing:
                _log(f"retention: cannot delete from the store ({e}); retrying")
            self.failing = True
            return
        self.failing = False
        if n and not self.told:
            self.told = True
            _log("retention: removing traces from the store as they age out (the report and /healthz say what window is covered)")

    def close(self) -> None:
        self.store.close()


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
