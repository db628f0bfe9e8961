"""Issue 18: a traces export split by shard once, in the receiver (``auditor.server.split``).

Each worker must get exactly the spans it kept when it decoded the whole export; rows queued
before the split (one whole export a row) and rows split for another worker count must still
be read; the rejected-span accounting stays once per request content, by shard 0.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import sqlite3
import time

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from auditor.plan import Plan
from auditor.server import queue, split
from auditor.server.decode import DECODERS
from auditor.server.queue import QueueReader, QueueWriter, record_bytes
from auditor.server.signals import TRACES
from auditor.server.store import Store
from auditor.server.worker import Worker, WorkerConfig, shard_of
from test_server_support import Sidecar, check_json, llm_only_spans, shop_spans, without_run, write_pb

PLAN = Plan.of(None)


def _request(rng: random.Random, traces: int, bad: int = 0) -> bytes:
    """Several resources and scopes, traces spread over them, ``bad`` spans with unusable ids."""
    req = ExportTraceServiceRequest()
    tids = [rng.randbytes(16) for _ in range(traces)]
    for r in range(3):
        rs = req.resource_spans.add()
        rs.schema_url = f"https://example.com/{r}"
        kv = rs.resource.attributes.add()
        kv.key, kv.value.string_value = "service.name", f"svc-{r}"
        kv = rs.resource.attributes.add()
        kv.key, kv.value.string_value = "tenant_id", f"t{r}"
        for sc in range(2):
            ss = rs.scope_spans.add()
            ss.scope.name, ss.scope.version = f"scope.{sc}", "1.0"
            for _ in range(rng.randrange(1, 12)):
                s = ss.spans.add()
                s.trace_id = rng.choice(tids)
                s.span_id = rng.randbytes(8)
                if rng.random() < 0.7:
                    s.parent_span_id = rng.randbytes(8)
                s.name = rng.choice(["chat", "step", "handler"])
                s.start_time_unix_nano = 10**18 + rng.randrange(10**9)
                s.end_time_unix_nano = s.start_time_unix_nano + 5
                for k, v in (("gen_ai.operation.name", "chat"), ("gen_ai.usage.input_tokens", 10)):
                    if rng.random() < 0.5:
                        a = s.attributes.add()
                        a.key = k
                        if isinstance(v, int):
                            a.value.int_value = v
                        else:
                            a.value.string_value = v
    spans = [s for rs in req.resource_spans for ss in rs.scope_spans for s in ss.spans]
    for s in rng.sample(spans, bad):
        s.span_id = bytes(8) if rng.random() < 0.5 else b"\x01\x02"
    return req.SerializeToString()


def _decode(body: bytes):
    return DECODERS[TRACES.kind_proto](body, PLAN.projection, "x")


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("shards", [1, 2, 3, 4])
def test_each_piece_holds_exactly_the_spans_its_shard_kept_of_the_whole_export(seed, shards):
    rng = random.Random(seed)
    body = _request(rng, traces=7, bad=seed % 3)
    whole, rejected = _decode(body)
    checked, header, pieces = split.split_traces_proto(body, shards)
    assert checked == TRACES.check_proto(body, PLAN.projection)  # same counts, same partial-success message
    assert (checked.accepted, checked.rejected) == (len(whole), len(rejected))
    head = split.unpack(header)
    assert (head.shards, head.rejected) == (shards, len(rejected))
    assert head.digest == (hashlib.blake2b(body, digest_size=16).digest() if rejected else b"")
    for k in range(shards):
        want = [s for s in whole if shard_of(s.trace_id, shards) == k]
        got, none = _decode(pieces[k]) if k in pieces else ([], [])
        assert got == want and none == []  # the very spans, in the same order
    assert set(pieces) == {shard_of(s.trace_id, shards) for s in whole}  # no empty piece


def test_a_header_of_another_version_or_shape_is_refused():
    assert split.unpack(split.pack(split.Header(3, 2, b"d" * 16))) == split.Header(3, 2, b"d" * 16)
    for bad in (b"", b"\x02\x00\x01\x00\x00\x00\x00", b"\x01\x00\x00\x00\x00\x00\x00", b"\x01\x00\x01\x00\x00\x00\x01abc"):
        with pytest.raises(ValueError):
            split.unpack(bad)


def _queue(db, rows) -> list[int]:
    """Append (kind, items, payload, pieces) rows in one group commit; their seqs."""
    w = QueueWriter(db)

    async def go():
        w.start()
        return list(await asyncio.gather(*(w.append(*r) for r in rows)))

    seqs = asyncio.run(go())
    w.close()
    return seqs


def _split_row(body: bytes, shards: int):
    checked, header, pieces = split.split_traces_proto(body, shards)
    return (split.KIND, checked.accepted, header, pieces)


def _worker(d, shard: int, shards: int) -> Worker:
    cfg = WorkerConfig(str(d), None, idle=1, max_age=100, shard=shard, shards=shards)
    return Worker(cfg, PLAN, Store(d / f"store-{shard}.sqlite3"), d / "spool")


def test_workers_read_split_rows_old_rows_and_rows_split_for_another_worker_count(tmp_path):
    rng = random.Random(11)
    bodies = [_request(rng, traces=9, bad=2) for _ in range(4)]
    db = tmp_path / queue.NAME
    # an old data dir: the queue table before pieces existed, one whole export a row
    old = sqlite3.connect(db)
    old.execute("CREATE TABLE records (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind INTEGER NOT NULL,"
                " items INTEGER NOT NULL, payload BLOB NOT NULL)")
    old.execute("INSERT INTO records VALUES (1, ?, ?, ?)", (TRACES.kind_proto, len(_decode(bodies[0])[0]), bodies[0]))
    old.commit()
    old.close()
    seqs = _queue(db, [_split_row(bodies[1], 2), _split_row(bodies[2], 3), _split_row(bodies[0], 2),
                       (TRACES.kind_proto, 1, bodies[3], None)])
    assert seqs == [2, 3, 4, 5]
    order = [bodies[0], bodies[1], bodies[2], bodies[0], bodies[3]]
    every = [s for b in order for s in _decode(b)[0]]
    digests = {hashlib.blake2b(b, digest_size=16).digest(): 2 for b in bodies}  # 2 bad spans in each
    for k in range(2):
        w = _worker(tmp_path, k, 2)
        assert w.consume(upto=5) == 5
        got = [s for _tid, spans in w.window.due(time.monotonic(), everything=True) for s in spans]
        want = [s for s in every if shard_of(s.trace_id, 2) == k]
        assert _by_trace(got) == _by_trace(want)  # each trace's spans, in the order they came
        assert w.rejected == (digests if k == 0 else {})  # shard 0, once per request content
        w.store.close()


def _by_trace(spans):
    out: dict[str, list] = {}
    for s in spans:
        out.setdefault(s.trace_id, []).append(s)
    return out


def test_split_rows_replay_with_their_size_and_retire_with_their_pieces(tmp_path):
    db = tmp_path / "q.sqlite3"
    body = _request(random.Random(5), traces=6)
    row = _split_row(body, 2)
    assert _queue(db, [row, row]) == [1, 2]
    again = QueueWriter(db)  # a restart: what is still queued counts against the buffer, in bytes
    assert [(r.seq, r.kind, r.items, r.size) for r in again.unconsumed] == [
        (1, split.KIND, row[1], record_bytes(row[2], row[3])), (2, split.KIND, row[1], record_bytes(row[2], row[3]))]
    reader = QueueReader(db, 1, shard=1)
    recs = reader.read(upto_seq=2, max_items=10**6)
    assert [(r.seq, r.payload, r.pieces) for r in recs] == [(s, row[2], ((1, row[3][1]),)) for s in (1, 2)]
    assert reader.all_pieces(1) == tuple(sorted(row[3].items()))
    again.start()
    again.retire(2)  # the first export is stored by every worker: its row and pieces go together
    again.close()
    c = sqlite3.connect(db)
    assert c.execute("SELECT seq FROM records").fetchall() == [(2,)]
    assert c.execute("SELECT DISTINCT seq FROM pieces").fetchall() == [(2,)]


@pytest.mark.slow
def test_an_old_data_dir_with_whole_exports_queued_is_audited_on_upgrade(tmp_path):
    """Rows queued by the version before the split, read by a sidecar with two workers."""
    spans = shop_spans(12, seed=4)
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    data = tmp_path / "data"
    data.mkdir()
    old = sqlite3.connect(data / queue.NAME)
    old.execute("CREATE TABLE records (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind INTEGER NOT NULL,"
                " items INTEGER NOT NULL, payload BLOB NOT NULL)")
    halves = [spans[: len(spans) // 2], spans[len(spans) // 2:]]
    for i, part in enumerate(halves, 1):
        old.execute("INSERT INTO records VALUES (?, ?, ?, ?)", (i, TRACES.kind_proto, len(part), encode_spans(part).SerializeToString()))
    old.commit()
    old.close()
    s = Sidecar(data, workers=2).start()
    try:
        more = llm_only_spans(5, seed=9)  # and a new export, split by the receiver
        assert s.post("/v1/traces", encode_spans(more).SerializeToString(), "application/x-protobuf").status_code == 200
        s.wait_audited()
        got = s.report()
    finally:
        s.stop()
    want = check_json(write_pb(tmp_path / "all.pb", spans + more))
    assert without_run(got) == without_run(want)


@pytest.mark.slow
def test_the_buffer_is_bounded_in_bytes_on_disk_and_says_so(tmp_path):
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    s = Sidecar(tmp_path / "data", "--max-buffered-bytes", "3000", trace_idle=3600, workers=2).start()
    try:
        first = encode_spans(llm_only_spans(12, seed=31)).SerializeToString()
        assert len(first) > 3000  # larger than the bound: an empty buffer still takes it
        assert s.post("/v1/traces", first, "application/x-protobuf").status_code == 200
        h = s.get("/healthz").json()
        checked, header, pieces = split.split_traces_proto(first, 2)
        assert (h["buffered_spans"], h["buffered_bytes"]) == (12, record_bytes(header, pieces))
        r = s.post("/v1/traces", encode_spans(llm_only_spans(1, seed=32)).SerializeToString(), "application/x-protobuf")
        assert (r.status_code, r.headers["retry-after"]) == (429, "1")
        assert s.metrics()["auditor_buffer_fill_ratio"] == pytest.approx(h["buffered_bytes"] / 3000)
    finally:
        s.stop()
