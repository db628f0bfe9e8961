"""OTLP logs in: every encoding of a log record decodes to the same span-like record."""

from __future__ import annotations

import base64
import gzip
import json

import pytest
from google.protobuf.json_format import MessageToDict
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from auditor.engine import audit
from auditor.errors import InputError
from auditor.ingest import decode_bytes, otlp_logs
from auditor.projection import EVERYTHING, Projection
from auditor.schema import compile_schema
from builders import T0, _any, to_pb
from builders import mk

TID = "0af7651916cd43dd8448eb211c80319c"
SID = "b7ad6b7169203331"


def request(records: list[dict], resource: dict | None = None, scope: str = "com.example.events") -> ExportLogsServiceRequest:
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    rl.resource.attributes.extend(KeyValue(key=k, value=_any(v)) for k, v in ({"service.name": "agent", **(resource or {})}).items())
    sl = rl.scope_logs.add()
    sl.scope.name = scope
    for r in records:
        lr = sl.log_records.add()
        lr.time_unix_nano = r.get("time", T0)
        lr.observed_time_unix_nano = r.get("observed", 0)
        if "body" in r:
            lr.body.CopyFrom(_any(r["body"]))
        if r.get("event_name"):
            lr.event_name = r["event_name"]
        if r.get("trace_id"):
            lr.trace_id = bytes.fromhex(r["trace_id"])
            lr.span_id = bytes.fromhex(r["span_id"])
        lr.attributes.extend(KeyValue(key=k, value=_any(v)) for k, v in r.get("attrs", {}).items())
    return req


def to_json(req) -> dict:
    doc = MessageToDict(req, use_integers_for_enums=True)
    for rl in doc.get("resourceLogs", ()):
        for sl in rl.get("scopeLogs", ()):
            for r in sl.get("logRecords", ()):
                for f in ("traceId", "spanId"):
                    if r.get(f):
                        r[f] = base64.b64decode(r[f]).hex()
    return doc


API = {"body": "claude_code.api_request", "attrs": {"event.name": "api_request", "duration_ms": 1500, "input_tokens": 10}}


def encodings(req) -> dict[str, bytes]:
    pb = req.SerializeToString()
    doc = to_json(req)
    return {
        "protobuf": pb,
        "protobuf-gzip": gzip.compress(pb, mtime=0),
        "json": json.dumps(doc).encode(),
        "json-lines": (json.dumps(doc) + "\n" + json.dumps(to_json(request([]))) + "\n").encode(),
        "length-prefixed": len(pb).to_bytes(4, "big") + pb,
        "snake-case-json": json.dumps(MessageToDict(req, preserving_proto_field_name=True, use_integers_for_enums=True)).encode(),
    }


@pytest.mark.parametrize("encoding", ["protobuf", "protobuf-gzip", "json", "json-lines", "length-prefixed"])
def test_every_encoding_decodes_to_the_same_records(encoding):
    req = request([API, {**API, "trace_id": TID, "span_id": SID, "time": T0 + 5}])
    spans, rejected = decode_bytes(encodings(req)[encoding], "x", EVERYTHING)
    reference, _ = decode_bytes(req.SerializeToString(), "x", EVERYTHING)
    assert rejected == []
    assert spans == reference
    assert len(spans) == 2


def test_a_record_maps_to_a_root_span_with_its_event_name_time_and_duration():
    (s,), _ = decode_bytes(request([API]).SerializeToString(), "x", EVERYTHING)
    assert s.name == "claude_code.api_request"
    assert s.parent_span_id == ""
    assert s.service == "agent" and s.scope == "com.example.events"
    assert (s.start_ns, s.end_ns) == (T0 - 1_500_000_000, T0)
    assert s.is_log_record and "auditor.signal" not in s.attributes
    assert s.is_log_record
    assert len(s.trace_id) == 32 and len(s.span_id) == 16


def test_a_record_with_trace_context_keeps_its_trace_id_and_stays_a_root():
    (s,), _ = decode_bytes(request([{**API, "trace_id": TID, "span_id": SID}]).SerializeToString(), "x", EVERYTHING)
    assert s.trace_id == TID
    assert s.parent_span_id == ""
    assert s.span_id != SID  # the record is not the span that was active when it was written


def test_ids_are_deterministic_and_differ_between_records():
    a = decode_bytes(request([API, {**API, "time": T0 + 1}]).SerializeToString(), "x", EVERYTHING)[0]
    b = decode_bytes(request([API, {**API, "time": T0 + 1}]).SerializeToString(), "y", EVERYTHING)[0]
    assert [s.trace_id for s in a] == [s.trace_id for s in b]
    assert a[0].trace_id != a[1].trace_id


def test_event_name_is_filled_from_the_otlp_event_name_or_the_body():
    recs = [
        {"event_name": "claude_code.api_request", "attrs": {"x": 1}},
        {"body": "gen.done", "attrs": {}},
        {"body": "a free text message, not a name", "attrs": {"event.name": "kept"}},
    ]
    spans, _ = decode_bytes(request(recs).SerializeToString(), "x", Projection.of(["event.name"]))
    assert [(s.name, s.attributes["event.name"]) for s in spans] == [
        ("claude_code.api_request", "claude_code.api_request"),
        ("gen.done", "gen.done"),
        ("kept", "kept"),
    ]
    assert "x" not in spans[0].attributes  # projected away


def test_observed_time_stands_in_for_a_missing_time_and_string_durations_count():
    rec = {"time": 0, "observed": T0, "attrs": {"duration_ms": "250"}}
    (s,), _ = decode_bytes(request([rec]).SerializeToString(), "x", EVERYTHING)
    assert (s.start_ns, s.end_ns) == (T0 - 250_000_000, T0)


def test_traces_and_logs_are_told_apart_by_content():
    trace_pb = to_pb([mk(1, 1, None), mk(1, 2, 1)])
    log_pb = request([API]).SerializeToString()
    assert otlp_logs.signal_of(trace_pb) == "traces"
    assert otlp_logs.signal_of(log_pb) == "logs"
    assert otlp_logs.signal_of(b"") == "traces"
    # a record with only a body (field 5, shared in shape with a span's name) and its time
    assert otlp_logs.signal_of(request([{"body": "x"}]).SerializeToString()) == "logs"
    spans, _ = decode_bytes(trace_pb, "t", EVERYTHING)
    assert [s.span_id for s in spans] == [f"{1:016x}", f"{2:016x}"]


def test_a_log_record_that_is_an_llm_call_is_not_a_headless_call():
    schema = compile_schema(
        {
            "version": 1,
            "llm_calls": [{"attribute": "event.name", "in": ["api_request"]}],
            "keys": {"team": {"sources": [{"resource": "team"}]}},
            "genai": {"enabled": False},
        },
        origin="t",
    )
    spans, _ = decode_bytes(request([API], resource={"team": "a"}).SerializeToString(), "x", EVERYTHING)
    result = audit(spans, schema)
    assert len(result.calls) == 1
    assert [f.code for f in result.findings] == ["COST001"]  # no model on the record: unpriced, not headless
    spans, _ = decode_bytes(request([API]).SerializeToString(), "x", EVERYTHING)
    assert [(f.code, f.key) for f in audit(spans, schema).findings] == [("ATTR002", "team"), ("COST001", None)]


@pytest.mark.parametrize(
    "doc, message",
    [
        ({"resourceLogs": {}}, "x: line 1: $.resourceLogs: expected an array, got dict"),
        ({"resourceLogs": [{"scopeLogs": [{"logRecords": 3}]}]}, "x: line 1: $.resourceLogs[0].scopeLogs[0].logRecords: expected an array, got int"),
    ],
)
def test_bad_json_logs_are_one_line_errors_naming_the_path(doc, message):
    with pytest.raises(InputError) as e:
        decode_bytes(json.dumps(doc).encode(), "x", EVERYTHING)
    assert str(e.value) == message


@pytest.mark.parametrize(
    "bad, where, reason",
    [
        ({"timeUnixNano": "soon"}, ".timeUnixNano", "expected an integer (number or decimal string), got 'soon'"),
        ({"attributes": [{"key": 1}]}, ".attributes[0].key", "expected a string"),
        ({"eventName": 5}, ".eventName", "expected a string"),
    ],
)
def test_one_bad_value_costs_its_record_not_the_request(bad, where, reason):
    """As for spans: the records around it are kept (a sidecar answers partial success)."""
    doc = to_json(request([API, API, API]))
    doc["resourceLogs"][0]["scopeLogs"][0]["logRecords"][1].update(bad)
    spans, rejected = decode_bytes(json.dumps(doc).encode(), "x", EVERYTHING)
    assert len(spans) == 2
    assert [(r.where, r.reason) for r in rejected] == [
        (f"x: line 1: $.resourceLogs[0].scopeLogs[0].logRecords[1]{where}", reason)]


def test_a_record_with_a_malformed_trace_id_is_rejected_and_the_rest_kept():
    doc = to_json(request([API, API]))
    doc["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["traceId"] = "abc"
    spans, rejected = decode_bytes(json.dumps(doc).encode(), "x", EVERYTHING)
    assert len(spans) == 1
    assert [(r.where, r.reason) for r in rejected] == [
        ("x: line 1: $.resourceLogs[0].scopeLogs[0].logRecords[0]", "expected an empty or 32-hex-digit traceId")
    ]


values = st.one_of(
    st.text(max_size=8),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.lists(st.text(max_size=4), max_size=3),
)


@settings(max_examples=60, deadline=None)
@given(
    attrs=st.dictionaries(st.text(min_size=1, max_size=6), values, max_size=5),
    time=st.integers(min_value=1, max_value=2**63 - 1),  # a record with no field at all is undecidable
    body=st.one_of(st.none(), st.text(max_size=10)),
)
def test_protobuf_and_json_decode_to_the_same_record(attrs, time, body):
    rec = {"time": time, "attrs": attrs, **({"body": body} if body is not None else {})}
    req = request([rec])
    a, _ = decode_bytes(req.SerializeToString(), "x", EVERYTHING)
    b, _ = decode_bytes(json.dumps(to_json(req)).encode(), "x", EVERYTHING)
    assert a == b
