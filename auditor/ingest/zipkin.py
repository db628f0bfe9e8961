"""Zipkin JSON: v2 (``/api/v2/trace/{id}``: a list of spans; ``/api/v2/traces``: a list of such
lists; or one span object on its own) and v1 (``/api/v1``: ``binaryAnnotations`` and endpoints
inside the annotations), converted to v2 first.

Every Zipkin tag is a string, so the types OTLP had are gone. We restore what the audit
computes with: JSON arrays of scalars become arrays (as for Jaeger), and whole numbers and
decimals come back for count- and price-like attribute names (tokens, counts, ports, cost,
sampling parameters). Attribution values always stay strings: a tenant id "007" is text.

**Shared spans (B3's single-span RPC model).** A client span and its server half may carry the
same span id, the server half marked ``"shared": true`` (Zipkin v2), or both halves of one RPC
may sit in one v1 span (``cs``/``sr`` annotations from two endpoints). Span ids must be unique
for assembly, so, the way Zipkin's own tree builder does it (``zipkin2.internal.SpanNode``:
a shared span is keyed by id *and* local endpoint, its parent is the client with that id, and a
span whose parent id is shared attaches to the shared half on its own endpoint), within one
document and one trace:

1. when a shared span's id is also carried by another span, the shared half gets a derived id:
   the first 8 bytes of blake2b(``trace id / span id / its local endpoint``), the same on every
   run and whatever the order of the spans, so both halves stay and neither depends on clock
   skew;
2. its parent becomes the client half (a non-shared span with that id); with no client half
   in the document it keeps its own ``parentId``;
3. a non-shared span whose ``parentId`` names such an id is re-parented onto the shared half
   with the same local endpoint (service name, address and port), else onto the only shared
   half of its own service; otherwise it stays under the client half.

A v1 span is split the way Zipkin's ``V1SpanConverter`` does it: one v2 span per local
endpoint (by service name); with both ``cs`` and ``sr`` the server side is shared, and a
server-only v1 span without its own ``timestamp`` is shared too (v1's convention for the
half that does not own the span). String binary annotations become tags of the span of their
endpoint; address annotations (``ca``, ``sa``, ``ma``) only say where the remote side was.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from auditor.errors import InputError
from auditor.ingest import foreign
from auditor.model import Rejected, Span
from auditor.projection import Projection

_INT_NAME = re.compile(r"(tokens?|token_count\..*|\.count|\.port|\.seed|max_tokens|status_code)$")
_FLOAT_NAME = re.compile(r"(cost(\..*)?|\.temperature|\.top_p|\.top_k|_penalty)$")
_INT = re.compile(r"-?(0|[1-9][0-9]*)")
_FLOAT = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?")

_V2_ONLY = ("localEndpoint", "remoteEndpoint", "kind", "tags", "shared")


def _span_like(o: Any) -> bool:
    return isinstance(o, dict) and "traceId" in o and "id" in o


def is_zipkin(obj: Any) -> bool:
    if _span_like(obj):
        return True  # a single span object, as a Zipkin UI's span detail shows it
    if not isinstance(obj, list) or not obj:
        return False
    first = obj[0]
    if isinstance(first, list):
        return bool(first) and _span_like(first[0])
    return _span_like(first)


def decode(obj: Any, projection: Projection, where: str, root: str = "$") -> tuple[list[Span], list[Rejected]]:
    rejected: list[Rejected] = []
    records: list[_Z] = []
    try:
        if isinstance(obj, dict):
            _record(obj, root, where, records, rejected)
        elif isinstance(obj[0], list):
            for i, group in enumerate(obj):
                if not isinstance(group, list):
                    raise InputError(f"{where}: {root}[{i}]: expected an array of Zipkin spans, got {type(group).__name__}")
                for j, s in enumerate(group):
                    _record(s, f"{root}[{i}][{j}]", where, records, rejected)
        else:
            for i, s in enumerate(obj):
                _record(s, f"{root}[{i}]", where, records, rejected)
    except _Bad as bad:
        raise InputError(f"{where}: {bad.path}: {bad.expected}") from None
    unshare(records)
    return [r.span(projection) for r in records], rejected


class _Bad(Exception):
    def __init__(self, path: str, expected: str):
        self.path = path
        self.expected = expected


@dataclass(slots=True)
class _Z:
    """One v2 span, ids normalised, before sharing is resolved."""

    trace_id: str
    span_id: str
    parent: str
    shared: bool
    endpoint: tuple  # (serviceName, ipv4, ipv6, port): Zipkin's Endpoint equality
    service: str
    name: str
    kind: int
    start_us: int
    dur_us: int
    tags: dict

    def span(self, projection: Projection) -> Span:
        tags = {k: typed(k, v) if isinstance(v, str) else v for k, v in self.tags.items()}
        return Span(
            self.trace_id, self.span_id, self.parent, self.name, self.service, foreign.scope_of(tags), self.kind,
            self.start_us * 1000, (self.start_us + self.dur_us) * 1000, 0, foreign.attributes(tags, projection),
            {"service.name": self.service},
        )


def derived_id(trace_id: str, span_id: str, endpoint: tuple) -> str:
    """The id a shared server half gets: deterministic, never zero."""
    key = "/".join((trace_id, span_id, *("" if x is None else str(x) for x in endpoint)))
    h = hashlib.blake2b(key.encode(), digest_size=8).hexdigest()
    return h if h.strip("0") else "0" * 15 + "1"


def unshare(records: list[_Z]) -> None:
    """Give shared halves their own ids and re-parent server-side children (module docstring)."""
    by_id: dict[tuple[str, str], list[_Z]] = {}
    for r in records:
        by_id.setdefault((r.trace_id, r.span_id), []).append(r)
    halves: dict[tuple[str, str], list[_Z]] = {}
    for (tid, sid), group in by_id.items():
        shared = [r for r in group if r.shared]
        if not shared or len(group) == 1:
            continue
        has_client = any(not r.shared for r in group)
        for r in shared:
            r.span_id = derived_id(tid, sid, r.endpoint)
            if has_client:
                r.parent = sid
        halves[(tid, sid)] = shared
    if not halves:
        return
    for r in records:
        if r.shared or not r.parent:
            continue
        hs = halves.get((r.trace_id, r.parent))
        if hs is None:
            continue
        exact = {h.span_id for h in hs if h.endpoint == r.endpoint}
        same_service = {h.span_id for h in hs if h.service == r.service}
        pick = exact if len(exact) == 1 else same_service if len(same_service) == 1 else set()
        if pick:
            r.parent = next(iter(pick))


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


def is_v1(s: dict) -> bool:
    """Zipkin's own test: v1 has binaryAnnotations or endpoints inside annotations, and none of
    v2's fields."""
    if any(k in s for k in _V2_ONLY):
        return False
    if "binaryAnnotations" in s:
        return True
    anns = s.get("annotations")
    return isinstance(anns, list) and any(isinstance(a, dict) and "endpoint" in a for a in anns)


def _record(s: Any, p: str, where: str, records: list, rejected: list) -> None:
    if not isinstance(s, dict):
        raise _Bad(p, f"expected a Zipkin span object, got {type(s).__name__}")
    if is_v1(s):
        for v2 in v1_to_v2(s, p):
            _record_v2(v2, p, where, records, rejected)
    else:
        _record_v2(s, p, where, records, rejected)


def _endpoint(ep: Any, path: str) -> dict:
    ep = ep or {}
    if not isinstance(ep, dict):
        raise _Bad(path, f"expected an object, got {type(ep).__name__}")
    return ep


def _endpoint_key(ep: dict) -> tuple:
    return (ep.get("serviceName") or None, ep.get("ipv4") or None, ep.get("ipv6") or None, ep.get("port") or None)


def _record_v2(s: dict, p: str, where: str, records: list, rejected: list) -> None:
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
    ep = _endpoint(s.get("localEndpoint"), p + ".localEndpoint")
    service = ep.get("serviceName") or "unknown_service"
    name = s.get("name") or ""
    if not isinstance(name, str):
        raise _Bad(p + ".name", f"expected a string, got {type(name).__name__}")
    start_us = _int(s.get("timestamp"), p + ".timestamp")
    dur_us = _int(s.get("duration"), p + ".duration")
    kind = foreign.kind_of(s.get("kind")) or 1  # Zipkin leaves INTERNAL spans without a kind
    records.append(
        _Z(tid, sid, parent, s.get("shared") is True, _endpoint_key(ep), str(service), name, kind, start_us, dur_us, dict(tags))
    )


# --- Zipkin v1 -> v2 ---------------------------------------------------------------------------

_CORE = {"cs": "CLIENT", "cr": "CLIENT", "sr": "SERVER", "ss": "SERVER", "ms": "PRODUCER", "mr": "CONSUMER"}
_ADDRESS_KEYS = ("ca", "sa", "ma")


def v1_to_v2(s: dict, p: str) -> list[dict]:
    """One v1 span as the v2 spans it stands for (one per local service)."""
    base = {k: s[k] for k in ("traceId", "id", "parentId", "name") if k in s}
    ts = _int(s.get("timestamp"), p + ".timestamp")
    dur = _int(s.get("duration"), p + ".duration")
    first: dict = dict(base)
    others: list[dict] = []

    def new(ep: dict) -> dict:
        d = dict(base, localEndpoint=ep)
        others.append(d)
        return d

    def for_endpoint(ep: dict | None) -> dict:
        if ep is None:
            return first
        if "localEndpoint" not in first:
            first["localEndpoint"] = ep
            return first
        for d in (first, *others):
            if d["localEndpoint"].get("serviceName") == ep.get("serviceName"):
                return d
        return new(ep)

    core: dict[str, tuple[int, dict]] = {}
    anns = s.get("annotations") or []
    if not isinstance(anns, list):
        raise _Bad(p + ".annotations", f"expected an array, got {type(anns).__name__}")
    for i, a in enumerate(anns):
        if not isinstance(a, dict):
            raise _Bad(f"{p}.annotations[{i}]", f"expected an object, got {type(a).__name__}")
        ep = a.get("endpoint")
        if ep is not None:
            ep = _endpoint(ep, f"{p}.annotations[{i}].endpoint")
        value = a.get("value")
        d = for_endpoint(ep)
        if value in _CORE and ep is not None:
            d["kind"] = _CORE[value]
            core[value] = (_int(a.get("timestamp"), f"{p}.annotations[{i}].timestamp"), ep)

    def timed(d: dict, begin: str, end: str) -> None:
        if ts and dur:
            d["timestamp"], d["duration"] = ts, dur
        else:
            d["timestamp"] = core[begin][0]
            if end in core:
                d["duration"] = core[end][0] - core[begin][0]

    cs, sr, ss = core.get("cs"), core.get("sr"), core.get("ss")
    if cs and sr:
        client = for_endpoint(cs[1])
        if client["localEndpoint"].get("serviceName") == sr[1].get("serviceName"):
            client["kind"] = "CLIENT"
            server = new(sr[1])  # loopback: one service on both sides still makes two spans
        else:
            server = for_endpoint(sr[1])
        server["kind"] = "SERVER"
        timed(client, "cs", "cr")
        server["shared"] = True
        server["timestamp"] = sr[0]
        server.pop("duration", None)
        if ss:
            server["duration"] = ss[0] - sr[0]
    elif cs and "cr" in core:
        timed(for_endpoint(cs[1]), "cs", "cr")
    elif sr and ss:
        timed(for_endpoint(sr[1]), "sr", "ss")
    else:
        for d in (first, *others):
            k = d.get("kind")
            begin = {"CLIENT": "cs", "SERVER": "sr", "PRODUCER": "ms", "CONSUMER": "mr"}.get(k or "")
            if begin in core:
                d["timestamp"] = core[begin][0]
        if ts:
            first["timestamp"], first["duration"] = ts, dur
    if not cs and sr and (not ts or (ss and not dur)):
        for_endpoint(sr[1])["shared"] = True  # v1: the half without the span's timestamp is shared

    bins = s.get("binaryAnnotations") or []
    if not isinstance(bins, list):
        raise _Bad(p + ".binaryAnnotations", f"expected an array, got {type(bins).__name__}")
    for i, b in enumerate(bins):
        if not isinstance(b, dict):
            raise _Bad(f"{p}.binaryAnnotations[{i}]", f"expected an object, got {type(b).__name__}")
        key, value = b.get("key"), b.get("value")
        if not isinstance(key, str) or isinstance(value, bool) or value is None:
            continue  # address annotations (ca/sa/ma = true): where the remote side was
        if key in _ADDRESS_KEYS and not isinstance(value, str):
            continue
        if isinstance(value, (int, float)):
            value = str(value)
        elif not isinstance(value, str):
            raise _Bad(f"{p}.binaryAnnotations[{i}].value", f"expected a string, number or boolean, got {type(value).__name__}")
        if key == "lc" and not value:
            continue
        ep = b.get("endpoint")
        d = for_endpoint(None if ep is None else _endpoint(ep, f"{p}.binaryAnnotations[{i}].endpoint"))
        d.setdefault("tags", {})[key] = value
    return [first, *others]
