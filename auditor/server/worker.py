"""An audit worker: a separate process that turns queued exports into stored audits.
Queue (``auditor.server.queue``) -> decode (Plan.projection) -> window -> assemble.build ->
engine.audit_traces (the pipeline's plan) -> store.

With ``--workers N`` each worker audits the traces whose id hashes to its shard, so a trace is
always audited whole by one worker. A traces protobuf export was split by shard once, by the
receiver (``auditor.server.split``): the worker reads and decodes only its own piece. Other
records (JSON, logs, rows queued before the split existed, or split for another worker
count) are decoded whole and filtered, as before. It commits the audited traces,
the rejected-span counts (shard 0 only, once per request content) and its ``done_seq`` (the
lowest queue number whose spans it still holds only in memory) in one SQLite transaction, then
publishes ``done_seq`` so the receiving process can delete queued exports and count the
buffer. Started fresh it resumes from the stored ``done_seq``: that is the replay. While the
store cannot be written (a full disk) it keeps what it holds and retries with back-off.
"""

from __future__ import annotations

import ctypes
import hashlib
import fcntl
import os
import signal
import sqlite3
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from auditor import assemble
from auditor.engine import audit_traces
from auditor.model import Span
from auditor.plan import Plan
from auditor.server.decode import DECODERS
from auditor.server.signals import TRACES
from auditor.server import queue, split
from auditor.server.store import Audited, Store
from auditor.server.window import Window

READ_BATCH = 20_000  # spans per read: bounds the time between window ticks
TICK = 0.02
MAX_WINDOW_SPANS = 200_000  # what bounds a worker's memory (the buffer itself is on disk)
NICE = 5  # acknowledging comes first: an audit worker yields the CPU to the receiver (the queue absorbs the lag)
BACKOFF_MAX = 5.0  # seconds between attempts to commit while the store cannot be written

# the worker's state, published in a shared integer (no semaphores: nothing to leak on kill -9)
STARTING, RUNNING, STALLED = 0, 1, 2
EXIT_STORE = 3  # the store could not be opened: one line on stderr, the parent restarts us later


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    data_dir: str
    schema_ref: str | None
    idle: float
    max_age: float
    max_window_spans: int = MAX_WINDOW_SPANS  # stop reading the queue while this many spans wait in memory
    shard: int = 0  # this worker audits the traces whose id hashes to ``shard`` ...
    shards: int = 1  # ... of this many: each trace lands whole on one worker


def shard_of(trace_id: str, shards: int) -> int:
    return int(trace_id[:8], 16) % shards


def paths(data_dir: str | Path) -> tuple[Path, Path]:
    d = Path(data_dir)
    return d / "spool", d / "auditor.sqlite3"


def _die_with_parent() -> None:
    """kill -9 of the sidecar must not leave a worker writing the store behind it."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def main(cfg: WorkerConfig, committed, done, drain, state, parent_pid: int) -> None:
    """``drain`` and ``state`` are shared integers: drain != 0 asks us to audit everything
    read and stop; we set ``state`` to RUNNING, or STALLED while commits fail (disk full)."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if os.getppid() != parent_pid:
        return
    try:
        os.nice(NICE)
    except OSError:
        pass
    spool_dir, db = paths(cfg.data_dir)
    lock = open(Path(cfg.data_dir) / f"worker-{cfg.shard}.lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)  # a previous worker may still be on its way out
    plan = Plan.of(cfg.schema_ref)  # the pipeline's plan: traces are read as 'check' reads them
    try:
        store = Store(db)
    except (sqlite3.Error, OSError) as e:
        print(f"auditor serve: audit worker {cfg.shard}: cannot open the store {db}: {e}", file=sys.stderr, flush=True)
        state.value = STALLED
        sys.exit(EXIT_STORE)
    try:
        Worker(cfg, plan, store, spool_dir).run(committed, done, drain, state, parent_pid)
    finally:
        store.close()


class Worker:
    def __init__(self, cfg: WorkerConfig, plan: Plan, store: Store, spool_dir: Path):
        self.plan = plan
        self.projection = plan.projection
        self.store = store
        self.window = Window(cfg.idle, cfg.max_age)
        self.max_window = cfg.max_window_spans
        self.shard, self.shards = cfg.shard, cfg.shards
        self.reader = queue.QueueReader(spool_dir.parent / queue.NAME, store.done_seq(cfg.shard), cfg.shard)
        self.rejected: dict[bytes, int] = {}  # payload digest -> spans rejected in it

    def run(self, committed, done, drain, state, parent_pid: int) -> None:
        done_seq = self.reader.next_seq
        done.value = done_seq
        state.value = RUNNING
        stalled: tuple | None = None  # (due, low) whose commit failed: retried before anything else
        backoff = 0.0
        while True:
            if stalled is not None:
                if os.getppid() != parent_pid:
                    return
                try:
                    self.commit(*stalled)
                except (sqlite3.OperationalError, OSError) as e:
                    backoff = min(max(backoff * 2, 0.1), BACKOFF_MAX)
                    if state.value != STALLED:
                        state.value = STALLED
                        print(f"auditor serve: audit worker {self.shard}: cannot write the store ({e}); "
                              f"retrying every {BACKOFF_MAX:g}s at most, nothing is lost (the queue keeps it)",
                              file=sys.stderr, flush=True)
                    time.sleep(backoff)
                    continue
                done_seq = stalled[1]
                done.value = done_seq
                stalled, backoff = None, 0.0
                state.value = RUNNING
                print(f"auditor serve: audit worker {self.shard}: writing the store again", file=sys.stderr, flush=True)
            draining = bool(drain.value)
            upto = committed.value
            n = self.consume(upto) if self.window.spans < self.max_window else 0
            caught_up = self.reader.next_seq > upto
            # draining: audit all that is read; a full window is emptied so reading can go on
            flush_all = draining and (caught_up or self.window.spans >= self.max_window)
            due = self.window.due(time.monotonic(), everything=flush_all)
            low = self.window.low_seq(self.reader.next_seq)
            if due or self.rejected or low != done_seq:
                try:
                    self.commit(due, low)
                except (sqlite3.OperationalError, OSError):
                    stalled = (due, low)  # the traces stay in memory and in the queue; back off
                    continue
                done_seq = low
                done.value = low
            if draining and caught_up and not len(self.window):
                return
            if not n and not due:
                if os.getppid() != parent_pid:
                    return
                time.sleep(TICK)

    def consume(self, upto: int) -> int:
        recs = self.reader.read(upto, READ_BATCH)
        now = time.monotonic()
        for r in recs:
            where = f"spool record {r.seq}"
            if r.kind == split.KIND:
                spans, mine = self._split(r, where)
            else:
                try:
                    spans, rejected = DECODERS[r.kind](r.payload, self.projection, where)
                except Exception as e:  # the receiver checked it; a failure here is a bug, not a stop
                    print(f"auditor serve: {where}: cannot decode ({type(e).__name__}: {e}); counted as rejected", file=sys.stderr)
                    spans, rejected = [], [None] * max(r.items, 1)
                if rejected and self.shard == 0:  # counted once, by the first shard, and once per content:
                    self.rejected[hashlib.blake2b(r.payload, digest_size=16).digest()] = len(rejected)  # a retry is no new span
                mine = self.shards == 1
            if not mine:
                k, n = self.shard, self.shards
                spans = [s for s in spans if int(s.trace_id[:8], 16) % n == k]
            self.window.add(spans, r.seq, now)
        return len(recs)

    def _split(self, r: queue.Record, where: str) -> tuple[list[Span], bool]:
        """A split export: (spans of the pieces read, whether they are all this shard's)."""
        try:
            head = split.unpack(r.payload)
        except ValueError as e:  # written by this version's receiver: a failure here is a bug
            print(f"auditor serve: {where}: cannot read ({e}); counted as rejected", file=sys.stderr)
            if self.shard == 0:
                self.rejected[hashlib.blake2b(r.payload, digest_size=16).digest()] = max(r.items, 1)
            return [], True
        if head.rejected and self.shard == 0:  # as for a whole export: the first shard, once per body
            self.rejected[head.digest] = head.rejected
        mine = head.shards == self.shards
        pieces = r.pieces if mine else self.reader.all_pieces(r.seq)  # split for another worker count
        spans: list[Span] = []
        for k, piece in pieces:
            try:
                got, _none = DECODERS[TRACES.kind_proto](piece, self.projection, f"{where} piece {k}")
            except Exception as e:
                print(f"auditor serve: {where} piece {k}: cannot decode ({type(e).__name__}: {e}); skipped", file=sys.stderr)
                continue
            spans.extend(got)
        return spans, mine

    def commit(self, due: list[tuple[str, list[Span]]], low: int) -> None:
        prior = self.store.stored_spans([tid for tid, _ in due]) if due else {}
        audited = []
        for tid, spans in due:
            old = prior.get(tid)
            spans = _unique(old + spans if old else spans)
            audited.append(Audited(tid, spans, audit_traces([assemble.build(tid, spans)], self.plan)))
        self.store.commit(audited, set(prior), self.rejected, low, self.shard)
        self.rejected = {}


def _unique(spans: list[Span]) -> list[Span]:
    """Drop exact re-deliveries (OTLP is at-least-once); keep conflicting ones for TRACE002."""
    seen = set()
    out = []
    for s in spans:
        k = (s.span_id, s.identity())
        if k not in seen:
            seen.add(k)
            out.append(s)
    return out
