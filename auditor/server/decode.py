"""Spool record -> spans for the audit worker, through the same decoders ``auditor check`` uses.

One function per record kind (``auditor.server.signals``); a new signal adds its kinds here.
"""

from __future__ import annotations

import json
from typing import Callable

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from auditor.ingest import otlp_json, otlp_logs, otlp_proto
from auditor.model import Rejected, Span
from auditor.projection import Projection
from auditor.server.signals import LOGS, TRACES

Decoded = tuple[list[Span], list[Rejected]]


def _traces_proto(payload: bytes, projection: Projection, where: str) -> Decoded:
    return otlp_proto.spans_of(ExportTraceServiceRequest.FromString(payload), projection, where)


def _traces_json(payload: bytes, projection: Projection, where: str) -> Decoded:
    obj = json.loads(payload)
    if isinstance(obj, dict) and not obj:
        return [], []
    return otlp_json.decode(obj, projection, where)


def _logs_proto(payload: bytes, projection: Projection, where: str) -> Decoded:
    return otlp_logs.decode_message(payload, projection, where) if payload else ([], [])


def _logs_json(payload: bytes, projection: Projection, where: str) -> Decoded:
    obj = json.loads(payload)
    if isinstance(obj, dict) and not obj:
        return [], []
    return otlp_logs.decode_json(obj, projection, where)


DECODERS: dict[int, Callable[[bytes, Projection, str], Decoded]] = {
    TRACES.kind_proto: _traces_proto,
    TRACES.kind_json: _traces_json,
    LOGS.kind_proto: _logs_proto,
    LOGS.kind_json: _logs_json,
}
