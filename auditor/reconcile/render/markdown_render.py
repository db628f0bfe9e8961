"""Markdown for a CI summary or a pull-request comment (GitHub-flavoured tables)."""

from __future__ import annotations

from auditor.reconcile.result import Reconciliation, money
from auditor.report.safe_text import guard, inline


def _cell(v) -> str:
    return "—" if v is None else inline(" ".join(str(v).split()), 2000).replace("|", "\\|")


def render(rec: Reconciliation) -> str:
    s = rec.summary
    out = ["## Reconciliation: traced spend vs the provider's invoice", "", f"**{_cell(rec.headline())}**", ""]
    out += [
        "| invoiced | traced | ungated | ungated % | traced above invoice |",
        "|---:|---:|---:|---:|---:|",
        f"| {money(s.provider_usd)} | {money(s.traced_usd)} | {money(s.ungated_usd)} | {s.ungated_pct:.1f}% | {money(s.overtraced_usd)} |",
        "",
    ]
    if s.max_ungated_pct is not None:
        out += [f"Gate `--max-ungated-pct {s.max_ungated_pct:g}`: **{'passed' if s.passed else 'failed'}**", ""]
    untraced = [(b, it) for b, items in rec.untraced.items() for it in items]
    if untraced:
        out += ["### Sources with invoiced spend and no traced call", "", "| kind | provider | id | invoiced |", "|---|---|---|---:|"]
        for bucket, it in untraced:
            ident = it.get("api_key_id") or it.get("workspace_id") or it.get("model")
            out.append(f"| {bucket[:-1].replace('_', ' ')} | {_cell(it['provider'])} | `{_cell(ident)}` | {money(it['provider_usd'])} |")
        out.append("")
    out += [
        "### Groups",
        "",
        "| day | provider | model | api key | workspace | tier | invoiced | traced | ungated | calls |",
        "|---|---|---|---|---|---|---:|---:|---:|---:|",
    ]
    for g in rec.groups:
        out.append(
            f"| {g.day.isoformat()} | {g.provider} | {_cell(g.model)} | {_cell(g.api_key_id)} | {_cell(g.workspace_id)} | "
            f"{_cell(g.tier)} | {money(g.provider_usd)} | {money(g.traced_usd)} | {money(g.ungated_usd)} | {g.traced_calls} |"
        )
    out.append("")
    if rec.tools:
        out += ["### Server-side tool requests", ""]
        for t in rec.tools:
            out.append(f"- {_cell(t.describe())}")
            out += [f"  - {_cell(label)}: invoiced {a}, traced {b}" for label, a, b in t.groups_with_gap]
        out.append("")
    if rec.findings:
        out += ["### Findings", ""]
        out += [f"- **{f.code}** ({f.severity.value}): {_cell(f.message)}" for f in rec.findings]
        out.append("")
    if rec.notes:
        out += ["### Notes", ""] + [f"- {_cell(n)}" for n in rec.notes] + [""]
    return guard("\n".join(out))
