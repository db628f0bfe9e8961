"""The durable queue between the receivers and the audit workers: a SQLite table.

An export is acknowledged only once its row is committed (WAL, ``synchronous=FULL``: the
commit returns after the fsync). One writer thread commits every pending export in one
transaction (group commit), then resolves all their futures. SQLite makes each commit all
or nothing, through kill -9, power loss, a full disk or a short write: a refused export
leaves no trace and uses no number.

Numbers (``seq``) only grow: the table is AUTOINCREMENT (SQLite keeps the high-water mark
even when every row is deleted), and on open it is raised to at least ``floor``, the largest
cursor a worker has stored, so a number is never handed out twice. The workers store their
cursors with their findings (``auditor.server.store``); rows below every cursor are deleted
(retirement is a ``DELETE``). Replaces the hand-written spool (issue 19); a data dir left by
it is imported on open (``auditor.server.spool``).

With several audit workers, a traces export is split by shard once, by the receiver
(``auditor.server.split``): its ``records`` row then holds a small header and each shard's
spans are a row of ``pieces`` (same ``seq``, committed in the same transaction), so a worker
reads only its own shard's bytes. Rows written before (one whole export per row, read and
filtered by every worker) are still read as they were.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

NAME = "queue.sqlite3"
SPLIT_KIND = 5  # a traces export split by shard (auditor.server.split.KIND): header here, spans in pieces
PAGE_SIZE = 16384  # exports are blobs of KiBs to MiBs: fewer, larger pages than the default 4 KiB
WAL_PAGES = 256  # checkpoint the WAL at 4 MiB (the default 1000 pages would be 16 MiB)
RESERVE_MAX = 256 * 1024 * 1024  # refuse exports while less than this (or a quarter of the disk) is free:
# the workers need room to store their audits, which lets the queue's rows go and their pages be reused

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, kind INTEGER NOT NULL, items INTEGER NOT NULL, payload BLOB NOT NULL);
"""
# created with the first split export, in its transaction: a data dir that never needs it keeps
# the layout (and the room on a small disk) it had before
PIECES = """
CREATE TABLE IF NOT EXISTS pieces (
    seq INTEGER NOT NULL, shard INTEGER NOT NULL, payload BLOB NOT NULL, PRIMARY KEY (seq, shard));
"""


@dataclass(frozen=True, slots=True)
class Record:
    seq: int
    kind: int  # which signal and encoding (see auditor.server.signals)
    items: int  # spans (or log records) the receiver accepted from it
    payload: bytes
    # a split export (``auditor.server.split``): the pieces this reader must decode, by shard
    pieces: tuple[tuple[int, bytes], ...] = ()
    size: int = 0  # its bytes in the queue (on the writer's list of records not yet retired)


class QueueFull(Exception):
    """The disk (or the file system's quota) is full: the export is refused, retryable."""


def connect(path: Path, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30, isolation_level=None, check_same_thread=False)
    else:
        conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA page_size={PAGE_SIZE}")  # exports are blobs of tens to hundreds of KiB
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")  # an acknowledged export is on disk
        try:  # on a small disk the WAL is checkpointed sooner (its file keeps its largest size)
            st = os.statvfs(path.parent)
            pages = max(16, min(WAL_PAGES, st.f_blocks * st.f_frsize // (16 * PAGE_SIZE)))
        except OSError:
            pages = WAL_PAGES
        conn.execute(f"PRAGMA wal_autocheckpoint={pages}")
        conn.execute(f"PRAGMA journal_size_limit={pages * PAGE_SIZE}")  # a checkpointed WAL gives its room back
        conn.executescript(SCHEMA)
    return conn


def _is_full(e: BaseException) -> bool:
    return isinstance(e, QueueFull) or isinstance(e, sqlite3.OperationalError) and "full" in str(e) or (
        isinstance(e, OSError) and e.errno in (28, 122)  # ENOSPC, EDQUOT
    )


class QueueWriter:
    """Group commit: one writer thread inserts every pending export in one transaction, then
    resolves all their futures. Callers await ``append``; nothing is acknowledged earlier."""

    def __init__(self, path: Path, on_commit: Callable[[int], None] | None = None, floor: int = 1,
                 legacy_spool: Path | None = None):
        self.path = path
        self.on_commit = on_commit
        self._pending: list = []
        self._cv = threading.Condition()
        self._closing = False
        self._retire_below = 0
        self._thread: threading.Thread | None = None
        self.conn = connect(path)
        self.has_pieces = has_pieces(self.conn)
        if legacy_spool is not None:
            from auditor.server.spool import import_segments

            import_segments(legacy_spool, self.conn)
        (high,) = self.conn.execute(
            "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name='records'), 0),"
            " COALESCE((SELECT MAX(seq) FROM records), 0))"
        ).fetchone()
        self.next_seq = max(high + 1, floor, 1)
        pieces = (" + COALESCE((SELECT SUM(length(p.payload)) FROM pieces p WHERE p.seq = records.seq), 0)"
                  if self.has_pieces else "")
        self.unconsumed = [Record(s, k, n, b"", size=b) for s, k, n, b in self.conn.execute(
            f"SELECT seq, kind, items, length(payload){pieces} FROM records ORDER BY seq")]
        self.full = False  # the last commit failed for want of space (cleared by the next success)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="queue-writer", daemon=True)
        self._thread.start()

    @property
    def last_seq(self) -> int:
        return self.next_seq - 1

    def append(self, kind: int, items: int, payload: bytes, pieces: dict[int, bytes] | None = None) -> asyncio.Future:
        """Queue an export (``pieces``: its spans by shard, for a split one); the returned
        future resolves to its seq once it is committed, pieces and all."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        with self._cv:
            if self._closing:
                raise RuntimeError("queue is closed")
            self._pending.append(((kind, items, payload, pieces), fut, loop))
            self._cv.notify()
        return fut

    def retire(self, done_seq: int) -> None:
        """Ask the writer thread to delete the rows below ``done_seq`` (every worker is past them)."""
        with self._cv:
            if done_seq > self._retire_below:
                self._retire_below = done_seq
                self._cv.notify()

    def _run(self) -> None:
        retired = 0
        while True:
            with self._cv:
                while not self._pending and not self._closing and self._retire_below <= retired:
                    self._cv.wait()
                batch, self._pending = self._pending, []
                retire_below = self._retire_below
                last = not batch and self._closing
            if batch:
                try:
                    results = self._write(batch)
                except BaseException as e:  # disk full, I/O error: these exports fail (retryable)
                    self._resync()
                    self.full = _is_full(e)
                    err: Exception = (e if isinstance(e, QueueFull) else QueueFull(str(e))) if self.full else (e if isinstance(e, Exception) else RuntimeError(str(e)))
                    for _rec, fut, loop in batch:
                        _resolve(loop, _set_exc, fut, err)
                else:
                    self.full = False
                    if self.on_commit is not None:
                        self.on_commit(self.last_seq)
                    for (_rec, fut, loop), seq in zip(batch, results):
                        _resolve(loop, _set_result, fut, seq)
            if retire_below > retired:
                try:
                    with _transaction(self.conn):
                        self.conn.execute("DELETE FROM records WHERE seq < ?", (retire_below,))
                        if self.has_pieces:
                            self.conn.execute("DELETE FROM pieces WHERE seq < ?", (retire_below,))
                    retired = retire_below
                except sqlite3.Error:
                    retired = retire_below  # tried again when the cursor next moves
            if last:
                break
        self.conn.close()

    def _write(self, batch) -> list[int]:
        self._check_room(sum(record_bytes(p, ps) for (_k, _i, p, ps), _f, _l in batch))
        first = self.next_seq
        rows = [(first + i, kind, items, payload) for i, ((kind, items, payload, _ps), _f, _l) in enumerate(batch)]
        pieces = [(first + i, k, b) for i, ((_k, _i, _p, ps), _f, _l) in enumerate(batch) if ps for k, b in ps.items()]
        with _transaction(self.conn):
            self.conn.executemany("INSERT INTO records(seq, kind, items, payload) VALUES (?,?,?,?)", rows)
            if pieces:
                if not self.has_pieces:
                    self.conn.execute(PIECES)
                self.conn.executemany("INSERT INTO pieces(seq, shard, payload) VALUES (?,?,?)", pieces)
        if pieces:
            self.has_pieces = True  # only once committed
        self.next_seq = first + len(rows)  # only once committed
        return [r[0] for r in rows]

    def _resync(self) -> None:
        """After a failed commit: a commit whose fsync failed may still have landed (SQLite
        cannot always tell); never hand out its numbers again (a client retry of it is an
        exact re-delivery, folded by the workers)."""
        try:
            (high,) = self.conn.execute("SELECT COALESCE(MAX(seq), 0) FROM records").fetchone()
        except sqlite3.Error:
            return
        if high >= self.next_seq:
            self.next_seq = high + 1
            if self.on_commit is not None:
                self.on_commit(self.last_seq)

    def _check_room(self, nbytes: int) -> None:
        """Refuse before the disk is full, keeping a reserve for the store (never written into)."""
        try:
            st = os.statvfs(self.path.parent)
        except OSError:
            return
        free, total = st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize
        reserve = min(total // 4, RESERVE_MAX)
        if free - 2 * nbytes - 8 * PAGE_SIZE < reserve:  # the WAL (a few pages more), then the checkpoint into the table
            raise QueueFull(f"{free} bytes free on the data dir's disk, {reserve} kept in reserve for the store")

    def close(self) -> None:
        """Commit what is queued, then stop; idempotent."""
        with self._cv:
            self._closing = True
            self._cv.notify()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        elif self.conn is not None:
            try:
                self.conn.close()
            except sqlite3.Error:
                pass


def has_pieces(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='pieces'").fetchone() is not None


def record_bytes(payload: bytes, pieces: dict[int, bytes] | None) -> int:
    """What an export takes in the queue (its payload and pieces, without SQLite's overhead)."""
    return len(payload) + (sum(map(len, pieces.values())) if pieces else 0)


class _transaction:
    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self):
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, et, e, tb):
        if et is None:
            self.conn.execute("COMMIT")
        else:
            try:
                self.conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # SQLite already rolled back (e.g. SQLITE_FULL)
        return False


def _resolve(loop: asyncio.AbstractEventLoop, how, fut: asyncio.Future, v) -> None:
    try:
        loop.call_soon_threadsafe(how, fut, v)
    except RuntimeError:  # its loop is closed: nobody awaits this export any more
        pass


def _set_result(fut: asyncio.Future, v) -> None:
    if not fut.done():
        fut.set_result(v)


def _set_exc(fut: asyncio.Future, e: Exception) -> None:
    if not fut.done():
        fut.set_exception(e)


class QueueReader:
    """A worker's cursor: yields records from ``from_seq`` on, up to the committed seq. The
    reader of shard ``shard`` (of ``shards``) gets, of a split export, only its own piece;
    the worker checks the export was split for as many shards (else it reads every piece)."""

    def __init__(self, path: Path, from_seq: int, shard: int = 0):
        self.path = path
        self.conn: sqlite3.Connection | None = None  # opened on the first read (the writer creates the file)
        self.next_seq = from_seq
        self.shard = shard

    def read(self, upto_seq: int, max_items: int) -> list[Record]:
        out: list[Record] = []
        items = 0
        if self.conn is None:
            self.conn = connect(self.path, readonly=True)
        first = self.next_seq
        cur = self.conn.execute(
            "SELECT seq, kind, items, payload FROM records WHERE seq >= ? AND seq <= ? ORDER BY seq",
            (self.next_seq, upto_seq),
        )
        split_rows = False
        try:
            for seq, kind, n, payload in cur:
                out.append(Record(seq, kind, n, payload))
                split_rows = split_rows or kind == SPLIT_KIND
                items += max(n, 1)
                self.next_seq = seq + 1
                if items >= max_items:
                    break
        finally:
            cur.close()  # ends the read transaction: the WAL can be checkpointed past it
        if self.next_seq <= upto_seq and not out:
            # every number up to upto was committed; missing ones are numbers never used
            self.next_seq = upto_seq + 1
        if split_rows:  # the table exists: a split row is committed with its pieces
            mine = dict(self.conn.execute(
                "SELECT seq, payload FROM pieces WHERE seq >= ? AND seq < ? AND shard = ?", (first, self.next_seq, self.shard)))
            out = [Record(r.seq, r.kind, r.items, r.payload, ((self.shard, mine[r.seq]),) if r.seq in mine else ())
                   if r.kind == SPLIT_KIND else r for r in out]
        return out

    def all_pieces(self, seq: int) -> tuple[tuple[int, bytes], ...]:
        """Every piece of a split export (read when it was split for another worker count)."""
        if self.conn is None:
            self.conn = connect(self.path, readonly=True)
        return tuple(self.conn.execute("SELECT shard, payload FROM pieces WHERE seq = ? ORDER BY shard", (seq,)))

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
