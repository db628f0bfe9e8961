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
TOP_GROUPS = 20
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
    out.extend(_delta(result))
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
        out.append("| # | class | parent → child | keys | traces | LLM calls | unattributed | cause |")
        out.append("|---:|---|---|---|---:|---:|---:|---|")
        causes = [summary.cause(b) for b in shown]
        for i, (b, c) in enumerate(zip(shown, causes), 1):
            hop = f"{esc(b.boundary.parent)} → {esc(b.boundary.child)}"
            keys = ", ".join(code(k) for k in b.keys)
            out.append(
                f"| {i} | {b.boundary.cls.value} | {hop} | {keys} | {b.traces} | {b.llm_calls_affected} | "
                f"{summary.money(b.unattributed_cost_usd)} | {esc(c.label) if c else 'unknown'} |"
            )
        out.append("")
        fixes: dict[str, list[int]] = {}
        for i, (b, c) in enumerate(zip(shown, causes), 1):
            fixes.setdefault(c.patch if c else b.fix, []).append(i)
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
    out.extend(_groups(result))
    if h.gate_passed is not None:
        if h.gate_passed:
            out.append(f"**Gate: passed** (fail on {h.fail_on}).")
        else:
            out.append(f"**Gate: failed** (fail on {h.fail_on}):")
            out.append("")
            for r in h.gate_reasons:
                out.append(f"- {inline(r, 2000)}")
    return guard("\n".join(out).rstrip() + "\n")


_STATE = {"new": "🆕 new", "unchanged": "known", "updated": "updated"}


def _groups(result: AuditResult) -> list[str]:
    """Findings grouped by (code, key, place): one row per group, not per span."""
    if not result.groups:
        return []
    base = result.baseline
    n = len(result.groups)
    out = [f"### Findings ({len(result.findings)} in {n} group{'s' if n != 1 else ''}"
           + (f"; top {TOP_GROUPS})" if n > TOP_GROUPS else ")"), ""]
    head = "| severity | code | key | where | findings | traces | LLM spend | e.g. trace |"
    rule = "|---|---|---|---|---:|---:|---:|---|"
    if base is not None:
        head, rule = "| state " + head, "|---" + rule
    out += [head, rule]
    for g in result.groups[:TOP_GROUPS]:
        spend = "" if not g.llm_calls else summary.money(g.cost_usd) if g.unpriced_calls < g.llm_calls else "unpriced"
        row = (f"| {g.severity.value} | {code(g.code)} | {code(g.key) if g.key else ''} | {esc(g.where)} | {g.findings} | "
               f"{g.traces} | {spend} | {code(g.example.trace_id)} |")
        out.append((f"| {_STATE[base.state(g)]} " if base is not None else "") + row)
    out.append("")
    rules = {r.code: r for r in all_rules()}
    used = sorted({g.code for g in result.groups})
    out.append("<details><summary>What the codes mean</summary>")
    out.append("")
    for c in used:
        out.append(f"- {code(c)}: {rules[c].summary if c in rules else ''}")
    out += ["", "</details>", ""]
    return out


def _delta(result: AuditResult) -> list[str]:
    """For a PR comment: what changed against the baseline (new and fixed leaks, share and $ per key)."""
    base = result.baseline
    if base is None:
        return []
    change = base.cost_after - base.cost_before
    out = [f"### Against the baseline {code(base.source)}", "",
           f"**{base.count('new')} new** · {base.count('unchanged')} known · {base.count('updated')} updated · "
           f"**{base.count('absent')} fixed** finding groups · spend {summary.money(base.cost_before)} → "
           f"{summary.money(base.cost_after)} ({'+' if change >= 0 else '-'}{summary.money(abs(change))})", ""]
    if base.keys:
        out += ["| key | unattributed share: baseline → now | change | unattributed $: baseline → now |",
                "|---|---|---:|---|"]
        for k in base.keys:
            rise = "not comparable" if k.rise is None else f"{k.rise:+.1f} points"
            if k.rise is not None and k.rise > base.tolerance_pct:
                rise += " ❗"
            out.append(f"| {code(k.key)} | {summary.pct_text(k.before_pct)} → {summary.pct_text(k.after_pct)} | {rise} | "
                       f"{summary.money(k.before_usd)} → {summary.money(k.after_usd)} |")
        out.append("")
    for title, leaks in (("New leaks", base.new_leaks), ("Fixed leaks", base.fixed_leaks)):
        if not leaks:
            continue
        out += [f"**{title}** ({len(leaks)})", "", "| class | parent → child | keys | LLM calls | unattributed |",
                "|---|---|---|---:|---:|"]
        for b in leaks[:TOP]:
            out.append(f"| {b.boundary.cls.value} | {esc(b.boundary.parent)} → {esc(b.boundary.child)} | "
                       f"{', '.join(code(k) for k in b.keys)} | {b.llm_calls_affected} | {summary.money(b.unattributed_cost_usd)} |")
        out.append("")
    if base.absent:
        out += [f"**Fixed finding groups** ({len(base.absent)})", "", "| code | key | where | findings in the baseline |",
                "|---|---|---|---:|"]
        for g in base.absent[:TOP_GROUPS]:
            out.append(f"| {code(g.code)} | {code(g.key) if g.key else ''} | {esc(g.where)} | {g.findings} |")
        out.append("")
    return out
