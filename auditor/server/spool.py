"""Append-only spool on disk: an export is acknowledged only once its record is fsynced here.

Records carry a sequence number; the audit worker consumes them in order and records in
SQLite (in the same transaction as the findings) the lowest sequence it still needs. On
start, everything from that sequence on is replayed. Segments wholly below it are deleted.

Record layout (big-endian): payload length u32, crc32 u32 (of everything after it), seq u64,
kind u8, items u32, payload. A torn tail (kill -9 mid-write) fails its length or CRC check
and is cut off on open; it was never acknowledged.
"""

from __future__ import annotations

import asyncio
import os
import struct
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

HEADER = struct.Struct(">IIQBI")
_TAIL = struct.Struct(">QBI")
SEGMENT_BYTES = 64 * 1024 * 1024
SUFFIX = ".spool"


@dataclass(frozen=True, slots=True)
class Record:
    seq: int
    kind: int  # which signal and encoding (see auditor.server.signals)
    items: int  # spans (or log records) the receiver accepted from it
    payload: bytes


def _segment_name(first_seq: int) -> str:
    return f"{first_seq:020d}{SUFFIX}"


def segments(directory: Path) -> list[tuple[int, Path]]:
    out = []
    for p in directory.glob(f"*{SUFFIX}"):
        try:
            out.append((int(p.name[: -len(SUFFIX)]), p))
        except ValueError:
            continue
    return sorted(out)


def read_records(path: Path, *, with_payload: bool = True, start: int = 0) -> Iterator[tuple[int, Record]]:
    """(end offset, record) for each intact record from ``start``; stops at a torn tail."""
    with open(path, "rb") as fh:
        fh.seek(start)
        off = start
        while True:
            head = fh.read(HEADER.size)
            if len(head) < HEADER.size:
                return
            n, crc, seq, kind, items = HEADER.unpack(head)
            payload = fh.read(n)
            if len(payload) < n or zlib.crc32(payload, zlib.crc32(head[8:])) != crc:
                return
            off += HEADER.size + n
            yield off, Record(seq, kind, items, payload if with_payload else b"")


class SpoolWriter:
    """Group commit: one writer thread writes every pending record, fsyncs once, then
    resolves all their futures. Callers await ``append``; nothing is acknowledged earlier."""

    def __init__(self, directory: Path, segment_bytes: int = SEGMENT_BYTES, on_commit: Callable[[int], None] | None = None,
                 floor: int = 1):
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.segment_bytes = segment_bytes
        self.on_commit = on_commit
        self._pending: list[tuple[bytes, asyncio.Future, asyncio.AbstractEventLoop]] = []
        self._cv = threading.Condition()
        self._closing = False
        self._thread: threading.Thread | None = None
        self._fh = None
        self._size = 0
        self.next_seq = 1
        self.unconsumed: list[Record] = []  # headers of records found on open (payload dropped)
        self._open_existing(floor)

    def _open_existing(self, floor: int) -> None:
        """Replay what is on disk. The next number is at least: the last record + 1, the
        newest segment's first number (a roll may leave it empty) and ``floor`` (the largest
        stored cursor): a number at or below a cursor would be skipped by the workers."""
        segs = segments(self.dir)
        self.next_seq = max(1, floor, segs[-1][0] if segs else 1)
        if not segs:
            return
        with open(segs[-1][1], "rb+") as fh:  # a tail written but never fsynced is not replayed unsynced
            os.fsync(fh.fileno())
        for _first, path in segs:
            good = 0
            for end, rec in read_records(path, with_payload=False):
                good = end
                self.unconsumed.append(rec)
                self.next_seq = max(self.next_seq, rec.seq + 1)
            if good < path.stat().st_size:
                with open(path, "r+b") as fh:  # cut the torn tail: it was never acknowledged
                    fh.truncate(good)
                    os.fsync(fh.fileno())

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="spool-writer", daemon=True)
        self._thread.start()

    @property
    def last_seq(self) -> int:
        return self.next_seq - 1

    def append(self, kind: int, items: int, payload: bytes) -> asyncio.Future:
        """Queue a record; the returned future resolves to its seq once it is on disk."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        with self._cv:
            if self._closing:
                raise RuntimeError("spool is closed")
            self._pending.append(((kind, items, payload), fut, loop))
            self._cv.notify()
        return fut

    def _roll(self) -> None:
        if self._fh is not None:
            self._fh.close()
        path = self.dir / _segment_name(self.next_seq)
        self._fh = open(path, "ab", buffering=0)
        self._size = self._fh.tell()
        _fsync_dir(self.dir)

    def _run(self) -> None:
        segs = segments(self.dir)
        if segs and segs[-1][1].stat().st_size < self.segment_bytes:
            self._fh = open(segs[-1][1], "ab", buffering=0)
            self._size = self._fh.tell()
        while True:
            with self._cv:
                while not self._pending and not self._closing:
                    self._cv.wait()
                batch, self._pending = self._pending, []
                if not batch and self._closing:
                    break
            try:
                results = self._write(batch)
            except BaseException as e:  # disk full, I/O error: fail these exports (retryable)
                for _rec, fut, loop in batch:
                    loop.call_soon_threadsafe(_set_exc, fut, e)
                continue
            if self.on_commit is not None:
                self.on_commit(self.last_seq)
            for (_rec, fut, loop), seq in zip(batch, results):
                loop.call_soon_threadsafe(_set_result, fut, seq)
        if self._fh is not None:
            self._fh.close()

    def _write(self, batch) -> list[int]:
        """All or nothing per segment: a failed or short write is cut back to the last good
        offset and raises; numbers advance only once the bytes are on disk."""
        seqs = []
        chunks = []
        seq, size = self.next_seq, self._size
        for (kind, items, payload), _fut, _loop in batch:
            if self._fh is None or size >= self.segment_bytes:
                if chunks:
                    self._flush(chunks, seq, size)
                    chunks = []
                self._roll()
                size = self._size
            tail = _TAIL.pack(seq, kind, items)
            crc = zlib.crc32(payload, zlib.crc32(tail))
            rec = struct.pack(">II", len(payload), crc) + tail
            chunks.append(rec)
            chunks.append(payload)
            size += len(rec) + len(payload)
            seqs.append(seq)
            seq += 1
        self._flush(chunks, seq, size)
        return seqs

    def _flush(self, chunks: list[bytes], next_seq: int, size: int) -> None:
        fd = self._fh.fileno()
        data = memoryview(b"".join(chunks))
        try:
            while data:
                n = os.write(fd, data)  # a short write (disk nearly full) goes on with the rest
                data = data[n:]
            os.fdatasync(fd)
        except BaseException:
            try:
                os.ftruncate(fd, self._size)  # no torn record may stay in front of later ones
                os.fsync(fd)
                os.lseek(fd, self._size, os.SEEK_SET)
            except OSError:
                self._fh.close()  # cannot even cut: the next write starts a new segment
                self._fh = None
            raise
        self._size = size
        self.next_seq = next_seq

    def retire(self, done_seq: int) -> int:
        """Delete segments whose records all lie below ``done_seq`` (never the open one)."""
        segs = segments(self.dir)
        removed = 0
        for (first, path), (next_first, _p) in zip(segs, segs[1:]):
            if next_first <= done_seq:
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    def close(self) -> None:
        """Write what is queued, then stop; idempotent."""
        with self._cv:
            self._closing = True
            self._cv.notify()
        if self._thread is not None:
            self._thread.join()
            self._thread = None


def _set_result(fut: asyncio.Future, v) -> None:
    if not fut.done():
        fut.set_result(v)


def _set_exc(fut: asyncio.Future, e: BaseException) -> None:
    if not fut.done():
        fut.set_exception(e if isinstance(e, Exception) else RuntimeError(str(e)))


def _fsync_dir(d: Path) -> None:
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SpoolReader:
    """The worker's cursor: yields records from ``from_seq`` on, up to the committed seq."""

    def __init__(self, directory: Path, from_seq: int):
        self.dir = directory
        self.next_seq = from_seq
        self._path: Path | None = None
        self._offset = 0

    def read(self, upto_seq: int, max_items: int) -> list[Record]:
        out: list[Record] = []
        items = 0
        while self.next_seq <= upto_seq and items < max_items:
            if self._path is None or not self._path.exists():
                self._path = self._locate(self.next_seq)
                self._offset = 0
                if self._path is None:
                    break
            progressed = False
            for end, rec in read_records(self._path, start=self._offset):
                if rec.seq > upto_seq:
                    break
                self._offset = end
                progressed = True
                if rec.seq < self.next_seq:
                    continue
                out.append(rec)
                items += max(rec.items, 1)
                self.next_seq = rec.seq + 1
                if items >= max_items:
                    break
            if not progressed:
                nxt = self._locate(self.next_seq)
                if nxt is None or nxt == self._path:
                    break
                self._path, self._offset = nxt, 0
        return out

    def _locate(self, seq: int) -> Path | None:
        found = None
        for first, path in segments(self.dir):
            if first <= seq:
                found = path
            else:
                break
        return found


def import_segments(directory: Path, conn) -> int:
    """Move the records of a data dir written by the hand-written spool into the queue table
    (``auditor.server.queue``), numbers kept, then delete the segments. Returns the records moved."""
    segs = segments(directory)
    if not segs:
        return 0
    rows = [(r.seq, r.kind, r.items, r.payload) for _first, path in segs for _end, r in read_records(path)]
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.executemany("INSERT OR IGNORE INTO records(seq, kind, items, payload) VALUES (?,?,?,?)", rows)
        high = max([segs[-1][0] - 1, *(r[0] for r in rows)])
        if high > 0:  # the numbers handed out so far stay used, even with no record left
            conn.execute("INSERT INTO records(seq, kind, items, payload) VALUES (?, 0, 0, x'')", (high + 1,))
            conn.execute("DELETE FROM records WHERE seq = ?", (high + 1,))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    for _first, path in segs:
        path.unlink(missing_ok=True)
    _fsync_dir(directory)
    return len(rows)
