"""The Anthropic Console's cost CSV export (Cost page, "Export").

Columns, in the Console's order: ``usage_date_utc, model, workspace, api_key, usage_type,
context_window, token_type, cost_usd, list_price_usd, cost_type, inference_geo, speed,
api_key_id, api_key_status``; ``usage_date_utc`` and ``cost_usd`` are required. ``model``
is a display name (``Claude Haiku 4.5``); ``token_type`` is ``input_no_cache``,
``input_cache_read``, ``input_cache_write_5m``, ``input_cache_write_1h`` or ``output``.
Workspaces come by NAME only, so they are not compared (the API reports use ids).
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta, timezone

from auditor.reconcile.fields import Reader, to_ns
from auditor.reconcile.formats.common import grouped
from auditor.reconcile.names import long_context
from auditor.reconcile.model import CostRow, Dims, UsageExport

KIND = "anthropic-console-cost-csv"
PROVIDER = "anthropic"
REQUIRED = ("usage_date_utc", "cost_usd")
TOKEN_TYPES = {
    "input_no_cache": "uncached_input",
    "input_cache_read": "cache_read",
    "input_cache_write_5m": "cache_write_5m",
    "input_cache_write_1h": "cache_write_1h",
    "output": "output",
}


def detect_header(first_line: str) -> bool:
    cols = [c.strip().strip('"').lower() for c in first_line.split(",")]
    return all(c in cols for c in REQUIRED)


def read(text: str, where: str) -> UsageExport:
    r = Reader(where)
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise r.fail("header", f"columns {', '.join(REQUIRED)}", ", ".join(header))
    reader.fieldnames = header
    rows: list[CostRow] = []
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
        usd = r.money(row["cost_usd"], f"{at} cost_usd")
        tt = row.get("token_type") or None
        if tt is not None and tt not in TOKEN_TYPES:
            raise r.fail(f"{at} token_type", "one of " + ", ".join(TOKEN_TYPES), tt)
        usage_type = (row.get("usage_type") or "").lower()
        cost_type = (row.get("cost_type") or "token").lower()
        dims = Dims(
            provider=PROVIDER,
            model=row.get("model") or None,
            api_key_id=row.get("api_key_id") or None,
            tier=("batch" if "batch" in usage_type else "standard") if usage_type else None,
            context=long_context(row.get("context_window")),
        )
        days.add(day)
        rows.append(CostRow(day, dims, usd, TOKEN_TYPES.get(tt) if tt else None, "tokens" if cost_type in ("token", "tokens") else cost_type))
    intervals = tuple(
        (to_ns(datetime(d.year, d.month, d.day, tzinfo=timezone.utc)), to_ns(datetime(d.year, d.month, d.day, tzinfo=timezone.utc) + timedelta(days=1)))
        for d in sorted(days)
    )
    return UsageExport(where, KIND, PROVIDER, costs=tuple(rows), intervals=intervals, grouped_by=grouped([x.dims for x in rows]))
