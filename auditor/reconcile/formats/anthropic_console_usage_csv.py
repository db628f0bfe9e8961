"""The Anthropic Console's usage CSV export (Usage page, "Export"): tokens per day.

Columns: ``usage_date_utc, model_version, api_key, workspace, usage_type, context_window,
usage_input_tokens_no_cache, usage_input_tokens_cache_write_5m,
usage_input_tokens_cache_write_1h, usage_input_tokens_cache_read, usage_output_tokens,
web_search_count, inference_geo, speed``. Keys and workspaces come by NAME here (the API
reports use ids): map gateway values to key names with ``--key-map`` to compare them.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta, timezone

from auditor.reconcile.fields import Reader, to_ns
from auditor.reconcile.formats.common import grouped
from auditor.reconcile.model import DEFAULT, WEB_SEARCH, Dims, Tokens, UsageExport, UsageRow
from auditor.reconcile.names import long_context

KIND = "anthropic-console-usage-csv"
PROVIDER = "anthropic"
REQUIRED = ("usage_date_utc", "usage_input_tokens_no_cache", "usage_output_tokens")
COUNTS = {
    "uncached_input": "usage_input_tokens_no_cache",
    "cache_write_5m": "usage_input_tokens_cache_write_5m",
    "cache_write_1h": "usage_input_tokens_cache_write_1h",
    "cache_read": "usage_input_tokens_cache_read",
    "output": "usage_output_tokens",
}


def detect_header(first_line: str) -> bool:
    cols = [c.strip().strip('"').lower() for c in first_line.split(",")]
    return all(c in cols for c in REQUIRED)


def read(text: str, where: str) -> UsageExport:
    r = Reader(where)
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    if any(c not in header for c in REQUIRED):
        raise r.fail("header", f"columns {', '.join(REQUIRED)}", ", ".join(header))
    reader.fieldnames = header
    rows: list[UsageRow] = []
    days: set[date] = set()
    for n, raw in enumerate(reader, start=2):
        row = {k: (v or "").strip() for k, v in raw.items() if k is not None}
        if not any(row.values()):
            continue
        at = f"line {n} column"
        try:
            day = date.fromisoformat(row["usage_date_utc"][:10])
        except ValueError:
            raise r.fail(f"{at} usage_date_utc", "a date YYYY-MM-DD", row["usage_date_utc"]) from None
        counts = {}
        for field, col in COUNTS.items():
            v = row.get(col) or "0"
            if not v.isdigit():
                raise r.fail(f"{at} {col}", "a token count (integer >= 0)", v)
            counts[field] = int(v)
        usage_type = (row.get("usage_type") or "").lower()
        ws = row.get("workspace") or None
        dims = Dims(
            provider=PROVIDER,
            model=row.get("model_version") or None,
            api_key_id=row.get("api_key") or None,
            workspace_id=DEFAULT if ws == "Default" else ws,
            tier=("batch" if "batch" in usage_type else "standard") if usage_type else None,
            context=long_context(row.get("context_window")),
        )
        tools = None
        if "web_search_count" in header:
            v = row.get("web_search_count") or "0"
            if not v.isdigit():
                raise r.fail(f"{at} web_search_count", "a request count (integer >= 0)", v)
            tools = ((WEB_SEARCH, int(v)),)
        days.add(day)
        rows.append(UsageRow(day, dims, Tokens(**counts), tools=tools))
    intervals = tuple(
        (to_ns(datetime(d.year, d.month, d.day, tzinfo=timezone.utc)), to_ns(datetime(d.year, d.month, d.day, tzinfo=timezone.utc) + timedelta(days=1)))
        for d in sorted(days)
    )
    return UsageExport(where, KIND, PROVIDER, usage=tuple(rows), intervals=intervals, grouped_by=grouped([x.dims for x in rows]))
