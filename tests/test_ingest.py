"""Every encoding of the same spans decodes to the same spans; bad input names file, place and expectation."""

import gzip
import io
import json

import pytest

from auditor.errors import InputError
from auditor.ingest import decode_bytes, load
from auditor.projection import EVERYTHING, Projection
from builders import LLM, Tree, to_json_bytes, to_jsonl_bytes, to_length_prefixed, to_pb

SPANS = Tree("root", {"tenant_id": "acme", "big": "x" * 50}, [Tree("chat", {**LLM, "tags": ["a", "b"], "n": 1.5, "ok": True})]).spans()


def norm(spans):
    return sorted(spans, key=lambda s: s.span_id)


ENCODINGS = {
    "protobuf": lambda: to_pb(SPANS),
    "json": lambda: to_json_bytes(SPANS),
    "json-lines": lambda: to_jsonl_bytes([SPANS[:1], SPANS[1:]]),
    "length-prefixed": lambda: to_length_prefixed([SPANS[:1], SPANS[1:]]),
    "gzip-protobuf": lambda: gzip.compress(to_pb(SPANS)),
    "gzip-json-lines": lambda: gzip.compress(to_jsonl_bytes([SPANS[:1], SPANS[1:]])),
    "gzip-length-prefixed": lambda: gzip.compress(to_length_prefixed([SPANS[:1], SPANS[1:]])),
    "pretty-json": lambda: json.dumps(json.loads(to_json_bytes(SPANS)), indent=2).encode(),
    "bom-json": lambda: b"\xef\xbb\xbf" + to_json_bytes(SPANS),
}


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_every_encoding_decodes_to_the_same_spans(encoding):
    spans, rejected = decode_bytes(ENCODINGS[encoding](), "x", EVERYTHING)
    assert rejected == []
    assert norm(spans) == norm(SPANS)


def test_projection_keeps_only_what_is_asked():
    spans, _ = decode_bytes(to_pb(SPANS), "x", Projection.of({"tenant_id"}, ("gen_ai.usage.",)))
    root, chat = norm(spans)
    assert dict(root.attributes) == {"tenant_id": "acme"}
    assert set(chat.attributes) == {"gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"}


def test_json_accepts_int64_strings_enum_names_snake_case_and_base64_ids():
    doc = {
        "resource_spans": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "s"}}]},
            "scope_spans": [{"scope": {"name": "sc"}, "spans": [{
                "trace_id": "AAAAAAAAAAAAAAAAAAAAAQ==",  # base64 of 16 bytes (protobuf's JSON printer)
                "span_id": "0000000000000002",
                "name": "n", "kind": "SPAN_KIND_CLIENT",
                "start_time_unix_nano": "1767225600000000000", "endTimeUnixNano": 1767225600000001000,
                "attributes": [{"key": "k", "value": {"intValue": "7"}}], "unknownField": {"x": 1},
            }]}],
        }]
    }
    (s,), rejected = decode_bytes(json.dumps(doc).encode(), "x", EVERYTHING)
    assert (s.trace_id, s.span_id, s.kind, s.start_ns, s.attributes["k"], s.scope, s.service) == (
        "00000000000000000000000000000001", "0000000000000002", 3, 1767225600000000000, 7, "sc", "s")


def test_spans_with_unusable_ids_are_rejected_and_the_rest_kept():
    doc = json.loads(to_json_bytes(SPANS))
    doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["spanId"] = ""
    spans, rejected = decode_bytes(json.dumps(doc).encode(), "f.json", EVERYTHING)
    assert len(spans) == 1
    assert [r.where for r in rejected] == ["f.json: line 1: $.resourceSpans[0].scopeSpans[0].spans[0]"]


def test_spans_of_one_trace_split_over_files_merge(tmp_path):
    a, b = tmp_path / "a.pb", tmp_path / "b.json"
    a.write_bytes(to_pb(SPANS[:1]))
    b.write_bytes(to_json_bytes(SPANS[1:]))
    loaded = load([str(a), str(b)], EVERYTHING)
    assert norm(loaded.spans) == norm(SPANS)
    assert loaded.inputs == (str(a), str(b))


def test_stdin():
    loaded = load(["-"], EVERYTHING, stdin=io.BytesIO(to_pb(SPANS)))
    assert norm(loaded.spans) == norm(SPANS)


BAD = [
    (b"\x00\x01garbage", "x.bin: offset 0: expected OTLP protobuf (first byte 0x0a), OTLP/Jaeger/Zipkin JSON, length-prefixed records, Parquet or gzip; found byte 0x00"),
    (b'{"resourceSpans": [', "x.bin: line 1 column 20 (offset 19): invalid JSON: Expecting value"),
    (b'{"resourceSpans": {}}', "x.bin: line 1: $.resourceSpans: expected an array, got dict"),
    (b'{"hello": 1}', "x.bin: line 1: $: expected OTLP JSON (resourceSpans)"),
    (gzip.compress(b"x" * 100)[:20], "x.bin: corrupt or truncated gzip stream"),
    (b'{"resourceSpans": []}\n{"resourceSpans": [}\n', "x.bin: line 2 column 20: invalid JSON: Expecting value"),
    (b"\x00\x00\x00\x09\x0a\x01", "x.bin: offset 0: truncated record (length prefix says 9 bytes, 2 present)"),
]


@pytest.mark.parametrize("data,message", BAD)
def test_bad_input_is_one_line_naming_where_and_what(data, message):
    with pytest.raises(InputError) as e:
        decode_bytes(data, "x.bin", EVERYTHING)
    assert str(e.value).startswith(message), str(e.value)
    assert "\n" not in str(e.value)


def test_a_bad_value_inside_a_span_rejects_that_span_only_with_a_json_path():
    """Issue 19: the sidecar acknowledges the other spans of such a request; check keeps them too."""
    good = {"traceId": "0000000000000000000000000000000a", "spanId": "000000000000000c", "name": "ok",
            "attributes": [{"key": "tenant_id", "value": {"stringValue": "acme"}}]}
    bad = {**good, "spanId": "000000000000000b", "attributes": [{"key": "n", "value": {"intValue": "12x"}}]}
    late = {**good, "spanId": "000000000000000d", "startTimeUnixNano": "soon"}
    doc = {"resourceSpans": [{"scopeSpans": [{"spans": [good, bad, late]}]}]}
    spans, rejected = decode_bytes(json.dumps(doc).encode(), "x.json", EVERYTHING)
    assert [s.span_id for s in spans] == ["000000000000000c"]
    assert [(r.where, r.reason) for r in rejected] == [
        ("x.json: line 1: $.resourceSpans[0].scopeSpans[0].spans[1].attributes[0].value.intValue",
         "expected an integer (number or decimal string), got '12x'"),
        ("x.json: line 1: $.resourceSpans[0].scopeSpans[0].spans[2].startTimeUnixNano",
         "expected an integer (number or decimal string), got 'soon'"),
    ]


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"nope.json: cannot open: No such file or directory"):
        load([str(tmp_path / "nope.json")], EVERYTHING)


def test_a_file_of_one_large_length_prefixed_record_is_recognised(tmp_path):
    """The length prefix is checked against the bytes left from the stream's own position (the
    raw file's runs ahead by the read buffer): one 300 KB record alone in a file is fine."""
    from builders import mk, to_length_prefixed
    from auditor.ingest import load
    from auditor.projection import EVERYTHING

    spans = [mk(1, i + 1, None, attrs={"blob": "x" * 1000}) for i in range(300)]
    f = tmp_path / "one-record.pb"
    f.write_bytes(to_length_prefixed([spans]))
    assert f.stat().st_size > 300_000
    assert len(load([str(f)], EVERYTHING).spans) == 300
