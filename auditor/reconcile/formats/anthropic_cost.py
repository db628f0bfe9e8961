"""Anthropic Admin API cost report (``GET /v1/organizations/cost_report``).

Daily buckets; each result's ``amount`` is a decimal STRING in the currency's lowest unit
(cents for USD: ``"123.45"`` is $1.23). Grouped by ``workspace_id`` and/or ``description``;
with description the row names ``model``, ``service_tier``, ``cost_type`` and
``token_type`` (``uncached_input_tokens``, ``output_tokens``, ``cache_read_input_tokens``,
``cache_creation.ephemeral_5m_input_tokens``, ``cache_creation.ephemeral_1h_input_tokens``).
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

from auditor.reconcile.fields import Reader, day_of
from auditor.reconcile.formats.common import _Marks, buckets, page_spans, fill_defaults, first_result, grouped
from auditor.reconcile.model import CostRow, Dims, UsageExport
from auditor.reconcile.names import long_context, tier_name

KIND = "anthropic-cost-report"
PROVIDER = "anthropic"

TOKEN_TYPES = {
    "uncached_input_tokens": "uncached_input",
    "output_tokens": "output",
    "cache_read_input_tokens": "cache_read",
    "cache_creation.ephemeral_5m_input_tokens": "cache_write_5m",
    "cache_creation.ephemeral_1h_input_tokens": "cache_write_1h",
}
CENTS = Decimal(100)


def detect(docs: list[Any]) -> bool:
    r = first_result(docs)
    return r is not None and "amount" in r and "object" not in r and isinstance(r.get("amount"), str)


def read(docs: list[Any], where: str) -> UsageExport:
    r = Reader(where)
    marks: list[tuple[str, int]] = []
    it, dups = buckets(docs, r, _Marks(marks, lambda: len(rows)))
    rows: list[CostRow] = []
    intervals = []
    for path, b, results in it:
        start = r.rfc3339(b, "starting_at", path)
        end = r.rfc3339(b, "ending_at", path)
        intervals.append((start, end))
        day = day_of(start)
        for k, res in enumerate(results):
            p = f"{path}.results[{k}]"
            res = r.obj(res, p)
            if "amount" not in res:
                raise r.fail(f"{p}.amount", "a decimal string in cents")
            cents = r.money(res["amount"], f"{p}.amount")
            currency = res.get("currency", "USD")
            if not isinstance(currency, str) or currency.upper() != "USD":
                raise r.fail(f"{p}.currency", '"USD"', currency)
            token_type = r.text(res, "token_type", p)
            if token_type is not None and token_type not in TOKEN_TYPES:
                raise r.fail(f"{p}.token_type", "one of " + ", ".join(TOKEN_TYPES), token_type)
            tier = r.text(res, "service_tier", p)
            dims = Dims(
                provider=PROVIDER,
                model=r.text(res, "model", p),
                workspace_id=r.text(res, "workspace_id", p),
                tier=None if tier is None else tier_name(tier),
                context=long_context(r.text(res, "context_window", p)),
            )
            rows.append(
                CostRow(day, dims, cents / CENTS, TOKEN_TYPES.get(token_type) if token_type else None, r.text(res, "cost_type", p) or "tokens")
            )
    by = grouped([x.dims for x in rows])
    rows = fill_defaults(rows, by, lambda row, ch: replace(row, dims=replace(row.dims, **ch)))
    return UsageExport(where, KIND, PROVIDER, costs=tuple(rows), intervals=tuple(intervals), grouped_by=by, duplicate_pages=dups, pages=page_spans(marks, len(rows)))
