"""OTLP logs (JSON, JSON lines, protobuf ExportLogsServiceRequest / LogsData) as span-like records.

Some tools report their model calls as log events rather than spans: Claude Code writes one
``claude_code.api_request`` event per model call. Each log record becomes one ``Span`` so the
same engine, selector, pricer and rollup count and price it; which records are cost-bearing is
the schema's business (a preset selects by ``event.name``), never this module's.

A record becomes a span as follows:
- trace id: the record's own when it carries a valid one, else a deterministic hash of the
  record's content (so the same record read from a file, from JSON or from the sidecar gets the
  same ids, and a re-delivery folds as a duplicate);
- span id: a hash of the record; the span is always a root (a record is not a span: the span id
  it may carry names the span active when it was written, which need not be in the input);
- name: LogRecord.event_name, else a string body, else the ``event.name`` attribute;
- attributes: the record's (projected), with ``event.name`` filled from event_name / body when
  absent; ``Span.is_log_record`` is set so structural rules know it is not a span;
- time: end = time_unix_nano (or observed time); a record carrying ``duration_ms`` describes an
  operation that ended then, so start = end - duration_ms.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Iterable

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from auditor.errors import InputError
from auditor.ingest import otlp_json
from auditor.ingest.otlp_values import any_value, json_errors, service_of
from auditor.model import Rejected, Span
from auditor.projection import Projection

EVENT_NAME = "event.name"
DURATION_MS = "duration_ms"
MAX_NAME = 200


# ---------------------------------------------------------------- shared record -> Span


_SCALAR = (str, int, float, bool, bytes, type(None))
_SPACE = re.compile(r"\s")


def _canon(v: Any) -> Any:
    """A hashable, order-independent form of a decoded attribute value."""
    if isinstance(v, dict):
        return tuple(sorted((k, x if isinstance(x, _SCALAR) else _canon(x)) for k, x in v.items()))
    if isinstance(v, tuple):
        return tuple(x if isinstance(x, _SCALAR) else _canon(x) for x in v)
    return v


def resource_key(resource_all: dict, scope: str) -> str:
    """What a record's identity takes from its resource and scope; computed once per scope."""
    return repr((_canon(resource_all), scope))


def _record_hash(time_ns: int, severity: int, body: Any, attrs: dict, rkey: str) -> bytes:
    canon = repr((time_ns, severity, _canon(body), _canon(attrs))) + rkey
    return hashlib.blake2b(canon.encode("utf-8", "surrogatepass"), digest_size=24).digest()


def _nonzero(b: bytes) -> bytes:
    return b if any(b) else b[:-1] + b"\x01"


def _duration_ns(v: Any) -> int:
    if isinstance(v, bool):
        return 0
    if isinstance(v, str):
        try:
            v = float(v)
        except ValueError:
            return 0
    if isinstance(v, (int, float)) and v == v and 0 < v < 1e12:
        return int(round(v * 1_000_000))
    return 0


def _name(event_name: str, body: Any, attrs: dict) -> str:
    if event_name:
        return event_name[:MAX_NAME]
    if isinstance(body, str) and body and len(body) <= MAX_NAME and _SPACE.search(body) is None:
        return body
    ev = attrs.get(EVENT_NAME)
    return ev[:MAX_NAME] if isinstance(ev, str) and ev else "log record"


def make_span(
    *,
    trace_id: str,
    time_ns: int,
    observed_ns: int,
    severity: int,
    body: Any,
    event_name: str,
    all_attrs: dict,
    rkey: str,
    resource: dict,
    service: str,
    scope: str,
    projection: Projection,
) -> Span:
    """One log record as a root span (see the module docstring for the mapping)."""
    end = time_ns or observed_ns
    digest = _record_hash(end, severity, body, all_attrs, rkey)
    tid = trace_id or _nonzero(digest[:16]).hex()
    sid = _nonzero(digest[16:]).hex()
    wants = projection.wants
    attrs = {k: v for k, v in all_attrs.items() if wants(k)}
    if EVENT_NAME not in all_attrs:
        ev = event_name or (body if isinstance(body, str) and len(body) <= MAX_NAME else "")
        if ev:
            attrs[EVENT_NAME] = ev
    elif EVENT_NAME not in attrs:
        attrs[EVENT_NAME] = all_attrs[EVENT_NAME]
    dur = _duration_ns(all_attrs.get(DURATION_MS))
    start = end - dur if end > dur else end
    return Span(tid, sid, "", _name(event_name, body, all_attrs), service, scope, 0, start, end, 0, attrs, resource, True)


# ---------------------------------------------------------------- protobuf

# Traces and logs requests share their outer wire layout (field 1 -> field 2 -> field 2), so
# protobuf would happily mis-parse one as the other. The innermost message tells them apart:
# (field number, wire type) pairs that only a Span or only a LogRecord can have.
_SPAN_ONLY = {(1, 2), (2, 2), (6, 0), (7, 1), (8, 1), (11, 2), (13, 2), (15, 2)}
_LOG_ONLY = {(1, 1), (2, 0), (6, 2), (7, 0), (8, 5), (11, 1), (12, 2)}
_PROBE_LIMIT = 64


def _varint(data: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if i >= len(data) or shift > 63:
            raise IndexError
        b = data[i]
        result |= (b & 0x7F) << shift
        i += 1
        if not b & 0x80:
            return result, i
        shift += 7


def _fields(data: bytes, start: int, end: int):
    """(field, wire type, value start, value end) of one message's top-level fields."""
    i = start
    while i < end:
        tag, i = _varint(data, i)
        field, wt = tag >> 3, tag & 7
        if wt == 0:
            _, j = _varint(data, i)
        elif wt == 1:
            j = i + 8
        elif wt == 5:
            j = i + 4
        elif wt == 2:
            n, i = _varint(data, i)
            j = i + n
        else:
            raise IndexError
        if j > end:
            raise IndexError
        yield field, wt, i, j
        i = j


def signal_of(data: bytes) -> str:
    """'logs' or 'traces' for an OTLP export request / data message, by its innermost records."""
    return probe_signal(data)[0] or "traces"


def probe_signal(data: bytes, seen: int = 0, end: int | None = None, strict: bool = False) -> tuple[str | None, int]:
    """``signal_of`` for whole top-level fields of a message read in pieces, ``seen`` records
    probed before them: (None, records seen so far) while undecided, the next piece deciding
    as it would in the whole. ``data`` may be the head of fields that end at ``end``: with
    ``strict``, running past it raises IndexError instead of deciding."""
    try:
        for f1, w1, s1, e1 in _fields(data, 0, len(data) if end is None else end):
            if (f1, w1) != (1, 2):
                continue
            for f2, w2, s2, e2 in _fields(data, s1, e1):
                if (f2, w2) != (2, 2):
                    continue
                for f3, w3, s3, e3 in _fields(data, s2, e2):
                    if (f3, w3) != (2, 2):
                        continue
                    for pair in ((f, w) for f, w, _, _ in _fields(data, s3, e3)):
                        if pair in _SPAN_ONLY:
                            return "traces", seen
                        if pair in _LOG_ONLY:
                            return "logs", seen
                    seen += 1
                    if seen >= _PROBE_LIMIT:
                        return "traces", seen
    except IndexError:
        if strict:
            raise
        return "traces", seen
    return None, seen


def decode_message(data: bytes, projection: Projection, where: str) -> tuple[list[Span], list[Rejected]]:
    try:
        msg = ExportLogsServiceRequest.FromString(data)
    except (DecodeError, RuntimeError) as e:
        raise InputError(f"{where}: expected an OTLP ExportLogsServiceRequest/LogsData protobuf: {e}") from None
    if data and not msg.resource_logs:
        raise InputError(f"{where}: offset 0: expected an OTLP logs protobuf with resourceLogs, found none")
    return records_of(msg, projection, where)


def records_of(msg, projection: Projection, where: str) -> tuple[list[Span], list[Rejected]]:
    """Walk a decoded ExportLogsServiceRequest (or LogsData) into span-like records."""
    spans: list[Span] = []
    rejected: list[Rejected] = []
    value = any_value
    for ri, rl in enumerate(msg.resource_logs):
        rkvs = rl.resource.attributes
        resource_all = {kv.key: value(kv.value) for kv in rkvs}
        resource = {k: v for k, v in resource_all.items() if projection.wants(k)}
        service = service_of(rkvs)
        for si, sl in enumerate(rl.scope_logs):
            scope = sl.scope.name
            rkey = resource_key(resource_all, scope)
            for li, r in enumerate(sl.log_records):
                tid = r.trace_id
                if len(tid) not in (0, 16):
                    rejected.append(
                        Rejected(
                            f"{where}: resourceLogs[{ri}].scopeLogs[{si}].logRecords[{li}]",
                            "expected an empty or 16-byte traceId",
                        )
                    )
                    continue
                body = value(r.body) if r.HasField("body") else None
                spans.append(
                    make_span(
                        trace_id=tid.hex() if any(tid) else "",
                        time_ns=r.time_unix_nano,
                        observed_ns=r.observed_time_unix_nano,
                        severity=r.severity_number,
                        body=body,
                        event_name=r.event_name,
                        all_attrs={kv.key: value(kv.value) for kv in r.attributes},
                        rkey=rkey,
                        resource=resource,
                        service=service,
                        scope=scope,
                        projection=projection,
                    )
                )
    return spans, rejected


# ---------------------------------------------------------------- JSON


def is_otlp_logs(obj: Any) -> bool:
    return isinstance(obj, dict) and ("resourceLogs" in obj or "resource_logs" in obj)


def decode_json(obj: Any, projection: Projection, where: str, root: str = "$") -> tuple[list[Span], list[Rejected]]:
    """Decode one OTLP JSON LogsData / ExportLogsServiceRequest object."""
    with json_errors(where, root):
        return _decode_json(obj, projection, where, root)


def _decode_json(obj: Any, projection: Projection, where: str, root: str):
    J = otlp_json
    spans: list[Span] = []
    rejected: list[Rejected] = []
    obj = J._dict(obj, root)
    for ri, rl in enumerate(J._list(obj, "resourceLogs", "resource_logs", root)):
        rpath = f"{root}.resourceLogs[{ri}]"
        rl = J._dict(rl, rpath)
        res = J._dict(rl.get("resource") or {}, rpath + ".resource")
        rattrs = J._list(res, "attributes", "attributes", rpath + ".resource")
        service = J._service(rattrs, rpath + ".resource.attributes")
        resource_all = J.attributes(rattrs, rpath + ".resource.attributes", None)
        resource = {k: v for k, v in resource_all.items() if projection.wants(k)}
        scopes = J._get(rl, "scopeLogs", "scope_logs")
        if scopes is None:  # pre-1.0 OTLP
            scopes = J._get(rl, "instrumentationLibraryLogs", "instrumentation_library_logs", [])
        if not isinstance(scopes, list):
            raise J._Bad(rpath + ".scopeLogs", f"expected an array, got {type(scopes).__name__}")
        for si, sl in enumerate(scopes):
            spath = f"{rpath}.scopeLogs[{si}]"
            sl = J._dict(sl, spath)
            sc = J._get(sl, "scope", "scope") or J._get(sl, "instrumentationLibrary", "instrumentation_library") or {}
            scope = J._dict(sc, spath + ".scope").get("name") or ""
            if not isinstance(scope, str):
                raise J._Bad(spath + ".scope.name", "expected a string")
            records = J._get(sl, "logRecords", "log_records")
            if records is None:
                records = J._get(sl, "logs", "logs", [])
            if not isinstance(records, list):
                raise J._Bad(spath + ".logRecords", f"expected an array, got {type(records).__name__}")
            rkey = resource_key(resource_all, scope)
            for li, r in enumerate(records):
                p = f"{spath}.logRecords[{li}]"
                try:
                    span = _record_json(r, p, rkey, resource, service, scope, projection)
                except J._Bad as bad:  # one bad value costs its record, not the request
                    rejected.append(Rejected(f"{where}: {bad.path}", bad.expected))
                    continue
                if span is None:
                    rejected.append(Rejected(f"{where}: {p}", "expected an empty or 32-hex-digit traceId"))
                else:
                    spans.append(span)
    return spans, rejected


def _record_json(r: Any, p: str, rkey: str, resource: dict, service: str, scope: str, projection: Projection) -> Span | None:
    """One JSON log record as a span; None for an unusable trace id."""
    J = otlp_json
    r = J._dict(r, p)
    tid = J._id(J._get(r, "traceId", "trace_id"), 16, p + ".traceId")
    if tid is None:
        return None
    raw_body = r.get("body")
    body = J.value(raw_body, p + ".body") if raw_body else None
    ev = J._get(r, "eventName", "event_name", "")
    if not isinstance(ev, str):
        raise J._Bad(p + ".eventName", "expected a string")
    sev = J._get(r, "severityNumber", "severity_number", 0)
    sev = sev if isinstance(sev, str) else J._int(sev, p + ".severityNumber")
    return make_span(
        trace_id=tid,
        time_ns=J._int(J._get(r, "timeUnixNano", "time_unix_nano"), p + ".timeUnixNano"),
        observed_ns=J._int(J._get(r, "observedTimeUnixNano", "observed_time_unix_nano"), p + ".observedTimeUnixNano"),
        severity=_severity(sev),
        body=body,
        event_name=ev,
        all_attrs=J.attributes(J._list(r, "attributes", "attributes", p), p + ".attributes", None),
        rkey=rkey,
        resource=resource,
        service=service,
        scope=scope,
        projection=projection,
    )


def _severity(v: Any) -> int:
    """SeverityNumber as an integer; protobuf's JSON printer writes enum names."""
    if isinstance(v, int):
        return v
    from opentelemetry.proto.logs.v1.logs_pb2 import SeverityNumber

    try:
        return SeverityNumber.Value(v)
    except ValueError:
        return 0


__all__: Iterable[str] = (
    "decode_message",
    "decode_json",
    "is_otlp_logs",
    "records_of",
)
