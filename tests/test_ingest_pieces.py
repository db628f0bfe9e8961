"""A bare OTLP protobuf message read piece by piece (auditor.ingest.otlp_pieces) gives exactly
what one decode of the whole gives: spans in order, rejections with their indices, errors."""

from __future__ import annotations

import gzip
import io

import pytest
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


def pieces(data: bytes, piece: int, monkeypatch, file=None) -> tuple[list, list, int]:
    """Decoded in pieces from memory, or from ``file`` (a real file, read as the CLI reads it)."""
    monkeypatch.setattr(otlp_pieces, "PIECE", piece)
    spans, rejected, batches = [], [], 0
    if file is not None:
        file.write_bytes(data)
    with (open(file, "rb") if file is not None else io.BytesIO(data)) as fh:
        for s, r in iter_stream(fh, "in.pb", EVERYTHING):
            spans.extend(s)
            rejected.extend(r)
            batches += 1
    return spans, rejected, batches


@pytest.mark.parametrize("from_file", [False, True])
@pytest.mark.parametrize("piece", [1, 64, 500, 3000, 10**9])
def test_pieces_decode_as_the_whole(piece, from_file, monkeypatch, tmp_path):
    data = message().SerializeToString()
    want_spans, want_rejected = decode_protobuf(data, EVERYTHING, "in.pb")
    spans, rejected, batches = pieces(data, piece, monkeypatch, tmp_path / "in.pb" if from_file else None)
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


def test_a_logs_message_is_decoded_whole(monkeypatch):
    req = ExportLogsServiceRequest()
    for i in range(30):
        rl = req.resource_logs.add()
        rec = rl.scope_logs.add().log_records.add()
        rec.time_unix_nano = i + 1
        a = rec.attributes.add()
        a.key = "event.name"
        a.value.string_value = "api_request"
    data = req.SerializeToString()
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
