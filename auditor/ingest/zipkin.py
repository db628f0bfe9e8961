"""Zipkin v2 JSON: a list of spans (``/api/v2/trace/{id}``), or a list of such lists
(``/api/v2/traces``).

Every Zipkin tag is a string, so the types OTLP had are gone. We restore what the audit
computes with: JSON arrays of scalars become arrays (as for Jaeger), and whole numbers and
decimals come back for count- and price-like attribute names (tokens, counts, ports, cost,
sampling parameters). Attribution values always stay strings: a tenant id "007" is text.
"""

from __future__ import annotations

import re
from typing import Any

from auditor.errors import InputError
from auditor.ingest import foreign
from auditor.model import Rejected, Span
from auditor.projection import Projection

_INT_NAME = re.compile(r"(tokens?|token_count\..*|\.count|\.port|\.seed|max_tokens|status_code)$")
_FLOAT_NAME = re.compile(r"(cost(\..*)?|\.temperature|\.top_p|\.top_k|_penalty)$")
_INT = re.compile(r"-?(0|[1-9][0-9]*)")
_FLOAT = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?")


def _span_like(o: Any) -> bool:
    return isinstance(o, dict) and "traceId" in o and "id" in o


def is_zipkin(obj: Any) -> bool:
    if not isinstance(obj, list) or not obj:
        return False
    first = obj[0]
    if isinstance(first, list):
        return bool(first) and _span_like(first[0])
    return _span_like(first)


def decode(obj: Any, projection: Projection, where: str, root: str = "$") -> tuple[list[Span], list[Rejected]]:
    spans: list[Span] = []
    rejected: list[Rejected] = []
    try:
        if isinstance(obj[0], list):
            for i, group in enumerate(obj):
                if not isinstance(group, list):
                    raise InputError(f"{where}: {root}[{i}]: expected an array of Zipkin spans, got {type(group).__name__}")
                for j, s in enumerate(group):
                    _span(s, f"{root}[{i}][{j}]", projection, where, spans, rejected)
        else:
            for i, s in enumerate(obj):
                _span(s, f"{root}[{i}]", projection, where, spans, rejected)
    except _Bad as bad:
        raise InputError(f"{where}: {bad.path}: {bad.expected}") from None
    return spans, rejected


class _Bad(Exception):
    def __init__(self, path: str, expected: str):
        self.path = path
        self.expected = expected


def _int(v: Any, path: str) -> int:
    if isinstance(v, bool):
        raise _Bad(path, "expected an integer (microseconds), got a boolean")
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, str) and _INT.fullmatch(v):
        return int(v)
    if v is None:
        return 0
    raise _Bad(path, f"expected an integer (microseconds), got {v!r:.40}")


def typed(key: str, v: str) -> Any:
    if _INT_NAME.search(key) and _INT.fullmatch(v):
        return int(v)
    if _FLOAT_NAME.search(key) and _FLOAT.fullmatch(v):
        return float(v)
    if key.endswith(".stream") and v in ("true", "false"):
        return v == "true"
    return v


def _span(s: Any, p: str, projection: Projection, where: str, spans: list, rejected: list) -> None:
    if not isinstance(s, dict):
        raise _Bad(p, f"expected a Zipkin span object, got {type(s).__name__}")
    tid = foreign.hex_id(s.get("traceId"), 16)
    sid = foreign.hex_id(s.get("id"), 8)
    raw_parent = s.get("parentId")
    parent = "" if raw_parent in (None, "") else foreign.hex_id(raw_parent, 8)
    if not tid or not sid or parent is None:
        rejected.append(Rejected(f"{where}: {p}", "expected a hex traceId (16 or 32 digits), a hex id and an empty or hex parentId"))
        return
    tags = s.get("tags") or {}
    if not isinstance(tags, dict):
        raise _Bad(p + ".tags", f"expected an object of string tags, got {type(tags).__name__}")
    tags = {k: typed(k, v) if isinstance(v, str) else v for k, v in tags.items()}
    ep = s.get("localEndpoint") or {}
    if not isinstance(ep, dict):
        raise _Bad(p + ".localEndpoint", f"expected an object, got {type(ep).__name__}")
    service = ep.get("serviceName") or "unknown_service"
    name = s.get("name") or ""
    if not isinstance(name, str):
        raise _Bad(p + ".name", f"expected a string, got {type(name).__name__}")
    start_us = _int(s.get("timestamp"), p + ".timestamp")
    dur_us = _int(s.get("duration"), p + ".duration")
    kind = foreign.kind_of(s.get("kind")) or 1  # Zipkin leaves INTERNAL spans without a kind
    spans.append(
        Span(
            tid, sid, parent, name, str(service), foreign.scope_of(tags), kind,
            start_us * 1000, (start_us + dur_us) * 1000, 0, foreign.attributes(tags, projection),
            {"service.name": str(service)},
        )
    )
