"""What Jaeger and Zipkin JSON share: how the OpenTelemetry Collector maps OTLP onto them.

The Collector's exporters move the instrumentation scope, span kind and status into tags
(``otel.scope.name``, ``span.kind``, ``otel.status_code``, ``error``) and write array and map
attribute values as JSON text. Decoding undoes that, so a trace read from Jaeger or Zipkin
audits exactly like its OTLP form.
"""

from __future__ import annotations

import json
import re
from typing import Any

KINDS = {"internal": 1, "server": 2, "client": 3, "producer": 4, "consumer": 5}

# Tags that carry span fields, not attributes.
SCOPE_TAGS = ("otel.scope.name", "otel.library.name")
DROPPED_TAGS = frozenset(
    {
        "span.kind", "otel.scope.name", "otel.scope.version", "otel.library.name", "otel.library.version",
        "otel.status_code", "otel.status_description", "w3c.tracestate", "internal.span.format",
    }
)

_HEX = re.compile(r"[0-9a-fA-F]+")


def hex_id(v: Any, nbytes: int) -> str | None:
    """Lower-case, zero-padded hex of an id (Jaeger and Zipkin drop leading zeros); None if bad."""
    if not isinstance(v, str) or not v or len(v) > 2 * nbytes or not _HEX.fullmatch(v):
        return None
    v = v.lower().rjust(2 * nbytes, "0")
    return v if v.strip("0") else None


def restore_array(v: str) -> Any:
    """A JSON array of scalars (how OTLP arrays are written into tags) back to a tuple."""
    if v.startswith("[") and v.endswith("]"):
        try:
            parsed = json.loads(v)
        except ValueError:
            return v
        if isinstance(parsed, list) and all(isinstance(x, (str, int, float, bool)) or x is None for x in parsed):
            return tuple(parsed)
    return v


def scope_of(tags: dict) -> str:
    for t in SCOPE_TAGS:
        v = tags.get(t)
        if isinstance(v, str) and v:
            return v
    return ""


def kind_of(v: Any) -> int:
    return KINDS.get(str(v).lower(), 0) if v is not None else 0


def attributes(tags: dict, projection) -> dict:
    wants = projection.wants
    out = {}
    for k, v in tags.items():
        if k in DROPPED_TAGS or (k == "error" and v in (True, "true")) or not wants(k):
            continue
        out[k] = restore_array(v) if isinstance(v, str) else v
    return out
