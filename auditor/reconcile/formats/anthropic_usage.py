"""Anthropic Admin API usage report (``GET /v1/organizations/usage_report/messages``).

Pages (``data`` of buckets with ``starting_at`` / ``ending_at`` and ``results``) may be
given one file per page or concatenated. Token fields: ``uncached_input_tokens``,
``cache_creation.ephemeral_5m_input_tokens`` / ``ephemeral_1h_input_tokens``,
``cache_read_input_tokens``, ``output_tokens``; grouped by ``api_key_id``,
``workspace_id``, ``model``, ``service_tier`` (and others we sum over). Server-side tool
requests: ``server_tool_use.web_search_requests``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from auditor.reconcile.fields import Reader, day_of
from auditor.reconcile.formats.common import _Marks, buckets, page_spans, fill_defaults, first_result, grouped
from auditor.reconcile.model import WEB_SEARCH, Dims, Tokens, UsageExport, UsageRow
from auditor.reconcile.names import long_context, tier_name

KIND = "anthropic-usage-report"
PROVIDER = "anthropic"


def detect(docs: list[Any]) -> bool:
    r = first_result(docs)
    if r is not None:
        return "uncached_input_tokens" in r or "cache_creation" in r
    return _anthropic_buckets(docs)


def _tools(r: Reader, res: dict, p: str) -> tuple[tuple[str, int], ...] | None:
    """``server_tool_use.web_search_requests``; None when the row does not have the field."""
    stu = res.get("server_tool_use")
    if stu is None:
        return None
    stu = r.obj(stu, f"{p}.server_tool_use")
    if "web_search_requests" not in stu:
        return None
    return ((WEB_SEARCH, r.count(stu, "web_search_requests", f"{p}.server_tool_use")),)


def _anthropic_buckets(docs: list[Any]) -> bool:
    return any(
        isinstance(d, dict) and isinstance(d.get("data"), list) and d["data"]
        and isinstance(d["data"][0], dict) and "starting_at" in d["data"][0]
        for d in docs
    )


def read(docs: list[Any], where: str) -> UsageExport:
    r = Reader(where)
    marks: list[tuple[str, int]] = []
    it, dups = buckets(docs, r, _Marks(marks, lambda: len(rows)))
    rows: list[UsageRow] = []
    intervals = []
    for path, b, results in it:
        start = r.rfc3339(b, "starting_at", path)
        end = r.rfc3339(b, "ending_at", path)
        if end <= start:
            raise r.fail(f"{path}.ending_at", "a time after starting_at", b["ending_at"])
        intervals.append((start, end))
        day = day_of(start)
        for k, res in enumerate(results):
            p = f"{path}.results[{k}]"
            res = r.obj(res, p)
            cc = res.get("cache_creation")
            if cc is None:
                cc = {}
            cc = r.obj(cc, f"{p}.cache_creation")
            tokens = Tokens(
                uncached_input=r.count(res, "uncached_input_tokens", p, required=True),
                cache_read=r.count(res, "cache_read_input_tokens", p),
                cache_write_5m=r.count(cc, "ephemeral_5m_input_tokens", f"{p}.cache_creation"),
                cache_write_1h=r.count(cc, "ephemeral_1h_input_tokens", f"{p}.cache_creation"),
                output=r.count(res, "output_tokens", p, required=True),
            )
            tier = r.text(res, "service_tier", p)
            dims = Dims(
                provider=PROVIDER,
                model=r.text(res, "model", p),
                api_key_id=r.text(res, "api_key_id", p),
                workspace_id=r.text(res, "workspace_id", p),
                tier=None if tier is None else tier_name(tier),
                context=long_context(r.text(res, "context_window", p)),
            )
            rows.append(UsageRow(day, dims, tokens, tools=_tools(r, res, p)))
    by = grouped([x.dims for x in rows])
    rows = fill_defaults(rows, by, lambda row, ch: replace(row, dims=replace(row.dims, **ch)))
    return UsageExport(where, KIND, PROVIDER, usage=tuple(rows), intervals=tuple(intervals), grouped_by=by, duplicate_pages=dups, pages=page_spans(marks, len(rows)))
