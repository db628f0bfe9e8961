"""SQLite (WAL) store: per-trace audit parts, findings, boundary hops and cost rollups.

One row per trace holds its spans and its ``Parts`` (``auditor.server.codec``: pickles of
our own frozen dataclasses, read back only by this package). Re-auditing a trace replaces its rows in the
same transaction that advances ``done_seq``, so a late span never double counts and a
crash between the two cannot happen. The report is rebuilt from the stored Parts with
``auditor.rollup.finish``: exact, like merging shards. The other tables are for queries
and metrics (findings by code, unattributed cost by key, boundaries).
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Iterable, Iterator

from auditor.model import Counts, Parts, Span
from auditor import rollup
from auditor.rules import LEAK
from auditor.server import codec

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v);
CREATE TABLE IF NOT EXISTS traces (
    trace_id TEXT PRIMARY KEY, n_spans INTEGER, n_findings INTEGER, audits INTEGER,
    audited_at REAL, spans BLOB, parts BLOB, version INTEGER);
CREATE INDEX IF NOT EXISTS traces_version ON traces(version);
CREATE TABLE IF NOT EXISTS findings (
    trace_id TEXT, code TEXT, severity TEXT, key TEXT, span_id TEXT, parent_span_id TEXT,
    boundary TEXT, message TEXT);
CREATE INDEX IF NOT EXISTS findings_trace ON findings(trace_id);
CREATE INDEX IF NOT EXISTS findings_code ON findings(code);
CREATE TABLE IF NOT EXISTS boundary_hops (
    trace_id TEXT, boundary TEXT, class TEXT, key TEXT, span_id TEXT, spans_affected INTEGER,
    llm_calls_affected INTEGER);
CREATE INDEX IF NOT EXISTS hops_trace ON boundary_hops(trace_id);
CREATE TABLE IF NOT EXISTS calls (
    trace_id TEXT, span_id TEXT, service TEXT, provider TEXT, model TEXT, cost_usd TEXT,
    key_values TEXT);
CREATE INDEX IF NOT EXISTS calls_trace ON calls(trace_id);
CREATE TABLE IF NOT EXISTS unattributed (trace_id TEXT, key TEXT, calls INTEGER, cost_usd REAL);
CREATE INDEX IF NOT EXISTS unattributed_trace ON unattributed(trace_id);
CREATE TABLE IF NOT EXISTS rejected (seq INTEGER PRIMARY KEY, n INTEGER);
CREATE TABLE IF NOT EXISTS rejected_content (digest BLOB PRIMARY KEY, n INTEGER, at REAL);
CREATE INDEX IF NOT EXISTS traces_audited_at ON traces(audited_at);
CREATE TABLE IF NOT EXISTS evicted (trace_id TEXT, version INTEGER);
CREATE INDEX IF NOT EXISTS evicted_version ON evicted(version);
"""


JOURNAL_LIMIT = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Audited:
    """One audited trace, ready to store: every span received so far and its parts."""

    trace_id: str
    spans: list[Span]
    parts: Parts


def connect(path: Path, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False, timeout=30, isolation_level=None)
    else:
        conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")  # done_seq lets queued exports go: it must be durable
        conn.execute(f"PRAGMA journal_size_limit={JOURNAL_LIMIT}")  # a checkpointed WAL gives its room back
        conn.executescript(SCHEMA)
    return conn


class Store:
    """The worker's writer."""

    def __init__(self, path: Path):
        self.path = path
        self.conn = connect(path)

    def done_seq(self, shard: int) -> int:
        return done_seq(self.conn, shard)

    def claim_schema(self, fingerprint: str, origin: str) -> str | None:
        """Record the schema this store's audits follow. Returns the origin of a different
        schema already recorded while traces are stored (the caller refuses to start: stored
        spans are projected for that schema and could not be audited afresh), else None."""
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        try:
            row = c.execute("SELECT v FROM meta WHERE k='schema'").fetchone()
            if row is not None:
                old = json.loads(row[0])
                if old["fingerprint"] != fingerprint and c.execute("SELECT 1 FROM traces LIMIT 1").fetchone():
                    c.execute("ROLLBACK")
                    return old["origin"]
            c.execute(
                "INSERT INTO meta VALUES ('schema', ?) ON CONFLICT(k) DO UPDATE SET v=excluded.v",
                (json.dumps({"fingerprint": fingerprint, "origin": origin}),),
            )
            c.execute("COMMIT")
        except BaseException:
            if c.in_transaction:
                c.execute("ROLLBACK")
            raise
        return None

    def max_done_seq(self) -> int:
        """The largest stored cursor: the queue never hands out a number at or below it."""
        rows = self.conn.execute("SELECT v FROM meta WHERE k LIKE 'done_seq.%'").fetchall()
        return max((int(v) for (v,) in rows), default=1)

    def reset_shards(self, shards: int) -> int:
        """Before the workers start: every shard resumes from the lowest stored done_seq
        (replaying a little more is harmless: a re-audit replaces), so the worker count may
        change between runs. Returns that sequence."""
        rows = self.conn.execute("SELECT v FROM meta WHERE k LIKE 'done_seq.%'").fetchall()
        start = min((int(v) for (v,) in rows), default=1)
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        c.execute("DELETE FROM meta WHERE k LIKE 'done_seq.%'")
        c.executemany("INSERT INTO meta VALUES (?, ?)", [(f"done_seq.{k}", start) for k in range(shards)])
        c.execute("COMMIT")
        return start

    def stored_spans(self, trace_ids: list[str]) -> dict[str, list[Span]]:
        """Spans of traces audited before (a late span re-opens them)."""
        out: dict[str, list[Span]] = {}
        for i in range(0, len(trace_ids), 500):
            chunk = trace_ids[i : i + 500]
            q = f"SELECT trace_id, spans FROM traces WHERE trace_id IN ({','.join('?' * len(chunk))})"
            for tid, blob in self.conn.execute(q, chunk):
                out[tid] = codec.loads(blob)
        return out

    def commit(self, audited: Iterable[Audited], reopened: set[str], rejected: dict[bytes, int], done_seq: int, shard: int = 0) -> None:
        """One transaction: replace the traces' rows, record rejected counts (once per request
        content: a retried export is not counted again), advance done_seq."""
        c = self.conn
        now = time.time()
        trace_rows, finding_rows, hop_rows, call_rows, un_rows = [], [], [], [], []
        for a in audited:
            p = a.parts
            trace_rows.append(
                (a.trace_id, p.counts.spans, len(p.findings), now, None,
                 codec.dumps(a.spans), codec.dumps(p))
            )
            for f in p.findings:
                b = str(f.boundary) if f.boundary else None
                finding_rows.append((a.trace_id, f.code, f.severity.value, f.key, f.span_id, f.parent_span_id, b, f.message))
                if f.code == LEAK and f.boundary is not None:
                    hop_rows.append((a.trace_id, b, f.boundary.cls.value, f.key, f.span_id, f.spans_affected, len(f.llm_calls_affected)))
            missing: dict[str, list] = {}
            for call in p.calls:
                call_rows.append(
                    (a.trace_id, call.span_id, call.service, call.provider, call.model,
                     None if call.cost_usd is None else str(call.cost_usd), json.dumps(dict(call.values), default=str))
                )
                for k in p.required_keys:
                    if call.values.get(k) is None:
                        m = missing.setdefault(k, [0, Decimal(0)])
                        m[0] += 1
                        if call.cost_usd is not None:
                            m[1] += call.cost_usd
            un_rows.extend((a.trace_id, k, n, float(cost)) for k, (n, cost) in missing.items())
        c.execute("BEGIN IMMEDIATE")
        try:
            v = version(c) + 1  # under the write lock: versions order the commits of all workers
            trace_rows = [(*r[:4], v, *r[5:]) for r in trace_rows]
            if reopened:
                ids = [(t,) for t in reopened]
                for table in ("findings", "boundary_hops", "calls", "unattributed"):
                    c.executemany(f"DELETE FROM {table} WHERE trace_id=?", ids)
            c.executemany(
                "INSERT INTO traces(trace_id, n_spans, n_findings, audits, audited_at, version, spans, parts) "
                "VALUES (?,?,?,1,?,?,?,?) ON CONFLICT(trace_id) DO UPDATE SET n_spans=excluded.n_spans, "
                "n_findings=excluded.n_findings, audits=audits+1, audited_at=excluded.audited_at, "
                "version=excluded.version, spans=excluded.spans, parts=excluded.parts",
                trace_rows,
            )
            c.executemany("INSERT INTO findings VALUES (?,?,?,?,?,?,?,?)", finding_rows)
            c.executemany("INSERT INTO boundary_hops VALUES (?,?,?,?,?,?,?)", hop_rows)
            c.executemany("INSERT INTO calls VALUES (?,?,?,?,?,?,?)", call_rows)
            c.executemany("INSERT INTO unattributed VALUES (?,?,?,?)", un_rows)
            c.executemany("INSERT OR IGNORE INTO rejected_content VALUES (?,?,?)", [(d, n, now) for d, n in rejected.items()])
            c.execute(
                "INSERT INTO meta VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v=excluded.v", (f"done_seq.{shard}", done_seq)
            )
            c.execute("INSERT INTO meta VALUES ('version', ?) ON CONFLICT(k) DO UPDATE SET v=excluded.v", (v,))
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise

    def retain(self, max_age: float | None, max_bytes: int | None, now: float | None = None, chunk: int = 2000) -> int:
        """Retention: delete the traces last audited more than ``max_age`` seconds ago, then
        the oldest ones while the store's live pages exceed ``max_bytes`` (down to 90% of it:
        SQLite reuses the freed pages, so the file stops growing). Each deletion is logged
        (``evicted``) so a reader drops those traces from its aggregates, and the window's
        start moves. Returns the traces evicted."""
        now = time.time() if now is None else now
        total = 0
        if max_age is not None:
            while True:
                ids = [t for (t,) in self.conn.execute(
                    "SELECT trace_id FROM traces WHERE audited_at < ? ORDER BY audited_at LIMIT ?", (now - max_age, chunk))]
                if not ids:
                    break
                total += self._evict(ids, now)
            self.conn.execute("DELETE FROM rejected_content WHERE at < ?", (now - max_age,))
        if max_bytes is not None:
            for _round in range(1000):
                excess = live_bytes(self.conn) - max_bytes
                if excess <= 0:
                    break
                want = excess + max_bytes // 10
                ids, got = [], 0
                for tid, n in self.conn.execute(
                    "SELECT trace_id, length(spans) + length(parts) FROM traces ORDER BY audited_at LIMIT ?", (chunk,)
                ):
                    ids.append(tid)
                    got += 2 * (n or 0)  # the other tables and indexes hold about as much again
                    if got >= want:
                        break
                if not ids:
                    break
                total += self._evict(ids, now)
        if total:
            # the log serves readers that last looked within 10,000 store versions; older ones reload
            floor = self.conn.execute(
                "SELECT COALESCE(MAX(version), 0) FROM evicted WHERE version <= ?", (version(self.conn) - 10_000,)
            ).fetchone()[0]
            if floor:
                self._set_meta("evicted_log_floor", floor, prune=True)
        return total

    def _evict(self, ids: list[str], now: float) -> int:
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        try:
            v = version(c) + 1
            q = ",".join("?" * len(ids))
            (spans, newest) = c.execute(
                f"SELECT COALESCE(SUM(n_spans), 0), MAX(audited_at) FROM traces WHERE trace_id IN ({q})", ids
            ).fetchone()
            for table in ("traces", "findings", "boundary_hops", "calls", "unattributed"):
                c.execute(f"DELETE FROM {table} WHERE trace_id IN ({q})", ids)
            c.executemany("INSERT INTO evicted VALUES (?, ?)", [(t, v) for t in ids])
            for k, add in (("evicted_traces", len(ids)), ("evicted_spans", spans)):
                c.execute("INSERT INTO meta VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v=v+excluded.v", (k, add))
            c.execute("INSERT INTO meta VALUES ('evicted_before', ?) ON CONFLICT(k) DO UPDATE SET v=MAX(v, excluded.v)", (newest,))
            c.execute("INSERT INTO meta VALUES ('version', ?) ON CONFLICT(k) DO UPDATE SET v=excluded.v", (v,))
            c.execute("COMMIT")
        except BaseException:
            if c.in_transaction:
                c.execute("ROLLBACK")
            raise
        return len(ids)

    def _set_meta(self, k: str, v, prune: bool = False) -> None:
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        try:
            c.execute("INSERT INTO meta VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v=excluded.v", (k, v))
            if prune:
                c.execute("DELETE FROM evicted WHERE version <= ?", (v,))
            c.execute("COMMIT")
        except BaseException:
            if c.in_transaction:
                c.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self.conn.close()


# ---------------------------------------------------------------- read side (the web process)


def done_seq(conn: sqlite3.Connection, shard: int) -> int:
    """The first spool sequence a shard has not yet fully stored: its replay starts here."""
    row = conn.execute("SELECT v FROM meta WHERE k=?", (f"done_seq.{shard}",)).fetchone()
    return int(row[0]) if row else 1


def version(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT v FROM meta WHERE k='version'").fetchone()
    return int(row[0]) if row else 0


def changed_parts(conn: sqlite3.Connection, since: int) -> Iterator[tuple[str, Parts]]:
    """(trace id, parts) of every trace stored or re-audited after store version ``since``."""
    for tid, blob in conn.execute("SELECT trace_id, parts FROM traces WHERE version > ?", (since,)):
        yield tid, codec.loads(blob)


def live_bytes(conn: sqlite3.Connection) -> int:
    """Bytes of the store's pages in use (the file keeps freed pages for reuse)."""
    (pages,) = conn.execute("PRAGMA page_count").fetchone()
    (free,) = conn.execute("PRAGMA freelist_count").fetchone()
    (size,) = conn.execute("PRAGMA page_size").fetchone()
    return (pages - free) * size


def evicted_since(conn: sqlite3.Connection, since: int) -> list[str] | None:
    """Traces removed by retention after store version ``since``; ``None`` when the log no
    longer reaches back that far (the reader must then read everything again)."""
    row = conn.execute("SELECT v FROM meta WHERE k='evicted_log_floor'").fetchone()
    if row is not None and since < int(row[0]):
        return None
    return [t for (t,) in conn.execute("SELECT trace_id FROM evicted WHERE version > ?", (since,))]


def window(conn: sqlite3.Connection) -> dict:
    """What the stored audits cover: traces last audited from ``since`` to ``until`` (unix
    seconds); ``evicted_*`` says what retention removed before it (0 when nothing was)."""
    since, until = conn.execute("SELECT MIN(audited_at), MAX(audited_at) FROM traces").fetchone()
    meta = dict(conn.execute("SELECT k, v FROM meta WHERE k IN ('evicted_traces', 'evicted_spans', 'evicted_before')"))
    return {
        "since": since,
        "until": until,
        "evicted_traces": int(meta.get("evicted_traces") or 0),
        "evicted_spans": int(meta.get("evicted_spans") or 0),
        "evicted_before": meta.get("evicted_before"),
    }


def rejected_spans(conn: sqlite3.Connection) -> int:
    """Spans rejected by the workers (``rejected``: counted per spool record, before issue 19)."""
    (n,) = conn.execute(
        "SELECT (SELECT COALESCE(SUM(n), 0) FROM rejected) + (SELECT COALESCE(SUM(n), 0) FROM rejected_content)"
    ).fetchone()
    return int(n)


def merge_all(parts: Iterable[Parts], empty: Parts) -> Parts:
    """Per-trace parts merged with ``rollup.merge_all`` (pairwise, so the concatenations cost
    n log n); ``empty`` is the plan's empty parts carrying the rejected-span count."""
    return rollup.merge_all([empty, *parts])


def combined_parts(conn: sqlite3.Connection, empty: Parts) -> Parts:
    """Everything stored, as one Parts (``empty``: the plan's, see ``Plan.empty_parts``)."""
    from dataclasses import replace

    return merge_all((p for _t, p in changed_parts(conn, -1)), replace(empty, counts=Counts(0, 0, rejected_spans(conn))))


def stats(conn: sqlite3.Connection) -> dict:
    """What /metrics and /healthz show that lives in the store."""
    traces, audits = conn.execute("SELECT COUNT(*), COALESCE(SUM(audits), 0) FROM traces").fetchone()
    by_code = dict(conn.execute("SELECT code, COUNT(*) FROM findings GROUP BY code"))
    unattributed = dict(conn.execute("SELECT key, SUM(cost_usd) FROM unattributed GROUP BY key"))
    rejected = rejected_spans(conn)
    return {
        "traces": traces,
        "audits": audits,
        "findings_by_code": by_code,
        "unattributed_usd": unattributed,
        "rejected_spans": rejected,
    }
