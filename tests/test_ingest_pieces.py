"""A bare OTLP protobuf message read piece by piece (auditor.ingest.otlp_pieces) gives exactly
what one decode of the whole gives: spans in order, rejections with their indices, errors."""

from __future__ import annotations

import gzip
import io

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from auditor.errors import InputError
from auditor.ingest import decode_bytes, decode_protobuf, iter_stream, limits, otlp_pieces
from auditor.projection import EVERYTHING
from builders import _any


def message(resources: int = 3, scopes: int = 2, spans: int = 40, bad_every: int = 7) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    n = 0
    for r in range(resources):
        rs = req.resource_spans.add()
        kv = rs.resource.attributes.add()
        kv.key = "service.name"
        kv.value.CopyFrom(_any(f"svc-{r}"))
        rs.schema_url = f"https://example.com/{r}"
        for s in range(scopes):
            ss = rs.scope_spans.add()
            ss.scope.name = f"scope-{r}-{s}"
            for _ in range(spans):
                n += 1
                sp = ss.spans.add()
                sp.trace_id = (n // 10 + 1).to_bytes(16, "big")
                sp.span_id = (b"\x00" * 8) if n % bad_every == 0 else n.to_bytes(8, "big")
                if n % 10:
                    sp.parent_span_id = (n - 1).to_bytes(8, "big")
                sp.name = f"op {n}"
                sp.start_time_unix_nano, sp.end_time_unix_nano = n, n + 5
                a = sp.attributes.add()
                a.key = "tenant_id"
                a.value.CopyFrom(_any(f"t{n % 3}"))
    return req


def pieces(data: bytes, piece: int, monkeypatch, file=None, window: int | None = None) -> tuple[list, list, int]:
    """Decoded in pieces from memory, or from ``file`` (a real file, read as the CLI reads it:
    a large resourceSpans where it lies, ``window`` bytes at a time while it is cut)."""
    monkeypatch.setattr(otlp_pieces, "PIECE", piece)
    if window is not None:
        monkeypatch.setattr(otlp_pieces, "WINDOW", window)
    spans, rejected, batches = [], [], 0
    if file is not None:
        file.write_bytes(data)
    with (open(file, "rb") if file is not None else io.BytesIO(data)) as fh:
        for s, r in iter_stream(fh, "in.pb", EVERYTHING):
            spans.extend(s)
            rejected.extend(r)
            batches += 1
    return spans, rejected, batches


@pytest.mark.parametrize("from_file, window", [(False, None), (True, 1), (True, 40), (True, 333), (True, 10**9)])
@pytest.mark.parametrize("piece", [1, 64, 500, 3000, 10**9])
def test_pieces_decode_as_the_whole(piece, from_file, window, monkeypatch, tmp_path):
    data = message().SerializeToString()
    want_spans, want_rejected = decode_protobuf(data, EVERYTHING, "in.pb")
    spans, rejected, batches = pieces(data, piece, monkeypatch, tmp_path / "in.pb" if from_file else None, window)
    assert spans == want_spans
    assert rejected == want_rejected
    assert len(spans) == 3 * 2 * 40 - len(rejected) and rejected
    assert rejected[0].where == "in.pb: resourceSpans[0].scopeSpans[0].spans[6]"
    assert rejected[-1].where == "in.pb: resourceSpans[2].scopeSpans[1].spans[37]"
    if piece < len(data):
        assert batches > 1  # really read in pieces
    else:
        assert batches == 1


def test_a_resource_larger_than_a_piece_is_cut_between_its_spans(monkeypatch):
    data = message(resources=1, scopes=1, spans=200).SerializeToString()
    spans, rejected, batches = pieces(data, 1000, monkeypatch)
    assert (spans, rejected) == decode_protobuf(data, EVERYTHING, "in.pb")
    assert batches > 5
    assert {s.service for s in spans} == {"svc-0"} and {s.scope for s in spans} == {"scope-0-0"}


@pytest.mark.parametrize("from_file", [False, True])
def test_trailing_fields_and_broken_frames_read_as_the_whole(from_file, monkeypatch, tmp_path):
    file = tmp_path / "in.pb" if from_file else None
    whole = message().SerializeToString()
    # an unknown top-level field after some resources: the rest is decoded in one go
    unknown = whole + b"\x10\x01" + message(resources=1).SerializeToString()
    assert pieces(unknown, 64, monkeypatch, file)[:2] == decode_protobuf(unknown, EVERYTHING, "in.pb")
    for cut in (len(whole) - 1, len(whole) - 300, 2):  # truncated: the error the whole gives
        with pytest.raises(InputError) as want:
            decode_protobuf(whole[:cut], EVERYTHING, "in.pb")
        with pytest.raises(InputError) as got:
            pieces(whole[:cut], 64, monkeypatch, file)
        assert str(got.value) == str(want.value)


def test_gzip_and_decode_bytes_read_in_pieces_too(monkeypatch):
    data = message().SerializeToString()
    monkeypatch.setattr(otlp_pieces, "PIECE", 100)
    assert decode_bytes(gzip.compress(data), "in.pb.gz", EVERYTHING) == decode_protobuf(data, EVERYTHING, "in.pb.gz (gzip)")


def logs_message(records: int, one_resource: bool = False) -> bytes:
    """A logs request of ``records`` api_request records, each in its own scopeLogs, under one
    resourceLogs each or all under one (a frame larger than a piece)."""
    req = ExportLogsServiceRequest()
    shared = req.resource_logs.add() if one_resource else None
    for i in range(records):
        rec = (shared or req.resource_logs.add()).scope_logs.add().log_records.add()
        rec.time_unix_nano = i + 1
        a = rec.attributes.add()
        a.key = "event.name"
        a.value.string_value = "api_request"
    return req.SerializeToString()


def test_a_logs_message_is_decoded_whole(monkeypatch):
    data = logs_message(30)
    spans, rejected, batches = pieces(data, 16, monkeypatch)
    assert (spans, rejected) == decode_protobuf(data, EVERYTHING, "in.pb") and batches == 1


def test_too_large_is_refused_as_the_whole_was(monkeypatch):
    data = message().SerializeToString()
    monkeypatch.setattr(otlp_pieces, "PIECE", 64)
    before = limits.max_input_bytes()
    try:
        limits.set_max_input_bytes(len(data) - 1)
        with pytest.raises(InputError) as got:
            list(iter_stream(io.BytesIO(data), "in.pb", EVERYTHING))
        assert str(got.value) == str(limits.too_large("in.pb", 0, len(data) - 1, "one protobuf message"))
        limits.set_max_input_bytes(len(data))
        assert len(list(iter_stream(io.BytesIO(data), "in.pb", EVERYTHING))) > 1
    finally:
        limits.set_max_input_bytes(before)


def test_a_frame_with_fields_the_cutter_does_not_read_is_decoded_whole(monkeypatch):
    """An unknown group (wire types 3/4) inside a scopeSpans: protobuf keeps it as an unknown
    field; the cutter does not read groups, so that resourceSpans is decoded in one piece."""
    req = message(resources=2, scopes=1, spans=30)
    first = req.resource_spans[0]
    scope = first.scope_spans[0].SerializeToString() + b"\x9b\x06\x08\x01\x9c\x06"  # group 99 { 1: 1 }
    resource = first.resource.SerializeToString()
    frame = b"\x0a" + otlp_pieces.varint(len(resource)) + resource + b"\x12" + otlp_pieces.varint(len(scope)) + scope
    rest = ExportTraceServiceRequest(resource_spans=[req.resource_spans[1]]).SerializeToString()
    data = b"\x0a" + otlp_pieces.varint(len(frame)) + frame + rest
    want = decode_protobuf(data, EVERYTHING, "in.pb")
    assert len(want[0]) == 60 - len(want[1])
    spans, rejected, batches = pieces(data, 200, monkeypatch)
    assert (spans, rejected) == want and batches > 2


def _odd_message(sizes: list[int], extras: list[int], scopes_per: list[int]) -> bytes:
    """A message whose scopeSpans hold other fields between and after their spans (the scope
    again, schema URLs, unknown varint / fixed64 fields), empty scopes and spans of every size,
    as a file written by any encoder may: resource ``r`` has ``scopes_per[r]`` scopes, scope
    ``j`` of the message has ``sizes[j] % 5`` spans, whose names take their lengths from
    ``sizes`` in turn, each span followed by the field ``extras`` gives it in turn."""
    base = message(resources=1, scopes=1, spans=1)
    resource = base.resource_spans[0].resource.SerializeToString()
    trailers = [b"", b"\x28\x96\x01", b"\x1a\x0bschema/x/yz", b"\x0a\x04\x0a\x02sc", b"\x21" + bytes(8)]
    out = b""
    k = j = 0
    for n_scopes in scopes_per:
        frame = b"\x0a" + otlp_pieces.varint(len(resource)) + resource
        for _ in range(n_scopes):
            scope = b""
            for _ in range(sizes[j % len(sizes)] % 5):
                k += 1
                sp = base.resource_spans[0].scope_spans[0].spans[0]
                sp.trace_id = (k + 1).to_bytes(16, "big")
                sp.span_id = (k + 1).to_bytes(8, "big") if k % 7 else b"\x00" * 8  # every 7th rejected
                sp.name = "n" * sizes[k % len(sizes)]
                span = sp.SerializeToString()
                scope += b"\x12" + otlp_pieces.varint(len(span)) + span + trailers[extras[k % len(extras)]]
            j += 1
            frame += b"\x12" + otlp_pieces.varint(len(scope)) + scope
        frame += b"\x1a\x04http"  # the resource's schema URL, after its scopes
        out += b"\x0a" + otlp_pieces.varint(len(frame)) + frame
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sizes=st.lists(st.integers(0, 3000), min_size=1, max_size=12),
    extras=st.lists(st.integers(0, 4), min_size=1, max_size=6),
    scopes_per=st.lists(st.integers(0, 4), min_size=1, max_size=4),
    piece=st.sampled_from([1, 50, 700, 5000, 10**9]),
    window=st.sampled_from([1, 7, 33, 100, 4096, 10**9]),
)
def test_a_file_read_where_it_lies_decodes_as_the_whole(sizes, extras, scopes_per, piece, window, monkeypatch, tmp_path):
    data = _odd_message(sizes, extras, scopes_per)
    want = decode_protobuf(data, EVERYTHING, "in.pb")
    # The same frames are cut into pieces from the file as in memory; where the first window
    # holds the first span's head (it tells traces from logs), they are cut where they lie.
    cut = []
    real_decode_cut = otlp_pieces._decode_cut
    monkeypatch.setattr(otlp_pieces, "_decode_cut", lambda src, *a: cut.append(type(src).__name__) or real_decode_cut(src, *a))
    assert pieces(data, piece, monkeypatch, None)[:2] == want
    in_memory = cut.count("_InMemory")
    cut.clear()
    assert pieces(data, piece, monkeypatch, tmp_path / "in.pb", window)[:2] == want
    assert len(cut) == in_memory
    if window >= 100:  # the resource and the first span's first fields (tiny windows: read whole, cut in memory)
        assert set(cut) <= {"_InFile"}


def test_a_large_resource_of_a_file_is_never_read_whole(monkeypatch, tmp_path):
    data = message(resources=2, scopes=2, spans=300).SerializeToString()
    reads = []
    real_pread, real_read_into = otlp_pieces.os.pread, otlp_pieces._read_into
    monkeypatch.setattr(otlp_pieces.os, "pread", lambda fd, n, at: reads.append(n) or real_pread(fd, n, at))
    monkeypatch.setattr(otlp_pieces, "_read_into", lambda stream, view: reads.append(-len(view)) or real_read_into(stream, view))
    spans, rejected, batches = pieces(data, 2000, monkeypatch, tmp_path / "in.pb", window=5000)
    assert (spans, rejected) == decode_protobuf(data, EVERYTHING, "in.pb")
    assert batches > 10
    assert reads and min(reads) >= 0  # nothing through the stream: every frame is larger than a piece
    assert max(reads) <= 5000 < len(data) // 4


def test_span_heads_across_a_window_edge_are_read_where_they_lie(monkeypatch, tmp_path):
    """Windows of every size around a span's: some edge falls inside each part of a span's
    head (its tag, its length), and the cutter must read on rather than give up."""
    data = message(resources=1, scopes=1, spans=120).SerializeToString()
    want = decode_protobuf(data, EVERYTHING, "in.pb")
    sources = []
    real_decode_cut = otlp_pieces._decode_cut
    monkeypatch.setattr(otlp_pieces, "_decode_cut", lambda src, *a: sources.append(type(src).__name__) or real_decode_cut(src, *a))
    for window in range(100, 180):
        assert pieces(data, 500, monkeypatch, tmp_path / "in.pb", window)[:2] == want
    assert sources == ["_InFile"] * 80


def test_a_file_cut_short_while_its_resource_is_read_is_a_one_line_error(monkeypatch, tmp_path):
    data = message(resources=1, scopes=1, spans=400).SerializeToString()
    path = tmp_path / "in.pb"
    path.write_bytes(data)
    monkeypatch.setattr(otlp_pieces, "PIECE", 1000)
    with open(path, "rb") as fh:
        batches = iter_stream(fh, "in.pb", EVERYTHING)
        next(batches)
        with open(path, "r+b") as w:
            w.truncate(len(data) // 2)
        with pytest.raises(InputError) as got:
            list(batches)
    head = len(data) - len(message(resources=1, scopes=1, spans=400).resource_spans[0].SerializeToString())
    assert str(got.value) == (f"in.pb: offset {len(data) // 2}: the file ended there, inside the resourceSpans at offset {head}, "
                              "which it held when that was reached (changed while being audited?)")


def test_a_large_logs_message_of_a_file_is_decoded_whole(monkeypatch, tmp_path):
    data = logs_message(300, one_resource=True)
    for window in (3, 64, 10**9):  # undecided in the first window, or decided there
        spans, rejected, batches = pieces(data, 100, monkeypatch, tmp_path / "in.pb", window)
        assert (spans, rejected) == decode_protobuf(data, EVERYTHING, "in.pb") and batches == 1
