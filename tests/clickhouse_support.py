"""Real ClickHouse (chdb, in-process) holding the Collector clickhouseexporter's ``otel_traces``.

The table is created from the exporter's own DDL (``fixtures/clickhouse/otel_traces.sql``);
rows are inserted as the exporter's ``pushTraceData`` writes them (hex ids, the kind and status
as words, ``ServiceName`` from the resource, every attribute value through pdata's
``AsString``); files are exported by ClickHouse SQL (``SELECT * ... FORMAT Parquet`` /
``JSONEachRow``).
"""

from __future__ import annotations

import atexit
import base64
import datetime as dt
import json
import math
import shutil
import tempfile
from pathlib import Path

DDL = (Path(__file__).parent / "fixtures" / "clickhouse" / "otel_traces.sql").read_text()
OLDER_DDL = (Path(__file__).parent / "fixtures" / "clickhouse" / "otel_traces_older.sql").read_text()
KIND_WORDS = {0: "Unspecified", 1: "Internal", 2: "Server", 3: "Client", 4: "Producer", 5: "Consumer"}


def _raw(v):
    if isinstance(v, tuple):
        return [_raw(x) for x in v]
    if isinstance(v, dict):
        return {k: _raw(x) for k, x in v.items()}
    if isinstance(v, bytes):
        return base64.b64encode(v).decode()
    return v


def as_string(v) -> str:
    """pdata ``Value.AsString`` (what the exporter's ``attributesToMap`` stores)."""
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):  # float64AsString: ES6 number formatting
        if math.isinf(v) or math.isnan(v):
            return f"json: unsupported value: {v}"
        if v.is_integer() and abs(v) < 1e21:
            return str(int(v))
        return repr(v)
    if isinstance(v, bytes):
        return base64.b64encode(v).decode()
    return json.dumps(_raw(v), separators=(",", ":"))


def _ts(ns: int) -> str:
    s = dt.datetime.fromtimestamp(ns // 1_000_000_000, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    return f"{s}.{ns % 1_000_000_000:09d}"


def older_exporter_row(span) -> dict:
    """An older exporter: the scope as otel.scope.name in SpanAttributes, no scope columns."""
    row = exporter_row(span)
    del row["ScopeName"], row["ScopeVersion"]
    if span.scope:
        row["SpanAttributes"]["otel.scope.name"] = span.scope
    return row


def exporter_row(span) -> dict:
    return {
        "Timestamp": _ts(span.start_ns),
        "TraceId": span.trace_id,
        "SpanId": span.span_id,
        "ParentSpanId": span.parent_span_id,
        "TraceState": "",
        "SpanName": span.name,
        "SpanKind": KIND_WORDS.get(span.kind, "Unspecified"),
        "ServiceName": span.resource.get("service.name", "") if isinstance(span.resource.get("service.name"), str) else "",
        "ResourceAttributes": {k: as_string(v) for k, v in span.resource.items()},
        "ScopeName": span.scope,
        "ScopeVersion": "",
        "SpanAttributes": {k: as_string(v) for k, v in span.attributes.items()},
        "Duration": max(0, span.end_ns - span.start_ns),
        "StatusCode": "Unset",
        "StatusMessage": "",
        "Links.TraceId": [t for t, _ in span.links],
        "Links.SpanId": [s for _, s in span.links],
        "Links.TraceState": ["" for _ in span.links],
        "Links.Attributes": [{} for _ in span.links],
    }


class ClickHouse:
    """A chdb session with the exporter's table in database ``otel``, and an older exporter's
    table in ``otel_old``. chdb runs one embedded server per process: use ``shared()``."""

    def __init__(self, path: str):
        from chdb import session

        self.s = session.Session(path)
        for db, ddl in (("otel_old", OLDER_DDL), ("otel", DDL)):
            self.s.query(f"CREATE DATABASE IF NOT EXISTS {db}")
            self.s.query(f"USE {db}")
            self.s.query(ddl)

    def insert(self, rows, db: str = "otel") -> None:
        body = "\n".join(json.dumps(r) for r in rows)
        self.s.query(f"INSERT INTO {db}.otel_traces SETTINGS session_timezone='UTC' FORMAT JSONEachRow\n{body}\n")

    def export(self, fmt: str, where: str = "", db: str = "otel", settings: str = "") -> bytes:
        q = (f"SELECT * FROM {db}.otel_traces {where} ORDER BY ServiceName, SpanName, Timestamp "
             f"SETTINGS session_timezone='UTC'{', ' + settings if settings else ''} FORMAT {fmt}")
        return self.s.query(q).bytes()

    def truncate(self, db: str = "otel") -> None:
        self.s.query(f"TRUNCATE TABLE {db}.otel_traces")


_shared: ClickHouse | None = None


def shared() -> ClickHouse:
    """The process's one chdb server (a second path in one process is refused by chdb)."""
    global _shared
    if _shared is None:
        path = tempfile.mkdtemp(prefix="chdb-tests-")
        atexit.register(shutil.rmtree, path, True)
        _shared = ClickHouse(path)
    return _shared
