"""What each OTLP signal needs from the receivers: one entry per signal.

A receiver only has to know, per signal, where it is served (HTTP path, gRPC method), how
to check a request body (count the items it will keep and the ones it rejects, or raise
InputError for an undecodable body) and how to answer. Adding a signal (logs, issue 8) is
one more ``Signal`` in ``SIGNALS`` plus a decoder for the worker (``auditor.server.decode``).

Spool record kinds: ``signal.kind_proto`` / ``signal.kind_json`` say how a payload is encoded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from auditor.errors import InputError
from auditor.ingest import otlp_json, otlp_logs
from auditor.projection import Projection

_NOTHING = Projection()


@dataclass(frozen=True, slots=True)
class Checked:
    """A decodable request: how many items it carries that we keep, and why others were not."""

    accepted: int
    rejected: int
    message: str  # for partial_success.error_message; "" when nothing was rejected


@dataclass(frozen=True, slots=True)
class Signal:
    name: str  # "traces"
    http_path: str  # "/v1/traces"
    grpc_method: str  # full method name
    kind_proto: int
    kind_json: int
    check_proto: Callable[[bytes, Projection], Checked]  # body, the workers' projection
    check_json: Callable[[bytes, Projection], Checked]
    response_type: Any  # Export*ServiceResponse class
    rejected_field: str  # "rejected_spans"
    split_proto: bool = False  # protobuf exports are split by shard in the receiver (auditor.server.split)


def _check_traces_proto(body: bytes, projection: Projection = _NOTHING) -> Checked:
    """Typed protobuf values cannot fail decoding: the ids are all the workers check."""
    try:
        msg = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
    except (DecodeError, RuntimeError) as e:
        raise InputError(f"body: expected an OTLP ExportTraceServiceRequest protobuf: {e}") from None
    ok = bad = 0
    for rs in msg.resource_spans:
        for ss in rs.scope_spans:
            for s in ss.spans:
                tid, sid, pid = s.trace_id, s.span_id, s.parent_span_id
                if len(tid) != 16 or len(sid) != 8 or len(pid) not in (0, 8) or not any(tid) or not any(sid):
                    bad += 1
                else:
                    ok += 1
    return Checked(ok, bad, _rejected_message(bad))


def _check_traces_json(body: bytes, projection: Projection = _NOTHING) -> Checked:
    """Decoded exactly as the workers will (same decoder, same projection): a span they
    would reject is rejected here, in the partial success, and never acknowledged."""
    obj = _json(body)
    if isinstance(obj, dict) and not obj:
        return Checked(0, 0, "")
    if not otlp_json.is_otlp_traces(obj):
        raise InputError("body: $: expected an OTLP JSON ExportTraceServiceRequest (an object with resourceSpans)")
    spans, rejected = otlp_json.decode(obj, projection, "body")
    return Checked(len(spans), len(rejected), _rejected_message(len(rejected), f"{rejected[0].where}: {rejected[0].reason}" if rejected else ""))


def _json(body: bytes):
    try:
        return json.loads(body)
    except json.JSONDecodeError as e:
        raise InputError(f"body: line {e.lineno} column {e.colno}: invalid JSON: {e.msg}") from None
    except UnicodeDecodeError as e:
        raise InputError(f"body: offset {e.start}: expected UTF-8 JSON: {e.reason}") from None
    except RecursionError:
        raise InputError("body: JSON nesting too deep") from None


def _rejected_message(n: int, reason: str = "") -> str:
    if not n:
        return ""
    return (
        f"{n} span(s) rejected: "
        + (reason or "expected a 16-byte non-zero traceId, an 8-byte non-zero spanId and an empty or 8-byte parentSpanId")
    )


TRACES = Signal(
    name="traces",
    http_path="/v1/traces",
    grpc_method="/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    kind_proto=1,
    kind_json=2,
    check_proto=_check_traces_proto,
    check_json=_check_traces_json,
    response_type=trace_service_pb2.ExportTraceServiceResponse,
    rejected_field="rejected_spans",
    split_proto=True,
)

def _check_logs_proto(body: bytes, projection: Projection = _NOTHING) -> Checked:
    try:
        msg = logs_service_pb2.ExportLogsServiceRequest.FromString(body)
    except (DecodeError, RuntimeError) as e:
        raise InputError(f"body: expected an OTLP ExportLogsServiceRequest protobuf: {e}") from None
    ok = bad = 0
    for rl in msg.resource_logs:
        for sl in rl.scope_logs:
            for r in sl.log_records:
                if len(r.trace_id) in (0, 16):
                    ok += 1
                else:
                    bad += 1
    return Checked(ok, bad, f"{bad} log record(s) rejected: expected an empty or 16-byte traceId" if bad else "")


def _check_logs_json(body: bytes, projection: Projection = _NOTHING) -> Checked:
    obj = _json(body)
    if isinstance(obj, dict) and not obj:
        return Checked(0, 0, "")
    if not otlp_logs.is_otlp_logs(obj):
        raise InputError("body: $: expected an OTLP JSON ExportLogsServiceRequest (an object with resourceLogs)")
    records, rejected = otlp_logs.decode_json(obj, projection, "body")
    msg = f"{len(rejected)} log record(s) rejected: {rejected[0].where}: {rejected[0].reason}" if rejected else ""
    return Checked(len(records), len(rejected), msg)


# Log records (e.g. Claude Code's api_request events) become span-like records (auditor.ingest.otlp_logs).
LOGS = Signal(
    name="logs",
    http_path="/v1/logs",
    grpc_method="/opentelemetry.proto.collector.logs.v1.LogsService/Export",
    kind_proto=3,
    kind_json=4,
    check_proto=_check_logs_proto,
    check_json=_check_logs_json,
    response_type=logs_service_pb2.ExportLogsServiceResponse,
    rejected_field="rejected_log_records",
)

SIGNALS: tuple[Signal, ...] = (TRACES, LOGS)
