"""auditor reconcile end to end: the committed LiteLLM-proxy traces (sample_traces/reconcile)
against provider exports for the same two UTC days (tests/fixtures/usage), both written by
sample_traces/generate_reconcile.py. The ungated part is known: a developer's direct key
(apikey_01DevLaptop, the only user of claude-haiku-4-5) and an OpenAI batch job
(key_BatchJobs); lead-scorer's proxy drops the cache split (RECON002, RECON003)."""

import json
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from auditor.cli import cli
from auditor.reconcile.render import ReconFormat

ROOT = Path(__file__).resolve().parent.parent
TRACES = str(ROOT / "sample_traces" / "reconcile" / "litellm_proxy.otlp.json")
U = ROOT / "tests" / "fixtures" / "usage"
KEYMAP = ["--key-map", str(U / "key_map.yaml")]
SCHEMA = json.loads((ROOT / "schemas" / "reconcile-report.schema.json").read_text())

SONNET_GW_DAY1 = "0.036150"  # 2500 in x $3 + 4000 cw x $3.75 + 8000 cr x $0.30 + 750 out x $15, per MTok

# (day, provider, model, api key, workspace, tier) -> (provider_usd, traced_usd, ungated_usd)
EXPECTED = {
    ("2026-01-01", "anthropic", "claude-haiku-4-5", "apikey_01DevLaptop", "(default)", "standard"): ("0.040000", "0.000000", "0.040000"),
    ("2026-01-01", "anthropic", "claude-sonnet-4-5", "apikey_01DevLaptop", "(default)", "standard"): ("0.094500", "0.000000", "0.094500"),
    ("2026-01-01", "anthropic", "claude-sonnet-4-5", "apikey_01GatewayProd", "wrkspc_01Prod", "standard"): (SONNET_GW_DAY1, SONNET_GW_DAY1, "0.000000"),
    ("2026-01-01", "anthropic", "claude-sonnet-4-5", "apikey_01LeadScorer", "wrkspc_01Prod", "standard"): ("0.021450", "0.027300", "-0.005850"),
    ("2026-01-01", "openai", "gpt-4.1-mini", "key_BatchJobs", "proj_Analytics", "batch"): ("0.036000", "0.000000", "0.036000"),
    ("2026-01-01", "openai", "gpt-4o-mini", "key_SupportGw", "proj_SupportBot", "standard"): ("0.000598", "0.000598", "0.000000"),
    ("2026-01-02", "anthropic", "claude-haiku-4-5", "apikey_01DevLaptop", "(default)", "standard"): ("0.015000", "0.000000", "0.015000"),
    ("2026-01-02", "anthropic", "claude-sonnet-4-5", "apikey_01GatewayProd", "wrkspc_01Prod", "standard"): ("0.019200", "0.019200", "0.000000"),
    ("2026-01-02", "anthropic", "claude-sonnet-4-5", "apikey_01LeadScorer", "wrkspc_01Prod", "standard"): ("0.003750", "0.011850", "-0.008100"),
    ("2026-01-02", "openai", "gpt-4o-mini", "key_SupportGw", "proj_SupportBot", "standard"): ("0.000228", "0.000228", "0.000000"),
}
HEADLINE = (
    "traced $0.095326 of invoiced $0.266876: $0.185500 (69.5%) ungated; "
    "top sources: key apikey_01DevLaptop ($0.149500), model claude-sonnet-4-5 ($0.094500)"
)


def run(*args):
    return CliRunner().invoke(cli, ["reconcile", TRACES, *args])


def as_json(*usage, extra=()):
    return json.loads(_as_json(tuple(usage), tuple(extra)))


@lru_cache(maxsize=None)
def _as_json(usage, extra):
    """Each distinct run once per session (the tests read different parts of one report)."""
    args = [a for f in usage for a in ("-u", str(U / f))]
    res = run(*args, *extra, "-f", "json")
    assert res.exit_code == 0, res.output
    jsonschema.validate(json.loads(res.stdout), SCHEMA)
    return res.stdout


def by_group(doc):
    return {
        (g["day"], g["provider"], g["model"], g["api_key_id"], g["workspace_id"], g["tier"]): (g["provider_usd"], g["traced_usd"], g["ungated_usd"])
        for g in doc["groups"]
    }


def test_exact_delta_per_group_usage_reports():
    doc = as_json("anthropic_usage_pages.json", "openai_usage_completions.json", extra=KEYMAP)
    assert by_group(doc) == EXPECTED
    assert doc["headline"] == HEADLINE
    assert doc["summary"] == {
        "provider_usd": "0.266876", "traced_usd": "0.095326", "ungated_usd": "0.185500", "ungated_pct": 69.5079,
        "overtraced_usd": "0.013950", "traced_calls": 11, "unpriced_traced_calls": 0,
        "unpriced_traced_tokens": 0, "unpriced_could_explain_usd": "0.000000",
        "traced_calls_outside_window": 1, "traced_calls_not_invoiced_here": 0,
    }
    assert doc["dimensions"] == {p: ["model", "api_key_id", "workspace_id", "tier"] for p in ("anthropic", "openai")}


def test_untraced_keys_workspaces_and_models_are_named():
    doc = as_json("anthropic_usage_pages.json", "openai_usage_completions.json", extra=KEYMAP)
    assert doc["untraced"] == {
        "api_keys": [
            {"provider": "anthropic", "api_key_id": "apikey_01DevLaptop", "provider_usd": "0.149500"},
            {"provider": "openai", "api_key_id": "key_BatchJobs", "provider_usd": "0.036000"},
        ],
        "workspaces": [
            {"provider": "anthropic", "workspace_id": "(default)", "provider_usd": "0.149500"},
            {"provider": "openai", "workspace_id": "proj_Analytics", "provider_usd": "0.036000"},
        ],
        "models": [
            {"provider": "anthropic", "model": "claude-haiku-4-5", "provider_usd": "0.055000"},
            {"provider": "openai", "model": "gpt-4.1-mini", "provider_usd": "0.036000"},
        ],
    }
    codes = sorted((f["code"], f["subject"]["dimension"], f["subject"]["value"]) for f in doc["findings"] if f["code"] == "RECON001")
    assert codes == [
        ("RECON001", "api_key_id", "apikey_01DevLaptop"), ("RECON001", "api_key_id", "key_BatchJobs"),
        ("RECON001", "model", "claude-haiku-4-5"), ("RECON001", "model", "gpt-4.1-mini"),
        ("RECON001", "workspace_id", "(default)"), ("RECON001", "workspace_id", "proj_Analytics"),
    ]


def test_drift_finding_names_the_key_and_the_token_types():
    doc = as_json("anthropic_usage_pages.json", "openai_usage_completions.json", extra=KEYMAP)
    drift = [f for f in doc["findings"] if f["code"] == "RECON002"]
    assert len(drift) == 1
    d = drift[0]["details"]
    assert (d["model"], d["api_key_id"], d["workspace_id"], d["tier"]) == ("claude-sonnet-4-5", "apikey_01LeadScorer", "wrkspc_01Prod", "standard")
    assert d["types"] == {
        "uncached_input": {"provider": 2500, "traced": 11500},
        "cache_read": {"provider": 6000, "traced": 0},
        "cache_write_any": {"provider": 3000, "traced": 0},
    }
    assert d["coverage"] == 1.0
    over = sorted(f["subject"]["value"] for f in doc["findings"] if f["code"] == "RECON003")
    assert over == [
        "2026-01-01 / anthropic / claude-sonnet-4-5 / key apikey_01LeadScorer / workspace wrkspc_01Prod / standard",
        "2026-01-02 / anthropic / claude-sonnet-4-5 / key apikey_01LeadScorer / workspace wrkspc_01Prod / standard",
    ]


def test_bucket_edges_and_window():
    """23:59:59.5 belongs to day 1, 00:00:00.000 to day 2, and 2026-01-03T00:00Z is outside."""
    doc = as_json("anthropic_usage_pages.json", "openai_usage_completions.json", extra=KEYMAP)
    calls = {(g["day"], g["api_key_id"]): g["traced_calls"] for g in doc["groups"] if g["provider"] == "anthropic"}
    assert calls[("2026-01-01", "apikey_01GatewayProd")] == 3
    assert calls[("2026-01-02", "apikey_01GatewayProd")] == 2
    assert doc["summary"]["traced_calls_outside_window"] == 1
    assert doc["windows"]["anthropic"] == [{"start": "2026-01-01T00:00:00Z", "end": "2026-01-03T00:00:00Z"}]


@pytest.mark.parametrize("usage", [
    ("anthropic_usage_page1.json", "anthropic_usage_page2.json"),  # one file per page
    ("anthropic_usage_pages.json",),  # pages concatenated
    ("anthropic_usage_pages.json", "anthropic_usage_page1.json"),  # a page given twice counts once
])
def test_pages_one_file_each_or_concatenated(usage):
    doc = as_json(*usage, "openai_usage_completions.json", extra=KEYMAP)
    assert by_group(doc) == EXPECTED


def test_cost_reports_give_the_same_figures_at_list_price():
    doc = as_json("anthropic_usage_pages.json", "anthropic_cost_report.json", "openai_usage_completions.json", "openai_costs.json", extra=KEYMAP)
    assert by_group(doc) == EXPECTED
    bases = {g["provider_cost_basis"] for g in doc["groups"]}
    assert bases == {"cost report"}


def test_cost_report_is_allocated_to_keys_by_token_type(tmp_path):
    """A 10% discount on the invoice: the workspace-level cost lines are shared among the keys
    in proportion to their tokens of each type, so every group is 90% of list."""
    report = json.loads((U / "anthropic_cost_report.json").read_text())
    for bucket in report["data"]:
        for r in bucket["results"]:
            r["amount"] = str(Decimal(r["amount"]) * Decimal("0.9"))
    f = tmp_path / "cost.json"
    f.write_text(json.dumps(report))
    res = run("-u", str(U / "anthropic_usage_pages.json"), "-u", str(f), *KEYMAP, "-f", "json")
    assert res.exit_code == 0, res.output
    groups = by_group(json.loads(res.stdout))
    for k, (prov, _, _) in EXPECTED.items():
        if k[1] == "anthropic":
            assert Decimal(groups[k][0]) == (Decimal(prov) * Decimal("0.9")).quantize(Decimal("0.000001")), k


def test_console_cost_csv_alone():
    """Costs only (no token counts): keys by id, models by display name, no workspaces."""
    doc = as_json("anthropic_console_cost.csv", extra=KEYMAP)
    got = {(k[0], k[2], k[3]): v for k, v in by_group(doc).items()}
    assert got == {
        ("2026-01-01", "claude-haiku-4-5", "apikey_01DevLaptop"): ("0.040000", "0.000000", "0.040000"),
        ("2026-01-01", "claude-sonnet-4-5", "apikey_01DevLaptop"): ("0.094500", "0.000000", "0.094500"),
        ("2026-01-01", "claude-sonnet-4-5", "apikey_01GatewayProd"): (SONNET_GW_DAY1, SONNET_GW_DAY1, "0.000000"),
        ("2026-01-01", "claude-sonnet-4-5", "apikey_01LeadScorer"): ("0.021450", "0.027300", "-0.005850"),
        ("2026-01-02", "claude-haiku-4-5", "apikey_01DevLaptop"): ("0.015000", "0.000000", "0.015000"),
        ("2026-01-02", "claude-sonnet-4-5", "apikey_01GatewayProd"): ("0.019200", "0.019200", "0.000000"),
        ("2026-01-02", "claude-sonnet-4-5", "apikey_01LeadScorer"): ("0.003750", "0.011850", "-0.008100"),
    }
    assert all(g["tokens"]["provider"] is None for g in doc["groups"])
    assert doc["summary"]["traced_calls_not_invoiced_here"] == 3  # the OpenAI calls: no OpenAI export given
    assert not [f for f in doc["findings"] if f["code"] == "RECON002"]  # no provider tokens: no drift check


def test_console_usage_csv_with_keys_by_name():
    doc = as_json("anthropic_console_usage.csv", extra=("--key-map", str(U / "key_map_names.yaml")))
    names = {"apikey_01GatewayProd": "litellm-prod", "apikey_01LeadScorer": "lead-scorer", "apikey_01DevLaptop": "alice-laptop"}
    wss = {"wrkspc_01Prod": "Production", "(default)": "(default)"}
    expected = {
        (k[0], k[1], k[2], names[k[3]], wss[k[4]], k[5]): v for k, v in EXPECTED.items() if k[1] == "anthropic"
    }
    assert by_group(doc) == expected
    assert [f["subject"]["value"] for f in doc["findings"] if f["code"] == "RECON002"] == ["claude-sonnet-4-5"]


def test_without_key_map_keys_are_not_compared_and_it_says_why():
    doc = as_json("anthropic_usage_pages.json", "openai_usage_completions.json")
    assert doc["dimensions"] == {"anthropic": ["model", "tier"], "openai": ["model", "tier"]}
    assert doc["summary"]["provider_usd"] == "0.266876"
    assert doc["summary"]["ungated_usd"] == "0.179650"  # lead-scorer's overcount now offsets part of day 2
    note = next(n for n in doc["notes"] if n.startswith("anthropic: api_key_id not compared"))
    assert "8 of 8 traced call(s)" in note and "support-bot" in note and "--key-map" in note
    assert doc["untraced"]["api_keys"] == []


def test_gate_max_ungated_pct():
    base = ["-u", str(U / "anthropic_usage_pages.json"), "-u", str(U / "openai_usage_completions.json"), *KEYMAP]
    assert run(*base, "--max-ungated-pct", "70").exit_code == 0
    res = run(*base, "--max-ungated-pct", "50")
    assert res.exit_code == 1
    assert "gate --max-ungated-pct 50: FAILED (69.5% ungated)" in res.stdout


def test_text_report_leads_with_the_headline():
    res = run("-u", str(U / "anthropic_usage_pages.json"), "-u", str(U / "openai_usage_completions.json"), *KEYMAP)
    assert res.exit_code == 0
    lines = res.stdout.splitlines()
    assert lines[0] == "Reconciliation: " + HEADLINE
    assert "  anthropic apikey_01DevLaptop: $0.149500" in lines


@pytest.mark.parametrize("fmt", list(ReconFormat))
def test_every_format_renders_the_headline(fmt, tmp_path):
    out = tmp_path / f"r.{fmt.value}"
    res = run("-u", str(U / "anthropic_usage_pages.json"), *KEYMAP, "-f", f"{fmt.value}:{out}")
    assert res.exit_code == 0, res.output
    text = out.read_text()
    headline = "traced $0.094500 of invoiced $0.230050: $0.149500 (65.0%) ungated"
    assert headline in text
    if fmt is ReconFormat.HTML:
        assert text.startswith("<!doctype html>") and "<section class=\"reconcile\"" in text
    if fmt is ReconFormat.MARKDOWN:
        assert "| 2026-01-01 | anthropic | claude-haiku-4-5 | apikey_01DevLaptop | (default) | standard | $0.040000 | $0.000000 | $0.040000 | 0 |" in text


def test_html_escapes_provider_strings(tmp_path):
    page = json.loads((U / "anthropic_usage_page1.json").read_text())
    page["data"][0]["results"][0]["api_key_id"] = "<script>alert(1)</script>"
    f = tmp_path / "u.json"
    f.write_text(json.dumps(page))
    out = tmp_path / "r.html"
    res = run("-u", str(f), *KEYMAP, "-f", f"html:{out}")
    assert res.exit_code == 0, res.output
    html = out.read_text()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def _audited_calls():
    from auditor.pipeline import audit_files
    from auditor.plan import Plan
    from auditor.reconcile import with_gateway_keys

    return audit_files([TRACES], Plan.detect(adapt=with_gateway_keys)).calls


def test_unpriced_traced_calls_are_kept_apart_and_say_how_much_of_the_gap_they_could_explain():
    # The Anthropic gateway calls of 2026-01-01 as if no price were known (COST001): they used
    # to count as $0, making their whole invoiced spend look ungated.
    from dataclasses import replace

    from auditor.reconcile import KeyMap, load_usage, reconcile

    calls = tuple(
        replace(c, cost_usd=None) if (c.model or "").startswith("claude-sonnet") and c.start_ns < 1767312000 * 10**9 else c
        for c in _audited_calls()
    )
    exports = [load_usage(U / "anthropic_usage_pages.json"), load_usage(U / "openai_usage_completions.json")]
    base = reconcile(exports, _audited_calls(), KeyMap.load(str(U / "key_map.yaml")))
    rec = reconcile(exports, calls, KeyMap.load(str(U / "key_map.yaml")))
    gw = [g for g in rec.groups if g.label() == "2026-01-01 / anthropic / claude-sonnet-4-5 / key apikey_01GatewayProd / workspace wrkspc_01Prod / standard"]
    (g,) = gw
    assert (g.traced_usd, g.traced_unpriced_calls) == (Decimal("0"), g.traced_calls)
    # every invoiced token of the group is on an unpriced traced call: it could explain the whole gap
    assert g.unpriced_could_explain_usd == g.ungated_usd == Decimal(SONNET_GW_DAY1)
    assert g.unexplained_usd == 0
    # lead-scorer's calls were above the invoice when priced; unpriced, their tokens (more than
    # invoiced) explain the whole invoice of the group, capped at the gap
    (ls,) = [x for x in rec.groups if x.label().startswith("2026-01-01 / anthropic / claude-sonnet-4-5 / key apikey_01LeadScorer")]
    assert (ls.ungated_usd, ls.unpriced_could_explain_usd, ls.unexplained_usd) == (Decimal("0.021450"), Decimal("0.021450"), 0)
    s = rec.summary
    assert s.ungated_usd == base.summary.ungated_usd  # not inflated by the unpriced calls
    assert s.unpriced_traced_calls == sum(x.traced_unpriced_calls for x in rec.groups) > 0
    assert s.unpriced_could_explain_usd == Decimal(SONNET_GW_DAY1) + Decimal("0.021450")
    assert s.unpriced_traced_tokens == sum(x.traced_unpriced_tokens.total for x in rec.groups if x.traced_unpriced_tokens)
    assert "could explain up to $0.057600 more of the gap" in rec.headline()
    assert any("kept apart, not counted as $0" in n for n in rec.notes)


def test_reconcile_reads_traces_from_stdin():
    data = Path(TRACES).read_bytes()
    args = ["-u", str(U / "anthropic_usage_pages.json"), "-u", str(U / "openai_usage_completions.json"), *KEYMAP, "-f", "json"]
    from_stdin = CliRunner().invoke(cli, ["reconcile", "-", *args], input=data)
    from_file = CliRunner().invoke(cli, ["reconcile", TRACES, *args])
    assert from_stdin.exit_code == from_file.exit_code == 0, from_stdin.output
    a, b = json.loads(from_stdin.stdout), json.loads(from_file.stdout)
    assert a["summary"] == b["summary"] and a["groups"] == b["groups"]
    both = CliRunner().invoke(cli, ["reconcile", "-", "-u", "-"], input=data)
    assert both.exit_code == 2 and "stdin ('-') can be read once" in both.stderr
