"""The JSON form of a reconciliation, documented by ``schemas/reconcile-report.schema.json``.
Money is a string with 6 decimal places (no float rounding); days are ISO dates (UTC)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from auditor import __version__
from auditor.reconcile.result import Group, ReconFinding, Reconciliation, ToolGap, usd

FORMAT_VERSION = 1


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns // 10**9, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def to_json(rec: Reconciliation) -> dict:
    s = rec.summary
    return {
        "format": "auditor-reconcile",
        "format_version": FORMAT_VERSION,
        "tool_version": __version__,
        "headline": rec.headline(),
        "inputs": {
            "traces": list(rec.inputs),
            "usage": [
                {"path": x.path, "kind": x.kind, "provider": x.provider, "usage_rows": x.usage_rows,
                 "cost_rows": x.cost_rows, "duplicate_pages": x.duplicate_pages}
                for x in rec.sources
            ],
        },
        "windows": {p: [{"start": _iso(a), "end": _iso(b)} for a, b in ivs] for p, ivs in sorted(rec.windows.items())},
        "dimensions": {p: list(d) for p, d in sorted(rec.dimensions.items())},
        "summary": _summary_json(rec),
        "top_sources": {
            "api_keys": [{"provider": p, "api_key_id": k, "ungated_usd": usd(v)} for p, k, v in s.top_keys],
            "models": [{"provider": p, "model": m, "ungated_usd": usd(v)} for p, m, v in s.top_models],
        },
        "untraced": {
            bucket: [{**{k: v for k, v in item.items() if k != "provider_usd"}, "provider_usd": usd(item["provider_usd"])} for item in items]
            for bucket, items in rec.untraced.items()
        },
        "gate": {"max_ungated_pct": s.max_ungated_pct, "passed": s.passed},
        "groups": [_group_json(g) for g in rec.groups],
        "tools": [_tool_json(t) for t in rec.tools],
        "findings": [_finding_json(f) for f in rec.findings],
        "notes": list(rec.notes),
    }


def _summary_json(rec: Reconciliation) -> dict:
    s = rec.summary
    return {
        "provider_usd": usd(s.provider_usd),
        "traced_usd": usd(s.traced_usd),
        "ungated_usd": usd(s.ungated_usd),
        "ungated_pct": round(s.ungated_pct, 4),
        "overtraced_usd": usd(s.overtraced_usd),
        "traced_calls": s.traced_calls,
        "unpriced_traced_calls": s.unpriced_traced_calls,
        "unpriced_traced_tokens": s.unpriced_traced_tokens,
        "unpriced_could_explain_usd": usd(s.unpriced_could_explain_usd),
        "traced_calls_outside_window": rec.traced_calls_outside,
        "traced_calls_not_invoiced_here": rec.traced_calls_other,
    }


def _group_json(g: Group) -> dict:
    return {
        "day": g.day.isoformat(),
        "provider": g.provider,
        "model": g.model,
        "api_key_id": g.api_key_id,
        "workspace_id": g.workspace_id,
        "tier": g.tier,
        "provider_usd": usd(g.provider_usd),
        "traced_usd": usd(g.traced_usd),
        "ungated_usd": usd(g.ungated_usd),
        "provider_cost_basis": g.provider_cost_basis,
        "traced_calls": g.traced_calls,
        "traced_unpriced_calls": g.traced_unpriced_calls,
        "traced_unpriced_tokens": g.traced_unpriced_tokens.total if g.traced_unpriced_tokens is not None else 0,
        "unpriced_could_explain_usd": usd(g.unpriced_could_explain_usd),
        "provider_requests": g.provider_requests,
        "tokens": {
            "provider": None if g.provider_tokens is None else g.provider_tokens.to_json(),
            "traced": None if g.traced_tokens is None else g.traced_tokens.to_json(),
        },
        **({"tools": {"provider": dict(g.provider_tools), "traced": dict(g.traced_tools or {})}}
           if g.provider_tools is not None else {}),
    }


def _tool_json(t: ToolGap) -> dict:
    return {
        "provider": t.provider, "tool": t.tool, "provider_requests": t.provider_requests,
        "traced_requests": t.traced_requests, "gap": t.gap,
        "provider_usd": usd(t.provider_usd), "untraced_usd": usd(t.untraced_usd),
        "groups_with_gap": [{"group": label, "provider": a, "traced": b} for label, a, b in t.groups_with_gap],
    }


def _finding_json(f: ReconFinding) -> dict:
    return {
        "code": f.code,
        "severity": f.severity.value,
        "provider": f.provider,
        "subject": None if f.subject is None else {"dimension": f.subject[0], "value": f.subject[1]},
        "usd": usd(f.usd),
        "message": f.message,
        "details": dict(f.details),
    }


def render(rec: Reconciliation) -> str:
    return json.dumps(to_json(rec), indent=2, sort_keys=False) + "\n"
