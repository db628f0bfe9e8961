"""The terminal report: the headline first, then the untraced sources, the groups with a
gap, the findings and the notes."""

from __future__ import annotations

from auditor.reconcile.result import Group, Reconciliation, money
from auditor.report.safe_text import guard, inline

MAX_GROUPS = 40


def _key(g: Group) -> str:
    return inline(g.label())


def render(rec: Reconciliation) -> str:
    s = rec.summary
    out = ["Reconciliation: " + rec.headline()]
    out.append(
        f"  {s.traced_calls} traced call(s) in the window; {len(rec.groups)} group(s); compared by "
        + "; ".join(f"{p}: day, {', '.join(d) or 'provider only'}" for p, d in sorted(rec.dimensions.items()))
    )
    if s.overtraced_usd > 0:
        out.append(f"  traced spend above the invoice in some groups: {money(s.overtraced_usd)} (RECON003)")
    if s.max_ungated_pct is not None:
        verdict = "passed" if s.passed else "FAILED"
        out.append(f"  gate --max-ungated-pct {s.max_ungated_pct:g}: {verdict} ({s.ungated_pct:.1f}% ungated)")
    out.append("")
    for bucket, label, field in (("api_keys", "API keys", "api_key_id"), ("workspaces", "Workspaces", "workspace_id"), ("models", "Models", "model")):
        items = rec.untraced.get(bucket) or []
        if items:
            out.append(f"{label} with invoiced spend and no traced call:")
            for it in items:
                out.append(f"  {inline(it['provider'])} {inline(it[field])}: {money(it['provider_usd'])}")
            out.append("")
    gaps = [g for g in rec.groups if g.ungated_usd != 0]
    if gaps:
        out.append(f"Groups where the invoice and the traces differ ({len(gaps)} of {len(rec.groups)}), largest first:")
        for g in sorted(gaps, key=lambda g: (-abs(g.ungated_usd), _key(g)))[:MAX_GROUPS]:
            out.append(
                f"  {_key(g)}: invoiced {money(g.provider_usd)} ({g.provider_cost_basis}), traced {money(g.traced_usd)} "
                f"in {g.traced_calls} call(s), ungated {money(g.unexplained_usd)}"
                + (
                    f" ({g.traced_unpriced_calls} traced call(s) without a price could explain {money(g.unpriced_could_explain_usd)} more)"
                    if g.traced_unpriced_calls else ""
                )
            )
        if len(gaps) > MAX_GROUPS:
            out.append(f"  ... {len(gaps) - MAX_GROUPS} more (see --format json)")
        out.append("")
    else:
        out.append("Every group matches: no ungated spend.")
        out.append("")
    if rec.tools:
        out.append("Server-side tool requests (invoice vs traces):")
        for t in rec.tools:
            out.append(f"  {inline(t.describe())}")
            for label, a, b in t.groups_with_gap[:MAX_GROUPS]:
                out.append(f"    {inline(label)}: invoiced {a}, traced {b}")
        out.append("")
    if rec.findings:
        out.append(f"Findings ({len(rec.findings)}):")
        for f in rec.findings:
            out.append(f"  {f.code} [{f.severity.value}] {inline(f.message)}")
        out.append("")
    if rec.notes:
        out.append("Notes:")
        out.extend(f"  - {inline(n, 2000)}" for n in rec.notes)
        out.append("")
    return guard("\n".join(out))
