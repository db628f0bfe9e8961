"""The sidecar's live page: the running audit, the unattributed share per key over trace time,
the worst boundaries now, and the findings a page at a time (a big store made a 10 MB page).

Like every reporter it reads a finished AuditResult (and the Trend derived from it); no script
at all (``script-src 'none'``), filters and pages are plain links and a GET form.
"""

from __future__ import annotations

import math
from typing import Mapping
from urllib.parse import urlencode

from auditor import __version__
from auditor.model import AuditResult
from auditor.report import charts, summary
from auditor.report.html_report import _env
from auditor.trend import BUCKETS, Trend

PAGE_SIZE = 100
MAX_WORST = 10
REFRESH = 30
CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'none'; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")


def _int(v: str | None, default: int) -> int:
    return int(v) if v and v.isdigit() and len(v) < 9 else default


def bucket_of(query: Mapping[str, str], default: str) -> str:
    b = query.get("bucket", "")
    return b if b in BUCKETS else default


def page(result: AuditResult, tr: Trend, query: Mapping[str, str], refresh: int = REFRESH) -> tuple[str, str]:
    """(html, Content-Security-Policy) for ``/live?page=N&code=&key=&severity=&bucket=``."""
    codes = sorted(result.finding_counts)
    keys = sorted({f.key for f in result.findings if f.key})
    severities = [s for s in ("error", "warning", "note") if any(f.severity.value == s for f in result.findings)]
    sel = {
        "code": query.get("code", "") if query.get("code", "") in codes else "",
        "key": query.get("key", "") if query.get("key", "") in keys else "",
        "severity": query.get("severity", "") if query.get("severity", "") in severities else "",
    }
    found = [
        f for f in result.findings
        if (not sel["code"] or f.code == sel["code"]) and (not sel["key"] or f.key == sel["key"])
        and (not sel["severity"] or f.severity.value == sel["severity"])
    ]
    found.sort(key=lambda f: (-f.severity.rank, f.code, f.sort_key()))
    pages = max(1, math.ceil(len(found) / PAGE_SIZE))
    n = min(max(1, _int(query.get("page"), 1)), pages)
    chunk = found[(n - 1) * PAGE_SIZE : n * PAGE_SIZE]

    def page_link(k: int) -> str:
        q = {k2: v for k2, v in sel.items() if v}
        return "live?" + urlencode({**q, "bucket": tr.bucket, "page": k})

    html = _env().get_template("live.html.j2").render(
        h=summary.headline(result),
        schema=result.run.schema,
        refresh=refresh,
        csp=CSP,
        bucket=tr.bucket,
        other_bucket="hour" if tr.bucket == "minute" else "minute",
        trend_chart=charts.trend_chart(tr, result.policy.max_unattributed_pct),
        boundary_chart=charts.boundaries(result),
        worst=result.boundaries[:MAX_WORST],
        money=summary.money,
        total_findings=len(result.findings),
        shown_total=len(found),
        findings=chunk,
        page=n,
        pages=pages,
        first=(n - 1) * PAGE_SIZE + 1 if chunk else 0,
        last=(n - 1) * PAGE_SIZE + len(chunk),
        page_link=page_link,
        codes=codes,
        keys=keys,
        severities=severities,
        sel=sel,
        version=__version__,
    )
    return html, CSP
