"""OpenAI organization costs (``GET /v1/organization/costs``).

Daily ``bucket`` objects whose ``results`` are ``organization.costs.result`` with
``amount: {value, currency}`` (dollars, a number), ``line_item`` (e.g.
``"gpt-4o-mini-2024-07-18, input"``; null unless grouped by line item) and
``project_id`` / ``api_key_id`` when grouped by them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from auditor.reconcile.fields import Reader, day_of
from auditor.reconcile.formats.common import _Marks, buckets, page_spans, fill_defaults, first_result, grouped
from auditor.reconcile.model import CostRow, Dims, UsageExport

KIND = "openai-costs"
PROVIDER = "openai"
OBJECT = "organization.costs.result"


def detect(docs: list[Any]) -> bool:
    r = first_result(docs)
    return r is not None and (r.get("object") == OBJECT or isinstance(r.get("amount"), dict))


def line_item(item: str | None) -> tuple[str | None, str | None, str | None]:
    """(model, token type, tier) from a line item such as ``"gpt-4o, cached input"``."""
    if not item:
        return None, None, None
    model, sep, kind = item.partition(",")
    model = model.strip() or None
    if not sep:
        return model, None, None
    k = kind.strip().lower()
    tier = "batch" if "batch" in k else "standard"
    if "cached" in k or "cache read" in k:
        return model, "cache_read", tier
    if "input" in k:
        return model, "uncached_input", tier
    if "output" in k:
        return model, "output", tier
    return model, None, tier


def read(docs: list[Any], where: str) -> UsageExport:
    r = Reader(where)
    marks: list[tuple[str, int]] = []
    it, dups = buckets(docs, r, _Marks(marks, lambda: len(rows)))
    rows: list[CostRow] = []
    intervals = []
    for path, b, results in it:
        start = r.unix(b, "start_time", path)
        end = r.unix(b, "end_time", path)
        intervals.append((start, end))
        day = day_of(start)
        for k, res in enumerate(results):
            p = f"{path}.results[{k}]"
            res = r.obj(res, p)
            amount = res.get("amount")
            if not isinstance(amount, dict):
                raise r.fail(f"{p}.amount", "an object {value, currency}", amount if "amount" in res else ...)
            if "value" not in amount:
                raise r.fail(f"{p}.amount.value", "a number of dollars")
            usd = r.money(amount["value"], f"{p}.amount.value")
            currency = amount.get("currency", "usd")
            if not isinstance(currency, str) or currency.lower() != "usd":
                raise r.fail(f"{p}.amount.currency", '"usd"', currency)
            model, token_type, tier = line_item(r.text(res, "line_item", p))
            dims = Dims(
                provider=PROVIDER,
                model=model,
                api_key_id=r.text(res, "api_key_id", p),
                workspace_id=r.text(res, "project_id", p),
                tier=tier,
            )
            rows.append(CostRow(day, dims, usd, token_type))
    by = grouped([x.dims for x in rows])
    rows = fill_defaults(rows, by, lambda row, ch: replace(row, dims=replace(row.dims, **ch)))
    return UsageExport(where, KIND, PROVIDER, costs=tuple(rows), intervals=tuple(intervals), grouped_by=by, duplicate_pages=dups, pages=page_spans(marks, len(rows)))
