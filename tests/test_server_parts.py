"""The sidecar's parts in-process: spool (group commit, torn tail, retire), trace window,
bounded gunzip, store codec, and the window+store property: re-opened traces never double count."""

from __future__ import annotations

import asyncio
import gzip
import os
import random
import sqlite3
import struct
import zlib

import pytest

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor.plan import Plan
from auditor.engine import audit
from auditor.result_json import to_json
from auditor.rollup import finish
from auditor.model import RunInfo
from auditor.schema import compile_schema
from auditor.server import codec
from auditor.server.answers import Failure
from auditor.server.http_app import gunzip
from auditor.server import queue
from auditor.server.queue import QueueFull, QueueReader, QueueWriter
from auditor.server.spool import segments
from auditor.server.store import Store, combined_parts, connect
from auditor.server.window import Window
from auditor.server.worker import Worker, WorkerConfig
from builders import LLM, mk

SCHEMA = {
    "version": 1,
    "name": "server-test",
    "scope": "path",
    "llm_calls": [{"attribute": "gen_ai.operation.name"}],
    "keys": {"tenant_id": {"sources": [{"attribute": "tenant_id"}]}},
    "genai": {"enabled": False},
}


def _append_all(writer: QueueWriter, payloads: list[bytes]) -> list[int]:
    async def go():
        writer.start()
        futs = [writer.append(1, i, p) for i, p in enumerate(payloads)]  # queued together: one group commit
        return list(await asyncio.gather(*futs))

    seqs = asyncio.run(go())
    writer.close()
    return seqs


def test_queue_acknowledges_in_order_and_numbers_only_grow(tmp_path):
    db = tmp_path / "q.sqlite3"
    assert _append_all(QueueWriter(db), [b"a" * 10, b"b" * 20, b"c" * 30]) == [1, 2, 3]
    again = QueueWriter(db)
    assert [(r.seq, r.items) for r in again.unconsumed] == [(1, 0), (2, 1), (3, 2)]
    again.start()
    again.retire(4)  # every worker is past them: the table is empty now
    again.close()
    assert sqlite3.connect(db).execute("SELECT COUNT(*) FROM records").fetchone() == (0,)
    assert QueueWriter(db).next_seq == 4  # AUTOINCREMENT keeps the high-water mark
    assert QueueWriter(db, floor=9).next_seq == 9  # never at or below a worker's stored cursor
    assert _append_all(QueueWriter(db, floor=9), [b"d"]) == [9]
    recs = QueueReader(db, 2).read(upto_seq=99, max_items=99)
    assert [(r.seq, r.payload) for r in recs] == [(9, b"d")]


def test_queue_reader_stops_at_the_committed_seq_and_at_max_items(tmp_path):
    db = tmp_path / "q.sqlite3"
    _append_all(QueueWriter(db), [bytes([i]) * 50 for i in range(6)])
    reader = QueueReader(db, 1)
    assert [r.seq for r in reader.read(upto_seq=3, max_items=99)] == [1, 2, 3]
    assert [r.seq for r in reader.read(upto_seq=6, max_items=3)] == [4]  # seq 4 carries 3 items
    assert [r.seq for r in reader.read(upto_seq=6, max_items=99)] == [5, 6]
    assert reader.read(upto_seq=6, max_items=99) == []


def test_a_full_disk_refuses_the_whole_group_and_uses_no_number(tmp_path, monkeypatch):
    db = tmp_path / "q.sqlite3"
    w = QueueWriter(db)
    assert _append_all(w, [b"x"]) == [1]
    w = QueueWriter(db)
    monkeypatch.setattr(queue, "RESERVE_MAX", 1 << 62)  # as if the disk were full
    monkeypatch.setattr(queue.os, "statvfs", lambda _p: os.statvfs_result((4096, 4096, 256, 0, 0, 0, 0, 0, 0, 255)))
    with pytest.raises(QueueFull):
        _append_all(w, [b"y", b"z"])
    assert w.full and w.next_seq == 2
    monkeypatch.undo()
    assert _append_all(QueueWriter(db), [b"y"]) == [2]


def _segment_bytes(records: list[tuple[int, bytes]]) -> bytes:
    out = b""
    for seq, payload in records:
        tail = struct.pack(">QBI", seq, 1, 1)
        out += struct.pack(">II", len(payload), zlib.crc32(payload, zlib.crc32(tail))) + tail + payload
    return out


def test_a_data_dir_of_the_segment_spool_is_imported_with_its_numbers(tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / f"{7:020d}.spool").write_bytes(_segment_bytes([(7, b"seven"), (8, b"eight")]) + b"\0\0\0\x40torn")
    (spool / f"{9:020d}.spool").write_bytes(b"")  # a crash right after a segment roll
    w = QueueWriter(tmp_path / "q.sqlite3", legacy_spool=spool)
    assert [r.seq for r in w.unconsumed] == [7, 8] and w.next_seq == 9
    assert segments(spool) == []
    assert [r.payload for r in QueueReader(tmp_path / "q.sqlite3", 1).read(99, 99)] == [b"seven", b"eight"]
    only_empty = tmp_path / "spool2"
    only_empty.mkdir()
    (only_empty / f"{300:020d}.spool").write_bytes(b"")
    assert QueueWriter(tmp_path / "q2.sqlite3", legacy_spool=only_empty).next_seq == 300


def test_window_audits_idle_traces_then_old_ones_and_tracks_the_low_water_mark():
    w = Window(idle=10, max_age=100)
    a, b = mk(1, 1, None), mk(2, 1, None)
    w.add([a], seq=1, now=0)
    w.add([b], seq=2, now=5)
    w.add([mk(1, 2, 1)], seq=3, now=8)  # trace 1 is busy again
    assert w.low_seq(next_unread=4) == 1
    assert [t for t, _ in w.due(now=16)] == [b.trace_id]
    assert w.low_seq(next_unread=4) == 1
    assert [(t, len(s)) for t, s in w.due(now=18)] == [(a.trace_id, 2)]
    assert w.low_seq(next_unread=4) == 4 and w.spans == 0
    for i in range(20):  # a trace that never goes quiet is audited at its maximum age
        w.add([mk(3, i + 1, None)], seq=5, now=200 + i * 6)
    assert [t for t, _ in w.due(now=300)] == [mk(3, 1, None).trace_id]


def test_gunzip_is_bounded_by_the_limit_and_reads_concatenated_members():
    assert gunzip(gzip.compress(b"x" * 100), 100) == b"x" * 100
    over = gunzip(gzip.compress(b"x" * 101), 100)
    assert isinstance(over, Failure) and over.http_status == 413
    assert gunzip(gzip.compress(b"ab") + gzip.compress(b"cd"), 100) == b"abcd"
    over = gunzip(gzip.compress(b"x" * 60) + gzip.compress(b"y" * 60), 100)
    assert isinstance(over, Failure) and over.http_status == 413
    bad = gunzip(gzip.compress(b"x" * 1000)[:-12], 5000)
    assert isinstance(bad, Failure) and (bad.http_status, bad.message) == (400, "body: truncated gzip stream")


def _traces(rng: random.Random, n: int):
    spans = []
    for t in range(1, n + 1):
        keyed = {"tenant_id": f"t{t}"}
        spans.append(mk(t, 1, None, "handler", attrs=keyed))
        spans.append(mk(t, 2, 1, "step", attrs=keyed if rng.random() < 0.5 else {}))
        spans.append(mk(t, 3, 2, "chat", scope="openai", attrs={**LLM, **(keyed if rng.random() < 0.5 else {})}))
        if rng.random() < 0.3:
            spans.append(mk(t, 4, 9, "orphan", attrs=LLM))
    return spans


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10**6), cuts=st.lists(st.integers(0, 40), max_size=6), redeliver=st.booleans())
def test_stored_report_equals_auditing_everything_however_spans_arrive(tmp_path_factory, seed, cuts, redeliver):
    rng = random.Random(seed)
    spans = _traces(rng, 10)
    rng.shuffle(spans)
    if redeliver:
        spans += spans[: len(spans) // 3]  # OTLP is at-least-once
    schema = compile_schema(SCHEMA, origin="test")
    c = Plan.fixed(schema)
    d = tmp_path_factory.mktemp("store")
    worker = Worker(WorkerConfig(str(d), None, idle=1, max_age=100), c, Store(d / "db"), d)
    bounds = sorted({0, len(spans), *(x % (len(spans) + 1) for x in cuts)})
    now = 0.0
    for seq, (lo, hi) in enumerate(zip(bounds, bounds[1:]), start=1):
        worker.window.add(spans[lo:hi], seq, now)
        now += 2  # every batch arrives after the previous traces went idle: late spans re-open them
        worker.commit(worker.window.due(now), worker.window.low_seq(seq + 1))
    worker.commit(worker.window.due(now, everything=True), len(bounds))
    parts = combined_parts(connect(d / "db", readonly=True), c.empty_parts())
    got = to_json(finish(parts, RunInfo()))
    want = to_json(audit(spans, schema, plan=c))
    got.pop("run"), want.pop("run")
    assert got == want


def test_codec_round_trips_audit_parts_exactly():
    schema = compile_schema(SCHEMA, origin="test")
    result = audit(_traces(random.Random(3), 6), schema)
    assert result.parts.findings and result.parts.calls
    assert codec.loads(codec.dumps(result.parts)) == result.parts
