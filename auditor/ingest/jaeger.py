"""Jaeger JSON: the UI's "Download JSON" and the query API's ``{"data": [trace, ...]}``.

A trace is ``{traceID, spans: [...], processes: {id: {serviceName, tags}}}``; a span has
``spanID``, ``operationName``, ``references`` (CHILD_OF / FOLLOWS_FROM), ``startTime`` and
``duration`` in microseconds, typed ``tags`` and a ``processID``. Process tags are the resource.
"""

from __future__ import annotations

import base64
from typing import Any

from auditor.errors import InputError
from auditor.ingest import foreign
from auditor.ingest import links as links_mod
from auditor.model import Rejected, Span
from auditor.projection import Projection


class _Bad(Exception):
    def __init__(self, path: str, expected: str):
        self.path = path
        self.expected = expected


def _is_trace(obj: Any) -> bool:
    return isinstance(obj, dict) and "spans" in obj and ("traceID" in obj or "processes" in obj)


def is_jaeger(obj: Any) -> bool:
    if _is_trace(obj):
        return True
    if isinstance(obj, dict) and isinstance(obj.get("data"), list):
        return all(_is_trace(t) for t in obj["data"][:3])
    return isinstance(obj, list) and bool(obj) and all(_is_trace(t) for t in obj[:3])


def decode(obj: Any, projection: Projection, where: str, root: str = "$") -> tuple[list[Span], list[Rejected]]:
    try:
        if _is_trace(obj):
            traces = [(obj, root)]
        elif isinstance(obj, dict):
            traces = [(t, f"{root}.data[{i}]") for i, t in enumerate(obj["data"])]
        else:
            traces = [(t, f"{root}[{i}]") for i, t in enumerate(obj)]
        spans: list[Span] = []
        rejected: list[Rejected] = []
        for t, path in traces:
            _trace(t, path, projection, where, spans, rejected)
        return spans, rejected
    except _Bad as bad:
        raise InputError(f"{where}: {bad.path}: {bad.expected}") from None


def _dict(v: Any, path: str) -> dict:
    if not isinstance(v, dict):
        raise _Bad(path, f"expected an object, got {type(v).__name__}")
    return v


def _list(v: Any, path: str) -> list:
    if v is None:
        return []
    if not isinstance(v, list):
        raise _Bad(path, f"expected an array, got {type(v).__name__}")
    return v


def _int(v: Any, path: str, what: str = "an integer (microseconds)") -> int:
    if isinstance(v, bool):
        raise _Bad(path, f"expected {what}, got a boolean")
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, str):
        try:
            return int(v)
        except ValueError:
            pass
    raise _Bad(path, f"expected {what}, got {v!r:.40}")


def _tag_value(tag: dict, path: str) -> Any:
    typ = str(tag.get("type", "string")).lower()
    v = tag.get("value")
    if typ == "string":
        return v if isinstance(v, str) else ("" if v is None else str(v))
    if typ == "bool":
        return v if isinstance(v, bool) else str(v).lower() == "true"
    if typ == "int64":
        return _int(v, path + ".value", "an int64 (number or decimal string)")
    if typ == "float64":
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
        try:
            return float(v)
        except (TypeError, ValueError):
            raise _Bad(path + ".value", f"expected a number, got {v!r:.40}") from None
    if typ == "binary":
        try:
            return base64.b64decode(v or "")
        except (ValueError, TypeError):
            raise _Bad(path + ".value", "expected base64") from None
    raise _Bad(path + ".type", f"expected one of string, bool, int64, float64, binary, got {typ!r:.40}")


def _tags(v: Any, path: str) -> dict:
    out = {}
    for i, tag in enumerate(_list(v, path)):
        tag = _dict(tag, f"{path}[{i}]")
        k = tag.get("key")
        if not isinstance(k, str):
            raise _Bad(f"{path}[{i}].key", "expected a string")
        out[k] = _tag_value(tag, f"{path}[{i}]")
    return out


def _process(p: Any, path: str, projection: Projection) -> tuple[str, dict]:
    p = _dict(p, path)
    service = p.get("serviceName") or "unknown_service"
    if not isinstance(service, str):
        raise _Bad(path + ".serviceName", "expected a string")
    tags = _tags(p.get("tags"), path + ".tags")
    resource = {k: v for k, v in tags.items() if projection.wants(k)}
    resource["service.name"] = service
    return service, resource


def _trace(t: Any, path: str, projection: Projection, where: str, spans: list, rejected: list) -> None:
    t = _dict(t, path)
    processes = {
        pid: _process(p, f"{path}.processes.{pid}", projection)
        for pid, p in _dict(t.get("processes") or {}, path + ".processes").items()
    }
    for i, s in enumerate(_list(t.get("spans"), path + ".spans")):
        p = f"{path}.spans[{i}]"
        s = _dict(s, p)
        tid = foreign.hex_id(s.get("traceID") or t.get("traceID"), 16)
        sid = foreign.hex_id(s.get("spanID"), 8)
        parent, others = _parent(s, p, tid)
        if not tid or not sid or parent is None:
            rejected.append(Rejected(f"{where}: {p}", "expected a hex traceID (up to 32 digits), a hex spanID (up to 16) and hex reference ids"))
            continue
        proc = s.get("process")
        if proc is not None:
            service, resource = _process(proc, p + ".process", projection)
        elif s.get("processID") in processes:
            service, resource = processes[s["processID"]]
        else:
            service, resource = "unknown_service", {"service.name": "unknown_service"}
        tags = _tags(s.get("tags"), p + ".tags")
        kind = foreign.kind_of(tags.get("span.kind"))
        lk, nd = _links(others, tid) if others and links_mod.judged(parent, kind) else links_mod.NONE
        name = s.get("operationName", "")
        if not isinstance(name, str):
            raise _Bad(p + ".operationName", f"expected a string, got {type(name).__name__}")
        start_us = _int(s.get("startTime", 0), p + ".startTime")
        dur_us = _int(s.get("duration", 0), p + ".duration")
        spans.append(
            Span(
                tid, sid, parent, name, service, foreign.scope_of(tags), kind,
                start_us * 1000, (start_us + dur_us) * 1000, 0, foreign.attributes(tags, projection), resource,
                False, lk, nd,
            )
        )


def _parent(s: dict, p: str, tid: str | None = None) -> tuple[str | None, list]:
    """The parent span id (the first CHILD_OF reference, else the first reference in the span's
    own trace, else parentSpanID) and the other references: OTel writes span links as
    references, and one into another trace is never a parent."""
    refs = _list(s.get("references"), p + ".references")
    own = [r for r in refs if isinstance(r, dict) and (r.get("traceID") in (None, "") or foreign.hex_id(r.get("traceID"), 16) == tid)]
    chosen = None
    for r in own:
        if str(r.get("refType", "")).upper() == "CHILD_OF":
            chosen = r
            break
    if chosen is None and own:
        chosen = own[0]
    raw = chosen.get("spanID") if chosen is not None else s.get("parentSpanID")
    others = [r for r in refs if r is not chosen]
    if raw in (None, "", "0", "0000000000000000"):
        return "", others
    return foreign.hex_id(raw, 8), others


def _links(refs: list, tid: str) -> tuple[tuple[tuple[str, str], ...], int]:
    return links_mod.from_hex_pairs(
        ((r.get("traceID") or tid, r.get("spanID")) if isinstance(r, dict) else (None, None) for r in refs), foreign.hex_id)
