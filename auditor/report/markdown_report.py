"""A compact GitHub-flavoured summary for a PR comment or a CI job summary.

Span and service names are attacker-controlled: every table cell is escaped so a name can
neither break the table nor inject links, images, HTML or control characters (``safe_text``)
into the comment.
"""

from __future__ import annotations

import re

from auditor.model import AuditResult
from auditor.report import summary
from auditor.report.safe_text import guard, inline
from auditor.rules import all_rules

TOP = 10
_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~>])")


def esc(s: object) -> str:
    text = inline(" ".join(str(s).split()))
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _SPECIAL.sub(r"\\\1", text)


def code(s: object) -> str:
    """A code span for trusted names (schema keys): only what would break the table."""
    return "`" + inline(" ".join(str(s).split())).replace("`", "'").replace("|", "\\|") + "`"


def render(result: AuditResult, options=None) -> str:
    h = summary.headline(result)
    out: list[str] = []
    if h.gate_passed is None:
        status = ""
    else:
        status = ": ✅ gate passed" if h.gate_passed else ": ❌ gate failed"
    out.append(f"## Trace attribution audit{status}")
    out.append("")
    calls = f"**{h.llm_calls}** LLM calls"
    if h.duplicate_records:
        calls += f" ({h.duplicate_records} more recorded twice, counted once)"
    spend = f"spend **{h.spend}** over {h.priced_calls} priced call(s)"
    if h.unpriced_calls:
        spend += f", {h.unpriced_calls} unpriced"
    out.append(f"**{h.traces}** traces · **{h.spans}** spans · {calls} · {spend}")
    out.append("")
    if h.keys:
        out.append("| key | unattributed share | unattributed spend | LLM calls missing it |")
        out.append("|---|---:|---:|---:|")
        for k in h.keys:
            share = k.share_text
            if k.limit is not None:
                share += f" (limit {k.limit:g}%)"
            mark = " ❗" if k.missing else ""
            out.append(f"| {code(k.key)}{mark} | {share} | {k.unattributed} | {k.missing} of {k.llm_calls} |")
        out.append("")
    if result.boundaries:
        n = len(result.boundaries)
        basis = "unattributed spend" if summary.ranked_by_cost(result) else "traces"
        shown = result.boundaries[:TOP]
        title = f"### Leaking boundaries ({n}, worst first by {basis}"
        out.append(title + (f"; top {TOP})" if n > TOP else ")"))
        out.append("")
        out.append("| # | class | parent → child | keys | traces | LLM calls | unattributed |")
        out.append("|---:|---|---|---|---:|---:|---:|")
        for i, b in enumerate(shown, 1):
            hop = f"{esc(b.boundary.parent)} → {esc(b.boundary.child)}"
            keys = ", ".join(code(k) for k in b.keys)
            out.append(
                f"| {i} | {b.boundary.cls.value} | {hop} | {keys} | {b.traces} | {b.llm_calls_affected} | "
                f"{summary.money(b.unattributed_cost_usd)} |"
            )
        out.append("")
        fixes: dict[str, list[int]] = {}
        for i, b in enumerate(shown, 1):
            fixes.setdefault(b.fix, []).append(i)
        out.append("<details><summary>How to fix</summary>")
        out.append("")
        for fix, idx in fixes.items():
            out.append(f"- **{', '.join(f'#{i}' for i in idx)}**: {fix}")
        out.append("")
        out.append("</details>")
        out.append("")
    else:
        out.append("No leaking boundaries.")
        out.append("")
    if result.finding_counts:
        rules = {r.code: r for r in all_rules()}
        out.append("| finding | count | meaning |")
        out.append("|---|---:|---|")
        for c, n in result.finding_counts.items():
            meaning = rules[c].summary if c in rules else ""
            out.append(f"| {code(c)} | {n} | {meaning} |")
        out.append("")
    if h.gate_passed is not None:
        if h.gate_passed:
            out.append(f"**Gate: passed** (fail on {h.fail_on}).")
        else:
            out.append(f"**Gate: failed** (fail on {h.fail_on}):")
            out.append("")
            for r in h.gate_reasons:
                out.append(f"- {inline(r, 2000)}")
    return guard("\n".join(out).rstrip() + "\n")
