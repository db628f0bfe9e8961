"""The JSON trace formats we recognise, tried in order by what the document looks like.

Each entry is (name, detect, decode). ``detect`` looks only at top-level shape; ``decode``
returns (spans, rejected) and raises InputError naming the JSON path on bad input.
"""

from __future__ import annotations

from typing import Any, Callable

from auditor.errors import InputError
from auditor.ingest import clickhouse, jaeger, otlp_json, otlp_logs, tempo, zipkin
from auditor.model import Rejected, Span
from auditor.projection import Projection

Decoder = Callable[[Any, Projection, str, str], tuple[list[Span], list[Rejected]]]

JSON_FORMATS: list[tuple[str, Callable[[Any], bool], Decoder]] = [
    ("otlp-json", otlp_json.is_otlp_traces, otlp_json.decode),
    ("otlp-logs-json", otlp_logs.is_otlp_logs, otlp_logs.decode_json),
    ("tempo-json", tempo.is_tempo, tempo.decode),
    ("jaeger-json", jaeger.is_jaeger, jaeger.decode),
    ("zipkin-json", zipkin.is_zipkin, zipkin.decode),
    ("clickhouse-jsoneachrow", clickhouse.is_row, clickhouse.decode_json_row),
]


def decode_json_document(obj: Any, projection: Projection, where: str, root: str) -> tuple[list[Span], list[Rejected]]:
    for _name, detect, decode in JSON_FORMATS:
        if detect(obj):
            return decode(obj, projection, where, root)
    if isinstance(obj, dict) and not obj:
        return [], []
    if isinstance(obj, list) and obj and all(otlp_json.is_otlp_traces(o) for o in obj):
        spans: list[Span] = []
        rejected: list[Rejected] = []
        for i, o in enumerate(obj):
            s, r = otlp_json.decode(o, projection, where, f"{root}[{i}]", i)
            spans.extend(s)
            rejected.extend(r)
        return spans, rejected
    shape = f"an object with keys {sorted(obj)[:5]}" if isinstance(obj, dict) else f"a JSON {type(obj).__name__}"
    raise InputError(
        f"{where}: {root}: expected OTLP JSON (resourceSpans){_others()}, found {shape}"
    )


def _others() -> str:
    names = [n for n, _, _ in JSON_FORMATS if n != "otlp-json"]
    return f" or {', '.join(names)}" if names else ""
