"""Rows of the OpenTelemetry Collector ``clickhouseexporter``'s ``otel_traces`` table.

One row per span, in the exporter's own schema: ``Timestamp`` (DateTime64(9), the start),
``TraceId`` / ``SpanId`` / ``ParentSpanId`` as hex strings, ``SpanName``, ``SpanKind`` and
``StatusCode`` as the exporter's words (``Server``, ``Client``, ``Internal``, ...),
``ServiceName``, ``ResourceAttributes`` and ``SpanAttributes`` as ``Map(String, String)``,
``ScopeName`` / ``ScopeVersion`` (older exporters put the scope in ``SpanAttributes`` as
``otel.scope.name``), ``Duration`` in nanoseconds and ``Events.*`` / ``Links.*`` as parallel
arrays (``Links.TraceId`` / ``Links.SpanId`` are read as the span's links; events are not read).

The same row decoder serves every way such rows arrive: ``SELECT * FROM otel_traces FORMAT
Parquet`` files (read with pyarrow, row group by row group), ``FORMAT JSONEachRow`` lines
(sniffed in ``formats``) and a live server through clickhouse-connect (``clickhouse_source``).

**Typed values.** The exporter writes every attribute value as a string (pdata's
``AsString``: ints in decimal, doubles as text, booleans as ``true``/``false``, arrays and
maps as JSON). Where the conventions expect another type, the string is read back as that
type: every attribute the GenAI semconv table (``schemas/genai-semconv.yaml``, ``types:`` of
the base and of every later version) types as ``int`` / ``double`` / ``boolean`` /
``string[]``. A string that is exactly what the exporter writes for a value of that type is
taken as that value, so GENAI003 is not reported for it: the instrumentation typed it right
and the exporter stringified it (a ClickHouse row cannot tell that apart from an
instrumentation that wrote the string "42", and we give it the benefit of the doubt). A
string that is not (``"many"`` for ``max_tokens``, ``"0.7"`` for a boolean) stays a
string, or becomes the number it spells (``"12.5"`` for an int is the double 12.5), so
GENAI003 judges it exactly as it judges typed input. Token counts of every convention are
read by ``usage.as_int``, which already accepts decimal strings (as the Claude Code preset
relies on).

What the table does not keep is lost: span flags (so a remote parent within one service is
classified by its service, not by the flag), attribute types outside the table above.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from functools import lru_cache
from typing import Any, Iterable, Iterator, Mapping

import yaml

from auditor.errors import InputError
from auditor.ingest import links as links_mod
from auditor.ingest.interning import canonical, share
from auditor.model import EMPTY, Rejected, Span
from auditor.projection import Projection
from auditor.resources import schemas_dir

# Columns read (the rest of ``SELECT *`` is ignored).
COLUMNS = ("Timestamp", "TraceId", "SpanId", "ParentSpanId", "SpanName", "SpanKind", "ServiceName",
           "ResourceAttributes", "ScopeName", "SpanAttributes", "Duration", "Links.TraceId", "Links.SpanId")
REQUIRED = ("Timestamp", "TraceId", "SpanId", "SpanName")

_KINDS = {"unspecified": 0, "internal": 1, "server": 2, "client": 3, "producer": 4, "consumer": 5}
SCOPE_ATTR = "otel.scope.name"
_HEX = re.compile(r"[0-9a-f]+\Z")
_INT = re.compile(r"-?[0-9]+\Z")


def is_row(obj: Any) -> bool:
    """A JSONEachRow line of ``otel_traces`` (exporter column names)."""
    return isinstance(obj, dict) and "TraceId" in obj and "SpanId" in obj and "SpanName" in obj


@lru_cache(maxsize=1)
def typed_attributes() -> Mapping[str, str]:
    """attribute -> int / double / boolean / string[]: every non-string type the GenAI semconv
    table (any version) gives. Read from the bundled YAML, the same file the GENAI rules read."""
    with open(schemas_dir() / "genai-semconv.yaml", encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    types: dict[str, str] = {}
    for name, kind in (doc.get("types") or {}).items():
        types[name] = kind
    versions = [(v.get("changes") or {}) for v in (doc.get("versions") or {}).values()]
    for changes in versions:
        for name, kind in (changes.get("types") or {}).items():
            types.setdefault(name, kind)
    # An old name holds what its new name holds (Strands writes gen_ai.usage.prompt_tokens next to
    # gen_ai.usage.input_tokens): typed alike, or the two read as different values.
    for renamed in [doc.get("renamed") or {}] + [c.get("renamed") or {} for c in versions]:
        for old, spec in renamed.items():
            new = spec.get("new") if isinstance(spec, dict) else None
            if new in types:
                types.setdefault(old, types[new])
    return {k: v for k, v in types.items() if v != "string"}


def retype(kind: str, s: str) -> Any:
    """A stringified value back to the type the conventions give it, when it spells one."""
    if kind in ("int", "double"):
        t = s.strip()
        if _INT.match(t):
            return int(t)
        try:
            f = float(t)
        except ValueError:
            return s
        return f
    if kind == "boolean":
        return True if s == "true" else False if s == "false" else s
    if kind == "string[]":
        if s.startswith("["):
            try:
                v = json.loads(s)
            except ValueError:
                return s
            if isinstance(v, list):
                return tuple(v)
        return s
    return s


def _pairs(m: Any) -> Iterable[tuple[str, Any]]:
    if m is None:
        return ()
    if isinstance(m, Mapping):
        return m.items()
    return m  # pyarrow map: a list of (key, value) tuples


def _attributes(m: Any, projection: Projection, types: Mapping[str, str]) -> dict:
    out = {}
    if projection.keep_all:
        canon, prefixes = None, ()
    else:
        canon, prefixes = canonical(projection.names), projection.prefixes
    for k, v in _pairs(m):
        if canon is not None:
            ck = canon.get(k)
            if ck is not None:
                k = ck
            elif not (prefixes and k.startswith(prefixes)):
                continue
        if v.__class__ is str:
            kind = types.get(k)
            v = retype(kind, v) if kind is not None else share(v)
        out[k] = v
    return out


_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


def timestamp_ns(v: Any) -> int:
    """DateTime64(9) as it arrives: int ns (Parquet), a datetime (clickhouse-connect) or text
    (JSONEachRow: ``2024-05-01 12:00:00.123456789``, read as UTC; ISO with offset also)."""
    if isinstance(v, bool):
        raise ValueError("a boolean")
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return int(v * 1e9) if v < 1e11 else int(v)
    if isinstance(v, _dt.datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=_dt.timezone.utc)
        d = v - _EPOCH
        return (d.days * 86400 + d.seconds) * 1_000_000_000 + d.microseconds * 1000 + getattr(v, "nanosecond", 0)
    if isinstance(v, str):
        s = v.strip()
        if _INT.match(s):
            return int(s)
        frac = 0
        m = re.match(r"(\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?\Z", s)
        if not m:
            raise ValueError(f"{s!r:.40}")
        base = _dt.datetime.fromisoformat(m.group(1).replace(" ", "T"))
        if m.group(2):
            frac = int(m.group(2).ljust(9, "0"))
        tz = m.group(3)
        base = base.replace(tzinfo=_dt.timezone.utc) if not tz or tz == "Z" else _dt.datetime.fromisoformat(
            m.group(1).replace(" ", "T") + (tz if ":" in tz else tz[:3] + ":" + tz[3:]))
        d = base - _EPOCH
        return (d.days * 86400 + d.seconds) * 1_000_000_000 + frac
    raise ValueError(f"a {type(v).__name__}")


def _id(v: Any, n: int) -> str | None:
    if v is None:
        return ""
    if not isinstance(v, str):
        return None
    v = v.lower()
    if v == "":
        return ""
    if len(v) != n or not _HEX.match(v) or not v.strip("0"):
        return None
    return v


_BAD_IDS = "expected a 32-hex-digit non-zero TraceId, a 16-hex-digit non-zero SpanId and an empty or 16-hex-digit ParentSpanId"


def decode_row(row: Mapping[str, Any], projection: Projection, where: str, ids: dict | None = None) -> Span | Rejected:
    """One ``otel_traces`` row -> a Span, or Rejected (unusable ids, a value of the wrong type)."""
    types = typed_attributes()
    tid = _id(row.get("TraceId"), 32)
    sid = _id(row.get("SpanId"), 16)
    pid = _id(row.get("ParentSpanId"), 16)
    if not tid or not sid or pid is None:
        return Rejected(where, _BAD_IDS)
    if ids is not None:
        tid = ids.setdefault(tid, tid)
        sid = ids.setdefault(sid, sid)
        if pid:
            pid = ids.setdefault(pid, pid)
    try:
        start = timestamp_ns(row.get("Timestamp"))
    except ValueError as e:
        return Rejected(f"{where}.Timestamp", f"expected DateTime64(9) (nanoseconds, or 'YYYY-MM-DD hh:mm:ss.fffffffff' UTC), got {e}")
    dur = row.get("Duration") or 0
    if isinstance(dur, str) and _INT.match(dur.strip()):
        dur = int(dur)
    if not isinstance(dur, int) or isinstance(dur, bool):
        return Rejected(f"{where}.Duration", f"expected nanoseconds (an integer), got {dur!r:.40}")
    name = row.get("SpanName") or ""
    service = row.get("ServiceName") or ""
    kind_word = row.get("SpanKind") or ""
    if not isinstance(name, str) or not isinstance(service, str) or not isinstance(kind_word, str):
        return Rejected(where, "expected SpanName, ServiceName and SpanKind as strings")
    w = kind_word.lower()
    kind = _KINDS.get(w[len("span_kind_"):] if w.startswith("span_kind_") else w, 0)
    span_attrs = row.get("SpanAttributes")
    scope = row.get("ScopeName")
    if not scope:
        for k, v in _pairs(span_attrs):
            if k == SCOPE_ATTR:
                scope = v
                break
    try:
        attrs = _attributes(span_attrs, projection, types)
        resource = _attributes(row.get("ResourceAttributes"), projection, types) or EMPTY
    except (TypeError, ValueError, AttributeError):
        return Rejected(where, "expected SpanAttributes and ResourceAttributes as Map(String, String)")
    lt = row.get("Links.TraceId") if links_mod.judged(pid, kind) else None
    lk, nd = _links(lt, row.get("Links.SpanId")) if lt else links_mod.NONE
    return Span(
        tid, sid, pid, share(name), share(service or "unknown_service"), share(scope if isinstance(scope, str) else ""),
        kind, start, start + dur, 0, attrs, resource, False, lk, nd,
    )


def _links(traces: Any, spans: Any) -> tuple[tuple[tuple[str, str], ...], int]:
    """The ``Links`` Nested columns (parallel arrays): unusable or unpaired entries are dropped and counted."""
    if not isinstance(traces, (list, tuple)) or not isinstance(spans, (list, tuple)):
        return (), len(traces) if isinstance(traces, (list, tuple)) else 1
    lk, nd = links_mod.from_hex_pairs(zip(traces, spans), lambda v, nbytes: _id(v, 2 * nbytes))
    return lk, nd + abs(len(traces) - len(spans))


def decode_rows(rows: Iterable[Mapping[str, Any]], projection: Projection, where: str, first: int = 0) -> tuple[list[Span], list[Rejected]]:
    spans: list[Span] = []
    rejected: list[Rejected] = []
    ids: dict[str, str] = {}
    for i, row in enumerate(rows, first):
        s = decode_row(row, projection, f"{where}: row {i}", ids)
        (spans if isinstance(s, Span) else rejected).append(s)
    return spans, rejected


def decode_json_row(obj: Any, projection: Projection, where: str, root: str = "$") -> tuple[list[Span], list[Rejected]]:
    """One JSONEachRow line (``formats`` calls this with ``where`` naming the line)."""
    s = decode_row(obj, projection, where)
    return ([s], []) if isinstance(s, Span) else ([], [s])


# Parquet ---------------------------------------------------------------------------------

PARQUET_MAGIC = b"PAR1"
BATCH_ROWS = 65_536


def _pyarrow():
    try:
        import pyarrow  # noqa: F401
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError("reading Parquet needs pyarrow: pip install 'trace-attribution-auditor[parquet]'") from None
    return pq


def parquet_row_groups(source: Any, where: str) -> int:
    pq = _pyarrow()
    try:
        return pq.ParquetFile(source).num_row_groups
    except Exception as e:  # noqa: BLE001 - pyarrow's errors are many; one line for the user
        raise InputError(f"{where}: offset 0: expected a Parquet file (footer, row groups): {str(e).splitlines()[0][:200]}") from None


def iter_parquet(source: Any, projection: Projection, where: str, row_groups: Iterable[int] | None = None) -> Iterator[tuple[list[Span], list[Rejected]]]:
    """Batches of spans from a Parquet export of ``otel_traces`` (a path or a seekable file),
    a row group at a time (``row_groups``: only these)."""
    pq = _pyarrow()
    import pyarrow as pa

    try:
        pf = pq.ParquetFile(source)
    except Exception as e:  # noqa: BLE001
        raise InputError(f"{where}: offset 0: expected a Parquet file (footer, row groups): {str(e).splitlines()[0][:200]}") from None
    names = set(pf.schema_arrow.names)
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        raise InputError(f"{where}: column {missing[0]}: expected the clickhouseexporter's otel_traces columns "
                         f"({', '.join(REQUIRED)}, ...); found {', '.join(sorted(names)[:8])}")
    cols = [c for c in COLUMNS if c in names]
    n = 0
    groups = list(row_groups) if row_groups is not None else None
    try:
        for batch in pf.iter_batches(batch_size=BATCH_ROWS, columns=cols, row_groups=groups):
            data = {}
            for c in cols:
                col = batch.column(c)
                if c == "Timestamp" and pa.types.is_timestamp(col.type):
                    col = col.cast(pa.timestamp("ns", tz=col.type.tz)).cast(pa.int64())
                data[c] = col.to_pylist()
            rows = (dict(zip(cols, vals)) for vals in zip(*(data[c] for c in cols)))
            yield decode_rows(rows, projection, where, n)
            n += batch.num_rows
    except InputError:
        raise
    except Exception as e:  # noqa: BLE001
        raise InputError(f"{where}: row {n}: expected otel_traces rows: {str(e).splitlines()[0][:200]}") from None
