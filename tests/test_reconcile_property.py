"""Reconciling a trace set against a usage report built from the very same calls gives a zero
delta in every group (tokens and dollars), whatever the calls, days, keys and tiers.

The spans go through the real audit (usage normalisation, pricing); the usage report is
written in the provider's JSON shape from the audited calls' canonical counts and read back
through ``parse_usage``; the provider side is then priced by the reconciliation's own path.
"""

import json
from collections import defaultdict
from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor.engine import audit
from auditor.model import Span
from auditor.reconcile import parse_usage, reconcile, with_gateway_keys
from auditor.reconcile.fields import day_of
from auditor.reconcile.names import tier_name
from auditor.schema import load_schema

DAY0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
NS = 10**9
MODELS = {
    "anthropic": ["claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001"],
    "openai": ["gpt-4o-mini-2024-07-18", "gpt-4.1-mini-2025-04-14"],
}
KEYS = {"anthropic": ["apikey_01A", "apikey_01B"], "openai": ["key_A", "key_B"]}
SCHEMA = with_gateway_keys(load_schema("default"))

calls_st = st.lists(
    st.tuples(
        st.sampled_from(["anthropic", "openai"]),
        st.integers(0, 1),  # model
        st.integers(0, 1),  # key
        st.integers(0, 3 * 86_400 * 1000 - 1),  # start, ms into the three days (edges included)
        st.integers(0, 50_000),  # uncached input
        st.integers(0, 30_000),  # cache read
        st.integers(0, 20_000),  # cache write (Anthropic only)
        st.integers(0, 8_000),  # output
        st.sampled_from([None, "default", "flex", "batch"]),  # OpenAI service tier on the span
    ),
    min_size=1,
    max_size=25,
)


def spans_of(calls) -> list[Span]:
    out = []
    for i, (prov, m, k, ms, unc, cr, cw, out_t, tier) in enumerate(calls):
        if prov == "openai":
            cw = 0
        start = int((DAY0 + timedelta(milliseconds=ms)).timestamp()) * NS + (ms % 1000) * 1_000_000
        attrs = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": prov,
            "gen_ai.response.model": MODELS[prov][m],
            "gen_ai.usage.input_tokens": unc + cr + cw,  # semconv: cache tokens included
            "gen_ai.usage.cache_read.input_tokens": cr,
            "gen_ai.usage.output_tokens": out_t,
            "api_key_id": KEYS[prov][k],
        }
        if cw:
            attrs["gen_ai.usage.cache_creation.input_tokens"] = cw
        if prov == "openai" and tier is not None:
            attrs["openai.response.service_tier"] = tier
        out.append(Span(f"{i + 1:032x}", f"{i + 1:016x}", "", "chat", "app", "app", 3, start, start + NS, 0, attrs, {"service.name": "app"}))
    return out


def anthropic_report(calls) -> str:
    rows = defaultdict(lambda: [0, 0, 0, 0])
    for c in calls:
        u = c.usage
        rows[(day_of(c.start_ns), c.values["reconcile:api_key_id"], c.model, tier_name(c.tier))] = [
            a + b for a, b in zip(rows[(day_of(c.start_ns), c.values["reconcile:api_key_id"], c.model, tier_name(c.tier))],
                                  (u.input, u.cache_read, u.cache_write_total, u.output))
        ]
    by_day = defaultdict(list)
    for (day, key, model, tier), (unc, cr, cw, out) in sorted(rows.items()):
        by_day[day].append({
            "uncached_input_tokens": unc, "cache_read_input_tokens": cr, "output_tokens": out,
            "cache_creation": {"ephemeral_5m_input_tokens": cw, "ephemeral_1h_input_tokens": 0},
            "api_key_id": key, "workspace_id": None, "model": model, "service_tier": tier,
        })
    pages = [
        {"data": [{"starting_at": f"{d.isoformat()}T00:00:00Z", "ending_at": f"{(d + timedelta(days=1)).isoformat()}T00:00:00Z", "results": res}],
         "has_more": False, "next_page": None}
        for d, res in sorted(by_day.items())
    ]
    return "\n".join(json.dumps(p) for p in pages)  # pages concatenated


def openai_report(calls) -> str:
    rows = defaultdict(lambda: [0, 0, 0, 0])
    for c in calls:
        u = c.usage
        k = (day_of(c.start_ns), c.values["reconcile:api_key_id"], c.model, tier_name(c.tier))
        rows[k] = [a + b for a, b in zip(rows[k], (u.input + u.cache_read, u.cache_read, u.output, 1))]
    by_day = defaultdict(list)
    for (day, key, model, tier), (inp, cached, out, n) in sorted(rows.items()):
        by_day[day].append({
            "object": "organization.usage.completions.result", "input_tokens": inp, "input_cached_tokens": cached,
            "output_tokens": out, "num_model_requests": n, "project_id": None, "user_id": None, "api_key_id": key,
            "model": model, "batch": tier == "batch", "service_tier": None if tier in ("standard", "batch") else tier,
        })
    data = [
        {"object": "bucket", "start_time": int(datetime(d.year, d.month, d.day, tzinfo=timezone.utc).timestamp()),
         "end_time": int(datetime(d.year, d.month, d.day, tzinfo=timezone.utc).timestamp()) + 86_400, "results": res}
        for d, res in sorted(by_day.items())
    ]
    return json.dumps({"object": "page", "data": data, "has_more": False, "next_page": None})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(calls_st)
def test_same_calls_reconcile_to_zero(calls):
    result = audit(spans_of(calls), SCHEMA)
    assert len(result.calls) == len(calls)
    assert all(c.cost_usd is not None for c in result.calls)
    exports = []
    for prov, writer in (("anthropic", anthropic_report), ("openai", openai_report)):
        mine = [c for c in result.calls if c.provider == prov]
        if mine:
            exports.append(parse_usage(writer(mine), f"{prov}.json"))
    rec = reconcile(exports, result.calls)
    assert rec.groups
    for g in rec.groups:
        assert g.ungated_usd == 0, (g.label(), g.provider_usd, g.traced_usd)
        assert g.provider_tokens.total == g.traced_tokens.total, g.label()
        assert g.provider_cost_basis == "priced"
    assert rec.summary.ungated_usd == 0 and rec.summary.overtraced_usd == 0
    assert rec.summary.traced_calls == len(calls)
    assert not [f for f in rec.findings if f.code in ("RECON001", "RECON002", "RECON003")]
    assert {p: set(d) for p, d in rec.dimensions.items()} == {
        p: {"model", "api_key_id", "tier"} for p in rec.dimensions
    }
