"""A live ClickHouse server's ``otel_traces`` through clickhouse-connect (HTTP interface).

``clickhouse://HOST:PORT/DB?table=otel_traces&since=...&until=...`` (``clickhouses://`` for
HTTPS; user and password in the URL or ``CLICKHOUSE_USER`` / ``CLICKHOUSE_PASSWORD``).
``since`` / ``until`` bound ``Timestamp`` (anything ClickHouse's ``parseDateTime64BestEffort``
reads, e.g. ``2026-05-01`` or ``2026-05-01T12:00:00Z``); ``part=I/N`` keeps the traces whose
``cityHash64(TraceId) % N = I`` (the cluster engine reads one part per task).

Rows are streamed ordered by ``TraceId``, block by block, and every batch handed on ends at a
trace boundary, so a consumer that audits each batch as it comes (``check`` does, with a
one-batch window) holds one block's traces at a time, not the table.

Not tested against a live server in this repository (chdb, the in-process ClickHouse the tests
use, has no HTTP interface); the row decoding is the one the Parquet and JSONEachRow tests run.
"""

from __future__ import annotations

import os
from typing import Iterator
from urllib.parse import parse_qs, unquote, urlsplit

from auditor.errors import InputError
from auditor.ingest.clickhouse import COLUMNS, REQUIRED, decode_rows
from auditor.model import Rejected, Span
from auditor.projection import Projection

SCHEMES = ("clickhouse://", "clickhouses://")
_NAME = __import__("re").compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def is_url(source: str) -> bool:
    return source.startswith(SCHEMES)


def parse(url: str) -> dict:
    u = urlsplit(url)
    q = {k: v[-1] for k, v in parse_qs(u.query).items()}
    db = (u.path or "/").strip("/") or "default"
    table = q.get("table", "otel_traces")
    for what, name in (("database", db), ("table", table)):
        if not _NAME.match(name):
            raise InputError(f"{_safe(url)}: {what} {name!r}: expected a plain ClickHouse identifier")
    part = None
    if "part" in q:
        try:
            i, n = (int(x) for x in q["part"].split("/"))
            assert 0 <= i < n
        except (ValueError, AssertionError):
            raise InputError(f"{_safe(url)}: part={q['part']!r}: expected I/N with 0 <= I < N") from None
        part = (i, n)
    return {
        "host": u.hostname or "localhost",
        "port": u.port or (8443 if u.scheme == "clickhouses" else 8123),
        "secure": u.scheme == "clickhouses",
        "username": unquote(u.username) if u.username else os.environ.get("CLICKHOUSE_USER", "default"),
        "password": unquote(u.password) if u.password else os.environ.get("CLICKHOUSE_PASSWORD", ""),
        "database": db, "table": table, "since": q.get("since"), "until": q.get("until"), "part": part,
    }


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    u = urlsplit(url)
    if u.password:
        return url.replace(":" + u.password + "@", ":***@", 1)
    return url


def query(p: dict, columns: tuple[str, ...] = COLUMNS) -> tuple[str, dict]:
    where, params = [], {}
    if p["since"]:
        where.append("Timestamp >= parseDateTime64BestEffort({since:String}, 9)")
        params["since"] = p["since"]
    if p["until"]:
        where.append("Timestamp < parseDateTime64BestEffort({until:String}, 9)")
        params["until"] = p["until"]
    if p["part"]:
        where.append(f"cityHash64(TraceId) % {p['part'][1]} = {p['part'][0]}")
    cols = ", ".join(columns)
    sql = f"SELECT {cols} FROM {p['database']}.{p['table']}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    return sql + " ORDER BY TraceId", params


def iter_server(url: str, projection: Projection) -> Iterator[tuple[list[Span], list[Rejected]]]:
    try:
        import clickhouse_connect
    except ImportError:
        raise InputError(f"{_safe(url)}: reading ClickHouse needs clickhouse-connect: "
                         "pip install 'trace-attribution-auditor[clickhouse]'") from None
    p = parse(url)
    where = _safe(url)
    try:
        client = clickhouse_connect.get_client(host=p["host"], port=p["port"], username=p["username"],
                                               password=p["password"], secure=p["secure"], database=p["database"])
    except Exception as e:  # noqa: BLE001 - one line for the user, whatever the driver raised
        raise InputError(f"{where}: cannot connect: {str(e).splitlines()[0][:200]}") from None
    n = 0
    carry: list = []
    try:
        # Older exporters' tables have no ScopeName column (the scope is otel.scope.name in
        # SpanAttributes): select the columns this table has.
        have = {r[0] for r in client.query(
            "SELECT name FROM system.columns WHERE database = {db:String} AND table = {t:String}",
            parameters={"db": p["database"], "t": p["table"]}).result_rows}
        missing = [c for c in REQUIRED if c not in have]
        if missing:
            raise InputError(f"{where}: column {missing[0]}: expected the clickhouseexporter's otel_traces table "
                             f"{p['database']}.{p['table']} ({', '.join(REQUIRED)}, ...)")
        sql, params = query(p, tuple(c for c in COLUMNS if c in have))
        with client.query_row_block_stream(sql, parameters=params) as stream:
            names = stream.source.column_names
            for block in stream:
                rows = carry + [dict(zip(names, r)) for r in block]
                if not rows:
                    continue
                last = rows[-1]["TraceId"]  # its trace may go on in the next block
                cut = len(rows)
                while cut and rows[cut - 1]["TraceId"] == last:
                    cut -= 1
                if cut:
                    yield decode_rows(rows[:cut], projection, where, n)
                    n += cut
                carry = rows[cut:]
        if carry:
            yield decode_rows(carry, projection, where, n)
    except InputError:
        raise
    except Exception as e:  # noqa: BLE001
        raise InputError(f"{where}: row {n}: query failed: {str(e).splitlines()[0][:200]}") from None
    finally:
        client.close()
