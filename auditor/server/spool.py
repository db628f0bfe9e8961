"""The segment spool of versions before issue 19, kept only to import a data dir it wrote.

Since issue 19 acknowledged exports live in a SQLite table (``auditor.server.queue``). A data
dir written by an older version may still hold unaudited records in ``spool/*.spool``
segments: on start they are moved into the queue table, numbers kept, then deleted.

Record layout (big-endian): payload length u32, crc32 u32 (of everything after it), seq u64,
kind u8, items u32, payload. A torn tail fails its length or CRC check and is ignored; it
was never acknowledged.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

HEADER = struct.Struct(">IIQBI")
SUFFIX = ".spool"


@dataclass(frozen=True, slots=True)
class Record:
    seq: int
    kind: int
    items: int
    payload: bytes


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


def _fsync_dir(d: Path) -> None:
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)



def import_segments(directory: Path, conn) -> int:
    """Move the records of a data dir written by the segment spool into the queue table
    (``auditor.server.queue``), numbers kept, then delete the segments. Returns the records moved."""
    segs = segments(directory)
    if not segs:
        return 0
    rows = [(r.seq, r.kind, r.items, r.payload) for _first, path in segs for _end, r in read_records(path)]
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.executemany("INSERT OR IGNORE INTO records(seq, kind, items, payload) VALUES (?,?,?,?)", rows)
        # the numbers handed out so far stay used even with no record left (a crash during a
        # segment roll left only an empty segment named by the next number)
        high = max([segs[-1][0] - 1, *(r[0] for r in rows)])
        if high > 0 and not conn.execute(
            "UPDATE sqlite_sequence SET seq = MAX(seq, ?) WHERE name = 'records'", (high,)
        ).rowcount:
            conn.execute("INSERT INTO sqlite_sequence(name, seq) VALUES ('records', ?)", (high,))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    for _first, path in segs:
        path.unlink(missing_ok=True)
    _fsync_dir(directory)
    return len(rows)
