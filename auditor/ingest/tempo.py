"""Grafana Tempo's trace download and other OTLP JSON wrappers.

Tempo's ``/api/traces/{id}`` (and the UI's download) is OTLP JSON with ``batches`` in place
of ``resourceSpans``, often ``instrumentationLibrarySpans`` and, in some versions, base64 ids;
``/api/v2/traces/{id}`` wraps it as ``{"trace": {...}}``; Jaeger's API v3 as ``{"result": {...}}``.
The OTLP JSON decoder already reads the old field names and base64 ids; this module unwraps.
"""

from __future__ import annotations

from typing import Any

from auditor.errors import InputError
from auditor.ingest import otlp_json
from auditor.model import Rejected, Span
from auditor.projection import Projection

_WRAPPERS = ("trace", "result")


def _unwrap(obj: Any, root: str) -> tuple[Any, str] | None:
    if not isinstance(obj, dict):
        return None
    if isinstance(obj.get("batches"), list):
        return {"resourceSpans": obj["batches"]}, root
    for w in _WRAPPERS:
        inner = obj.get(w)
        if isinstance(inner, dict) and ("batches" in inner or "resourceSpans" in inner or "resource_spans" in inner):
            if "batches" in inner:
                return {"resourceSpans": inner["batches"]}, f"{root}.{w}"
            return inner, f"{root}.{w}"
    return None


def is_tempo(obj: Any) -> bool:
    return _unwrap(obj, "$") is not None


def decode(obj: Any, projection: Projection, where: str, root: str = "$") -> tuple[list[Span], list[Rejected]]:
    inner, path = _unwrap(obj, root)  # type: ignore[misc]
    batches = "batches" in obj or "batches" in (obj.get("trace") or {}) or "batches" in (obj.get("result") or {})
    try:
        return otlp_json.decode(inner, projection, where, path)
    except InputError as e:
        if batches:  # name the field as it is in the user's file
            raise InputError(str(e).replace(f"{path}.resourceSpans[", f"{path}.batches[")) from None
        raise
