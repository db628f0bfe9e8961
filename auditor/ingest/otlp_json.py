"""OTLP JSON (the OTLP/HTTP JSON encoding and the file exporter's JSON lines).

Differs from protobuf's JSON mapping: ids are hex (not base64), enums are integers,
int64 may be a string or a number, unknown fields are ignored. We also accept
snake_case field names and enum names, which protobuf's own JSON printer writes,
and base64 ids when a value is not hex but decodes to the right length.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from auditor.ingest.otlp_values import BadJson as _Bad, json_errors
from auditor.ingest import links as links_mod
from auditor.ingest.interning import SHORT, TABLE, canonical, share
from auditor.model import Rejected, Span
from auditor.projection import Projection
from auditor.shard import shard_of

MAX_DEPTH = 32

_KIND_NAMES = {
    "SPAN_KIND_UNSPECIFIED": 0,
    "SPAN_KIND_INTERNAL": 1,
    "SPAN_KIND_SERVER": 2,
    "SPAN_KIND_CLIENT": 3,
    "SPAN_KIND_PRODUCER": 4,
    "SPAN_KIND_CONSUMER": 5,
}


def _get(obj: dict, camel: str, snake: str, default=None):
    v = obj.get(camel)
    if v is None:
        v = obj.get(snake, default)
    return default if v is None else v


def _list(obj: dict, camel: str, snake: str, path: str) -> list:
    v = _get(obj, camel, snake, [])
    if not isinstance(v, list):
        raise _Bad(f"{path}.{camel}", f"expected an array, got {type(v).__name__}")
    return v


def _dict(v: Any, path: str) -> dict:
    if not isinstance(v, dict):
        raise _Bad(path, f"expected an object, got {type(v).__name__}")
    return v


def _int(v: Any, path: str) -> int:
    if v is None:
        return 0
    if isinstance(v, bool):
        raise _Bad(path, "expected an integer (number or decimal string), got a boolean")
    if isinstance(v, int):
        return v
    if isinstance(v, str):
        try:
            return int(v)
        except ValueError:
            pass
    if isinstance(v, float) and v.is_integer():
        return int(v)
    raise _Bad(path, f"expected an integer (number or decimal string), got {v!r:.40}")


def _id(v: Any, nbytes: int, path: str) -> str | None:
    """Lowercase hex of a valid id; '' when empty; None when present but unusable."""
    if v is None or v == "":
        return ""
    if not isinstance(v, str):
        raise _Bad(path, f"expected a hex id string, got {type(v).__name__}")
    if len(v) == 2 * nbytes:
        try:
            raw = bytes.fromhex(v)
        except ValueError:
            raw = None
        if raw is not None:
            return raw.hex() if any(raw) else None
    try:
        raw = base64.b64decode(v, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) != nbytes or not any(raw):
        return None
    return raw.hex()


def value(v: Any, path: str = "", depth: int = 0) -> Any:
    """An OTLP JSON AnyValue to a Python value."""
    if not isinstance(v, dict):
        raise _Bad(path, f"expected an AnyValue object, got {type(v).__name__}")
    sv = v.get("stringValue")
    if sv.__class__ is str:  # the common case first
        return share(sv)
    if "stringValue" in v or "string_value" in v:
        return _get(v, "stringValue", "string_value", "")
    if "intValue" in v or "int_value" in v:
        return _int(_get(v, "intValue", "int_value"), path + ".intValue")
    if "boolValue" in v or "bool_value" in v:
        return bool(_get(v, "boolValue", "bool_value", False))
    if "doubleValue" in v or "double_value" in v:
        d = _get(v, "doubleValue", "double_value", 0.0)
        if isinstance(d, str):  # NaN / Infinity are strings in proto JSON
            try:
                return float(d)
            except ValueError:
                raise _Bad(path + ".doubleValue", f"expected a number, got {d!r:.40}") from None
        if not isinstance(d, (int, float)) or isinstance(d, bool):
            raise _Bad(path + ".doubleValue", f"expected a number, got {type(d).__name__}")
        return float(d)
    if depth >= MAX_DEPTH:
        return "<nested too deep>"
    if "arrayValue" in v or "array_value" in v:
        arr = _dict(_get(v, "arrayValue", "array_value", {}), path + ".arrayValue")
        vals = _list(arr, "values", "values", path + ".arrayValue")
        return tuple(value(x, f"{path}.arrayValue.values[{i}]", depth + 1) for i, x in enumerate(vals))
    if "kvlistValue" in v or "kvlist_value" in v:
        kvl = _dict(_get(v, "kvlistValue", "kvlist_value", {}), path + ".kvlistValue")
        return attributes(_list(kvl, "values", "values", path + ".kvlistValue"), path + ".kvlistValue.values", None, depth + 1)
    if "bytesValue" in v or "bytes_value" in v:
        b = _get(v, "bytesValue", "bytes_value", "")
        try:
            return base64.b64decode(b)
        except (binascii.Error, ValueError, TypeError):
            raise _Bad(path + ".bytesValue", "expected base64") from None
    return None  # empty AnyValue


def attributes(kvs: list, path: str, projection: Projection | None, depth: int = 0) -> dict:
    out = {}
    table = TABLE
    if projection is None or projection.keep_all:
        canon, prefixes = None, ()
    else:  # the projection test is one lookup that also shares the key object
        canon, prefixes = canonical(projection.names), projection.prefixes
    for i, kv in enumerate(kvs):
        if not isinstance(kv, dict):
            raise _Bad(f"{path}[{i}]", f"expected a {{key, value}} object, got {type(kv).__name__}")
        k = kv.get("key")
        if not isinstance(k, str):
            raise _Bad(f"{path}[{i}].key", "expected a string")
        if canon is not None:
            ck = canon.get(k)
            if ck is not None:
                k = ck
            elif not (prefixes and k.startswith(prefixes)):
                continue
        v = kv.get("value")
        if v.__class__ is dict:
            sv = v.get("stringValue")
            if sv.__class__ is str:  # most values: read inline, as ``value`` reads them
                out[k] = (table.get(sv) or share(sv)) if len(sv) <= SHORT else sv
                continue
        try:  # the value's path is built only when it is bad
            out[k] = value(v or {}, "", depth)
        except _Bad as bad:
            raise _Bad(f"{path}[{i}].value{bad.path}", bad.expected) from None
    return out


def _service(rattrs: list, path: str) -> str:
    for i, kv in enumerate(rattrs):
        if isinstance(kv, dict) and kv.get("key") == "service.name":
            v = value(kv.get("value") or {}, f"{path}[{i}].value")
            return v if isinstance(v, str) and v else "unknown_service"
    return "unknown_service"


def is_otlp_traces(obj: Any) -> bool:
    return isinstance(obj, dict) and ("resourceSpans" in obj or "resource_spans" in obj)


def decode(obj: Any, projection: Projection, where: str, root: str = "$", doc: int = 0) -> tuple[list[Span], list[Rejected]]:
    """Decode one OTLP JSON TracesData / ExportTraceServiceRequest object (``doc``: its index
    in an array of them, which orders rejections)."""
    with json_errors(where, root):
        return _decode(obj, projection, where, root, doc)


def _decode(obj: Any, projection: Projection, where: str, root: str, doc: int):
    spans: list[Span] = []
    rejected: list[Rejected] = []
    ids: dict[str, str] = {}  # one string per id: a trace's spans share it, a child's parent id is its parent's
    # One shard's traces only (``check --jobs``): a span of another shard's trace is skipped as
    # soon as its trace id is read, rejected or not; its shard reads it (``Projection.shard``).
    shard_index, shard_count = projection.shard or (0, 0)
    owned: dict[str, bool] = {}
    obj = _dict(obj, root)
    for ri, rs in enumerate(_list(obj, "resourceSpans", "resource_spans", root)):
        rpath = f"{root}.resourceSpans[{ri}]"
        rs = _dict(rs, rpath)
        res = _dict(rs.get("resource") or {}, rpath + ".resource")
        rattrs = _list(res, "attributes", "attributes", rpath + ".resource")
        service = _service(rattrs, rpath + ".resource.attributes")
        resource = attributes(rattrs, rpath + ".resource.attributes", projection)
        scopes = _get(rs, "scopeSpans", "scope_spans")
        if scopes is None:  # pre-1.0 OTLP
            scopes = _get(rs, "instrumentationLibrarySpans", "instrumentation_library_spans", [])
        if not isinstance(scopes, list):
            raise _Bad(rpath + ".scopeSpans", f"expected an array, got {type(scopes).__name__}")
        for si, ss in enumerate(scopes):
            spath = f"{rpath}.scopeSpans[{si}]"
            ss = _dict(ss, spath)
            sc = _get(ss, "scope", "scope") or _get(ss, "instrumentationLibrary", "instrumentation_library") or {}
            scope = _dict(sc, spath + ".scope").get("name") or ""
            if not isinstance(scope, str):
                raise _Bad(spath + ".scope.name", "expected a string")
            for pi, s in enumerate(_list(ss, "spans", "spans", spath)):
                tid = None
                try:  # paths are built only when something is wrong: most spans are fine
                    s = _dict(s, "")
                    tid = _id(_get(s, "traceId", "trace_id"), 16, ".traceId")
                    if shard_count and tid:
                        mine = owned.get(tid)
                        if mine is None:
                            mine = owned[tid] = shard_of(tid, shard_count) == shard_index
                        if not mine:
                            continue
                    span = _span(s, tid, service, scope, resource, projection, ids)
                except _Bad as bad:  # one bad value costs its span, not the batch
                    rejected.append(Rejected(f"{where}: {spath}.spans[{pi}]{bad.path}", bad.expected, tid or None, (doc, ri, si, pi)))
                    continue
                if span is None:
                    rejected.append(
                        Rejected(
                            f"{where}: {spath}.spans[{pi}]",
                            "expected a 32-hex-digit non-zero traceId, a 16-hex-digit non-zero spanId and an empty or 16-hex-digit parentSpanId",
                            tid or None,
                            (doc, ri, si, pi),
                        )
                    )
                else:
                    spans.append(span)
    return spans, rejected


def _span(s: dict, tid: str | None, service: str, scope: str, resource: dict, projection: Projection, ids: dict) -> Span | None:
    """One span (its trace id already read); ``None`` when its ids are unusable. Raises _Bad
    with a path relative to the span."""
    sid = _id(_get(s, "spanId", "span_id"), 8, ".spanId")
    pid = _id(_get(s, "parentSpanId", "parent_span_id"), 8, ".parentSpanId")
    if not tid or not sid or pid is None:
        return None
    tid = ids.setdefault(tid, tid)
    sid = ids.setdefault(sid, sid)
    if pid:
        pid = ids.setdefault(pid, pid)
    name = s.get("name", "")
    if not isinstance(name, str):
        raise _Bad(".name", f"expected a string, got {type(name).__name__}")
    kind = s.get("kind", 0)
    if isinstance(kind, str):
        if kind not in _KIND_NAMES:
            raise _Bad(".kind", f"expected a SpanKind integer or name, got {kind!r:.40}")
        kind = _KIND_NAMES[kind]
    else:
        kind = _int(kind, ".kind")
    raw_links = s.get("links") if links_mod.judged(pid, kind) else None
    lk, nd = _links(raw_links) if raw_links else links_mod.NONE
    return Span(
        tid,
        sid,
        pid,
        share(name),
        service,
        scope,
        kind,
        _int(_get(s, "startTimeUnixNano", "start_time_unix_nano"), ".startTimeUnixNano"),
        _int(_get(s, "endTimeUnixNano", "end_time_unix_nano"), ".endTimeUnixNano"),
        _int(s.get("flags"), ".flags"),
        attributes(_list(s, "attributes", "attributes", ""), ".attributes", projection),
        resource,
        False,
        lk,
        nd,
    )


def _link_id(v: Any, nbytes: int) -> str | None:
    try:
        return _id(v, nbytes, "")
    except _Bad:
        return None


def _links(raw: Any) -> tuple[tuple[tuple[str, str], ...], int]:
    """``links``: [{traceId, spanId, ...}]; anything unusable is dropped and counted, never fatal."""
    if not isinstance(raw, list):
        return (), 1
    pairs = [(_get(x, "traceId", "trace_id"), _get(x, "spanId", "span_id")) if isinstance(x, dict) else (None, None)
             for x in raw]
    return links_mod.from_hex_pairs(pairs, _link_id)
