"""OpenAI organization usage, completions (``GET /v1/organization/usage/completions``).

Pages of ``bucket`` objects (``start_time`` / ``end_time`` in Unix seconds, ``results``)
of ``organization.usage.completions.result``: ``input_tokens`` INCLUDES
``input_cached_tokens``; ``output_tokens``; ``num_model_requests``; grouped by
``project_id``, ``user_id``, ``api_key_id``, ``model``, ``batch`` (and ``service_tier``).
The project stands in the workspace column.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from auditor.reconcile.fields import Reader, day_of
from auditor.reconcile.formats.common import _Marks, buckets, page_spans, fill_defaults, first_result, grouped
from auditor.reconcile.model import Dims, Tokens, UsageExport, UsageRow
from auditor.reconcile.names import tier_name

KIND = "openai-usage-completions"
PROVIDER = "openai"
OBJECT = "organization.usage.completions.result"


def detect(docs: list[Any]) -> bool:
    r = first_result(docs)
    if r is not None:
        return r.get("object") == OBJECT or ("input_cached_tokens" in r and "num_model_requests" in r)
    return any(isinstance(d, dict) and d.get("object") == "page" for d in docs)


def read(docs: list[Any], where: str) -> UsageExport:
    r = Reader(where)
    marks: list[tuple[str, int]] = []
    it, dups = buckets(docs, r, _Marks(marks, lambda: len(rows)))
    rows: list[UsageRow] = []
    intervals = []
    for path, b, results in it:
        start = r.unix(b, "start_time", path)
        end = r.unix(b, "end_time", path)
        if end <= start:
            raise r.fail(f"{path}.end_time", "a time after start_time", b["end_time"])
        intervals.append((start, end))
        day = day_of(start)
        for k, res in enumerate(results):
            p = f"{path}.results[{k}]"
            res = r.obj(res, p)
            obj = res.get("object", OBJECT)
            if obj != OBJECT:
                raise r.fail(f"{p}.object", f'"{OBJECT}" (only completions usage is compared)', obj)
            total_in = r.count(res, "input_tokens", p, required=True)
            cached = r.count(res, "input_cached_tokens", p)
            if cached > total_in:
                raise r.fail(f"{p}.input_cached_tokens", f"at most input_tokens ({total_in}): input_tokens includes cached tokens", cached)
            batch = res.get("batch")
            if batch is not None and not isinstance(batch, bool):
                raise r.fail(f"{p}.batch", "true, false or null", batch)
            service_tier = r.text(res, "service_tier", p)
            tier = "batch" if batch else (tier_name(service_tier) if service_tier or batch is False else None)
            dims = Dims(
                provider=PROVIDER,
                model=r.text(res, "model", p),
                api_key_id=r.text(res, "api_key_id", p),
                workspace_id=r.text(res, "project_id", p),
                tier=tier,
            )
            tokens = Tokens(uncached_input=total_in - cached, cache_read=cached, output=r.count(res, "output_tokens", p, required=True))
            requests = r.count(res, "num_model_requests", p) if "num_model_requests" in res else None
            rows.append(UsageRow(day, dims, tokens, requests))
    by = grouped([x.dims for x in rows])
    rows = fill_defaults(rows, by, lambda row, ch: replace(row, dims=replace(row.dims, **ch)))
    return UsageExport(where, KIND, PROVIDER, usage=tuple(rows), intervals=tuple(intervals), grouped_by=by, duplicate_pages=dups, pages=page_spans(marks, len(rows)))
