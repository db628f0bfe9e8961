"""Build traces for tests: Span objects and their OTLP protobuf / JSON encodings.

Tests describe trees with ``node(...)`` and get real OTLP bytes back, so the same trace can
be fed through every decoder and the CLI.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from auditor.ingest.otlp_json_writer import to_otlp_json
from auditor.model import Span

T0 = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z

LLM = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.usage.input_tokens": 1000,
    "gen_ai.usage.output_tokens": 100,
}


def tid(n: int) -> str:
    return f"{n:032x}"


def sid(n: int) -> str:
    return f"{n:016x}"


def mk(
    trace: int,
    span: int,
    parent: int | None,
    name: str = "op",
    service: str = "svc",
    scope: str = "app",
    attrs: dict | None = None,
    start: int = 0,
    dur: int = 1000,
    flags: int = 0,
    resource: dict | None = None,
    kind: int = 1,
    links: tuple[tuple[str, str], ...] = (),
) -> Span:
    res = {"service.name": service, **(resource or {})}
    return Span(
        tid(trace), sid(span), sid(parent) if parent else "", name, service, scope, kind,
        T0 + start, T0 + start + dur, flags, {k: _frozen(v) for k, v in (attrs or {}).items()}, res,
        False, tuple(links),
    )


def _frozen(v: Any) -> Any:
    """Decoders return arrays as tuples; builders accept lists for convenience."""
    if isinstance(v, list):
        return tuple(_frozen(x) for x in v)
    return v


def _any(v: Any) -> AnyValue:
    if isinstance(v, bool):
        return AnyValue(bool_value=v)
    if isinstance(v, int):
        return AnyValue(int_value=v)
    if isinstance(v, float):
        return AnyValue(double_value=v)
    if isinstance(v, (list, tuple)):
        a = AnyValue()
        a.array_value.values.extend(_any(x) for x in v)
        return a
    if isinstance(v, dict):
        a = AnyValue()
        a.kvlist_value.values.extend(KeyValue(key=k, value=_any(x)) for k, x in v.items())
        return a
    if isinstance(v, bytes):
        return AnyValue(bytes_value=v)
    return AnyValue(string_value=str(v))


def to_request(spans: list[Span]) -> ExportTraceServiceRequest:
    """One ResourceSpans per (service, resource), one ScopeSpans per scope, in given order."""
    req = ExportTraceServiceRequest()
    groups: dict = {}
    for s in spans:
        rkey = (s.service, json.dumps(sorted((k, repr(v)) for k, v in s.resource.items())))
        if rkey not in groups:
            rs = req.resource_spans.add()
            res = dict(s.resource)
            res.setdefault("service.name", s.service)
            rs.resource.attributes.extend(KeyValue(key=k, value=_any(v)) for k, v in res.items())
            groups[rkey] = (rs, {})
        rs, scopes = groups[rkey]
        if s.scope not in scopes:
            ss = rs.scope_spans.add()
            ss.scope.name = s.scope
            scopes[s.scope] = ss
        p = scopes[s.scope].spans.add()
        p.trace_id = bytes.fromhex(s.trace_id)
        p.span_id = bytes.fromhex(s.span_id)
        if s.parent_span_id:
            p.parent_span_id = bytes.fromhex(s.parent_span_id)
        p.name = s.name
        p.kind = s.kind
        p.start_time_unix_nano = s.start_ns
        p.end_time_unix_nano = s.end_ns
        p.flags = s.flags
        p.attributes.extend(KeyValue(key=k, value=_any(v)) for k, v in s.attributes.items())
        for lt, ls in s.links:
            link = p.links.add()
            link.trace_id = bytes.fromhex(lt)
            link.span_id = bytes.fromhex(ls)
    return req


def to_pb(spans: list[Span]) -> bytes:
    return to_request(spans).SerializeToString()


def to_json_bytes(spans: list[Span]) -> bytes:
    return json.dumps(to_otlp_json(to_request(spans))).encode()


def to_jsonl_bytes(batches: list[list[Span]]) -> bytes:
    return b"".join(json.dumps(to_otlp_json(to_request(b))).encode() + b"\n" for b in batches)


def to_length_prefixed(batches: list[list[Span]]) -> bytes:
    out = b""
    for b in batches:
        body = to_pb(b)
        out += len(body).to_bytes(4, "big") + body
    return out


@dataclass
class Tree:
    """A trace described as nested nodes; ``spans()`` numbers them depth-first from 1."""

    name: str
    attrs: dict = field(default_factory=dict)
    children: list["Tree"] = field(default_factory=list)
    service: str = "svc"
    scope: str = "app"

    def spans(self, trace: int = 1, first_id: int = 1) -> list[Span]:
        out: list[Span] = []
        counter = [first_id]

        def visit(node: Tree, parent: int | None, depth: int) -> None:
            me = counter[0]
            counter[0] += 1
            out.append(mk(trace, me, parent, node.name, node.service, node.scope, node.attrs, start=me * 10, dur=10_000 - depth))
            for c in node.children:
                visit(c, me, depth + 1)

        visit(self, None, 0)
        return out
