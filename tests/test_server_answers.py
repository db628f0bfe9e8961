"""Every OTLP answer of the sidecar, on both transports, against a real ``auditor serve``."""

from __future__ import annotations

import gzip
import json
import zlib

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest, ExportTraceServiceResponse

from auditor.ingest.otlp_json_writer import to_otlp_json

from test_server_support import Sidecar, llm_only_spans

pytestmark = pytest.mark.slow

PB = "application/x-protobuf"
JSON = "application/json"
EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
LIMIT = 1024 * 1024


def _with_bad_span(n_good: int, seed: int) -> ExportTraceServiceRequest:
    req = encode_spans(llm_only_spans(n_good, seed))
    bad = req.resource_spans[0].scope_spans[0].spans.add()
    bad.CopyFrom(req.resource_spans[0].scope_spans[0].spans[0])
    bad.span_id = b"\0" * 8  # an all-zero span id is invalid
    return req


def _grpc_call(target: str, body: bytes, metadata=(), compression=None):
    with grpc.insecure_channel(target, options=[("grpc.max_send_message_length", 64 * LIMIT)]) as ch:
        call = ch.unary_unary(EXPORT)
        return call(body, metadata=metadata, timeout=20, compression=compression)


def _grpc_error(target: str, body: bytes, **kw) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as e:
        _grpc_call(target, body, **kw)
    return e.value


def _status_details(err: grpc.RpcError) -> status_pb2.Status:
    md = dict(err.trailing_metadata() or ())
    return status_pb2.Status.FromString(md["grpc-status-details-bin"])


def _retry_delay(st: status_pb2.Status) -> int:
    (detail,) = st.details
    info = error_details_pb2.RetryInfo()
    assert detail.Unpack(info)
    return info.retry_delay.seconds


@pytest.fixture(scope="module")
def open_sidecar(tmp_path_factory):
    s = Sidecar(tmp_path_factory.mktemp("open")).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def strict_sidecar(tmp_path_factory):
    s = Sidecar(
        tmp_path_factory.mktemp("strict"), "--auth-token", "s3cret", "--max-request-bytes", str(LIMIT),
        "--max-buffered-spans", "10", trace_idle=3600,
    ).start()
    s.headers = {"authorization": "Bearer s3cret"}  # for get(); post() sends what a test gives
    yield s
    s.stop()


def test_partial_success_keeps_the_good_spans_on_every_transport_and_encoding(open_sidecar):
    s = open_sidecar
    r = s.post("/v1/traces", _with_bad_span(3, 11).SerializeToString(), PB)
    assert (r.status_code, r.headers["content-type"]) == (200, PB)
    resp = ExportTraceServiceResponse.FromString(r.content)
    assert resp.partial_success.rejected_spans == 1
    assert "1 span(s) rejected" in resp.partial_success.error_message

    doc = to_otlp_json(_with_bad_span(2, 12))
    doc["resourceSpans"][0]["scopeSpans"][0]["spans"][-1]["spanId"] = ""
    r = s.post("/v1/traces", json.dumps(doc).encode(), JSON)
    assert (r.status_code, r.headers["content-type"]) == (200, JSON)
    body = r.json()
    assert body["partialSuccess"]["rejectedSpans"] == "1"  # int64 as a string, like protobuf's JSON
    assert "spanId" in body["partialSuccess"]["errorMessage"]

    resp = ExportTraceServiceResponse.FromString(_grpc_call(s.grpc, _with_bad_span(4, 13).SerializeToString()))
    assert resp.partial_success.rejected_spans == 1

    s.wait_audited()
    summary = s.report()["summary"]
    assert (summary["spans"], summary["rejected_spans"], summary["llm_calls"]) == (9, 3, 9)
    m = s.metrics()
    assert m['auditor_spans_rejected_total{transport="http"}'] == 2
    assert m['auditor_spans_rejected_total{transport="grpc"}'] == 1


def test_empty_request_is_a_success_with_an_unset_partial_success(open_sidecar):
    r = open_sidecar.post("/v1/traces", b"", PB)
    assert (r.status_code, r.content) == (200, b"")
    r = open_sidecar.post("/v1/traces", b"{}", JSON)
    assert (r.status_code, r.json()) == (200, {})
    assert _grpc_call(open_sidecar.grpc, b"") == b""


def test_undecodable_bodies_get_400_or_invalid_argument_with_a_status(open_sidecar):
    s = open_sidecar
    r = s.post("/v1/traces", b"\xff\xff\xff\xff", PB)
    assert (r.status_code, r.headers["content-type"]) == (400, PB)
    st = status_pb2.Status.FromString(r.content)
    assert st.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert st.message.startswith("body: expected an OTLP ExportTraceServiceRequest protobuf")

    r = s.post("/v1/traces", b'{"resourceSpans": [', JSON)
    assert (r.status_code, r.headers["content-type"]) == (400, JSON)
    assert r.json() == {"code": 3, "message": "body: line 1 column 20: invalid JSON: Expecting value"}

    r = s.post("/v1/traces", b'{"resourceSpans": 5}', JSON)
    assert r.status_code == 400
    assert r.json()["message"] == "body: $.resourceSpans: expected an array, got int"

    r = s.post("/v1/traces", b"\x1f\x8b\x08\x00garbage", PB, **{"content-encoding": "gzip"})
    assert r.status_code == 400 and "gzip" in status_pb2.Status.FromString(r.content).message

    err = _grpc_error(s.grpc, b"\xff\xff\xff\xff")
    assert err.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert _status_details(err).code == 3


def test_other_content_types_and_encodings_get_415(open_sidecar):
    r = open_sidecar.post("/v1/traces", b"hello", "text/plain")
    assert (r.status_code, r.headers["content-type"]) == (415, PB)
    assert "unsupported Content-Type 'text/plain'" in status_pb2.Status.FromString(r.content).message
    r = open_sidecar.post("/v1/traces", b"{}", JSON, **{"content-encoding": "br"})
    assert r.status_code == 415 and "Content-Encoding 'br'" in r.json()["message"]


def test_auth_token_is_required_on_every_request_but_healthz(strict_sidecar):
    s = strict_sidecar
    r = s.post("/v1/traces", b"", PB)
    assert (r.status_code, r.headers["www-authenticate"]) == (401, 'Bearer realm="auditor"')
    assert status_pb2.Status.FromString(r.content).code == grpc.StatusCode.UNAUTHENTICATED.value[0]
    r = s.post("/v1/traces", b"{}", JSON, authorization="Bearer wrong")
    assert (r.status_code, r.json()["code"]) == (401, 16)
    assert s.get("/api/report", headers={}).status_code == 401
    assert s.get("/metrics", headers={"authorization": "Bearer wrong"}).status_code == 401
    assert s.get("/", headers={}).status_code == 401
    assert s.get("/healthz", headers={}).status_code == 200

    assert _grpc_error(s.grpc, b"").code() is grpc.StatusCode.UNAUTHENTICATED
    assert _grpc_call(s.grpc, b"", metadata=(("authorization", "Bearer s3cret"),)) == b""
    r = s.post("/v1/traces", b"", PB, authorization="Bearer s3cret")
    assert r.status_code == 200
    assert s.get("/api/report").status_code == 200


AUTH = {"authorization": "Bearer s3cret"}


def test_oversized_bodies_get_413_or_resource_exhausted(strict_sidecar):
    s = strict_sidecar
    big = b"\x0a" + b"\0" * LIMIT
    r = s.post("/v1/traces", big, PB, **AUTH)
    assert (r.status_code, r.headers["content-type"]) == (413, PB)
    st = status_pb2.Status.FromString(r.content)
    assert (st.code, st.message) == (8, f"request larger than {LIMIT} bytes")  # a plain body: no "after decompression"

    err = _grpc_error(s.grpc, big, metadata=tuple(AUTH.items()))
    assert err.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    # grpc-core applies the limit to the decompressed message too
    err = _grpc_error(s.grpc, b"\0" * (8 * LIMIT), metadata=tuple(AUTH.items()), compression=grpc.Compression.Gzip)
    assert err.code() is grpc.StatusCode.RESOURCE_EXHAUSTED


def _gzip_bomb(mib: int) -> bytes:
    z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = b"\0" * (1024 * 1024)
    return b"".join([*(z.compress(zeros) for _ in range(mib)), z.flush()])


def _peak_rss_kib(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_a_gzip_bomb_gets_413_without_taking_memory(strict_sidecar):
    s = strict_sidecar
    bomb = _gzip_bomb(64)  # 64 MiB of zeros in 64 KiB: well under the 1 MiB limit while compressed
    assert len(bomb) < LIMIT
    before = _peak_rss_kib(s.proc.pid)
    r = s.post("/v1/traces", bomb, PB, **{"content-encoding": "gzip"}, **AUTH)
    assert r.status_code == 413
    assert status_pb2.Status.FromString(r.content).message.endswith("(after decompression)")
    assert _peak_rss_kib(s.proc.pid) - before < 32 * 1024  # at most the limit is ever inflated
    # a gzip body within the limit is fine
    ok = gzip.compress(encode_spans(llm_only_spans(1, 21)).SerializeToString())
    r = s.post("/v1/traces", ok, PB, **{"content-encoding": "gzip"}, **AUTH)
    assert r.status_code == 200


def test_a_full_buffer_answers_429_with_retry_after_and_unavailable_with_retry_info(strict_sidecar):
    s = strict_sidecar
    have = s.get("/healthz").json()["buffered_spans"]  # trace-idle is an hour: spans stay buffered
    fill = encode_spans(llm_only_spans(10 - have, 22)).SerializeToString()
    assert s.post("/v1/traces", fill, PB, **AUTH).status_code == 200
    assert s.get("/healthz").json()["buffered_spans"] == 10

    one = encode_spans(llm_only_spans(1, 23))
    r = s.post("/v1/traces", one.SerializeToString(), PB, **AUTH)
    assert (r.status_code, r.headers["retry-after"]) == (429, "1")
    st = status_pb2.Status.FromString(r.content)
    assert (st.code, _retry_delay(st)) == (14, 1)
    r = s.post("/v1/traces", json.dumps(to_otlp_json(one)).encode(), JSON, **AUTH)
    assert (r.status_code, r.headers["content-type"]) == (429, JSON)
    assert r.json()["details"][0]["retryDelay"] == "1s"

    err = _grpc_error(s.grpc, one.SerializeToString(), metadata=tuple(AUTH.items()))
    assert err.code() is grpc.StatusCode.UNAVAILABLE
    assert _retry_delay(_status_details(err)) == 1
    m = s.metrics()
    assert m["auditor_buffer_fill_ratio"] == 1.0
    assert m['auditor_export_requests_total{outcome="429",transport="http"}'] == 2
