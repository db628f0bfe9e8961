"""Server-side tool requests compared by ``auditor reconcile`` (issue 17 item 7).

The provider side is the real export formats of tests/fixtures/usage (Anthropic's usage report
``server_tool_use.web_search_requests``, the console's ``web_search_count``, the cost report's
``cost_type: web_search`` lines), with search counts set; the traced side is the committed
LiteLLM-proxy traces (sample_traces/reconcile) with ``server_tool_use`` in each Anthropic call's
``metadata.usage_object``, as LiteLLM 1.110.2 writes it (checked against the real library:
``{'web_search_requests': 3, 'tool_search_requests': None}``).

Searches (2026-01-01 = day 1):
  traced: support-bot (apikey_01GatewayProd) day 1: 2 + 1 + 0 = 3, day 2: 1; lead-scorer
          (apikey_01LeadScorer) day 1: 1 + 0, day 2: 0; support-bot-11 on 2026-01-03 (5) is
          outside the exports' window and left out.
  invoice: GatewayProd day 1: 4, LeadScorer day 1: 1, DevLaptop (no traced call) sonnet day 1: 2,
           GatewayProd day 2: 1. Total 8 vs traced 5: 3 untraced.
  cost: $0.08 of web_search lines (8 x $10 / 1000); untraced share 0.08 x 3 / 8 = $0.03.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import jsonschema
from click.testing import CliRunner

from auditor.cli import cli
from auditor.reconcile import load_usage

ROOT = Path(__file__).resolve().parent.parent
TRACES = ROOT / "sample_traces" / "reconcile" / "litellm_proxy.otlp.json"
U = ROOT / "tests" / "fixtures" / "usage"
SCHEMA = json.loads((ROOT / "schemas" / "reconcile-report.schema.json").read_text())

TRACED_SEARCHES = {"msg-support-bot-0": 2, "msg-support-bot-1": 1, "msg-support-bot-2": 0, "msg-support-bot-7": 1,
                   "msg-support-bot-8": 0, "msg-support-bot-11": 5, "msg-lead-scorer-3": 1, "msg-lead-scorer-4": 0,
                   "msg-lead-scorer-9": 0}
# (day, api key, model) -> web_search_requests on the invoice
INVOICED = {("2026-01-01", "apikey_01GatewayProd", "claude-sonnet-4-5-20250929"): 4,
            ("2026-01-01", "apikey_01LeadScorer", "claude-sonnet-4-5-20250929"): 1,
            ("2026-01-01", "apikey_01DevLaptop", "claude-sonnet-4-5-20250929"): 2,
            ("2026-01-02", "apikey_01GatewayProd", "claude-sonnet-4-5-20250929"): 1}


def traces(tmp_path: Path, searches: dict[str, int]) -> Path:
    doc = json.loads(TRACES.read_text())
    for rs in doc["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for s in ss["spans"]:
                attrs = {a["key"]: a for a in s.get("attributes", [])}
                rid = attrs.get("gen_ai.response.id", {}).get("value", {}).get("stringValue")
                if rid not in searches:
                    continue
                old = attrs.get("metadata.usage_object")
                obj = ast.literal_eval(old["value"]["stringValue"]) if old else {}
                obj["server_tool_use"] = {"web_search_requests": searches[rid], "tool_search_requests": None}
                if old:
                    old["value"]["stringValue"] = str(obj)
                else:
                    s["attributes"].append({"key": "metadata.usage_object", "value": {"stringValue": str(obj)}})
    out = tmp_path / "traces.otlp.json"
    out.write_text(json.dumps(doc))
    return out


def usage_report(tmp_path: Path) -> Path:
    lines = []
    for line in (U / "anthropic_usage_pages.json").read_text().splitlines():
        page = json.loads(line)
        for b in page["data"]:
            for r in b["results"]:
                r["server_tool_use"]["web_search_requests"] = INVOICED.get((b["starting_at"][:10], r["api_key_id"], r["model"]), 0)
        lines.append(json.dumps(page))
    out = tmp_path / "anthropic_usage.json"
    out.write_text("\n".join(lines) + "\n")
    return out


def cost_report(tmp_path: Path) -> Path:
    doc = json.loads((U / "anthropic_cost_report.json").read_text())
    doc["data"][0]["results"].append({
        "currency": "USD", "amount": "8", "workspace_id": None, "description": "Web Search",
        "cost_type": "web_search", "context_window": None, "model": None, "service_tier": None, "token_type": None,
    })
    out = tmp_path / "anthropic_cost.json"
    out.write_text(json.dumps(doc))
    return out


def reconcile(*args) -> tuple[dict, str]:
    res = CliRunner().invoke(cli, ["reconcile", *map(str, args), "--key-map", str(U / "key_map.yaml"), "-f", "json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    jsonschema.validate(doc, SCHEMA)
    text = CliRunner().invoke(cli, ["reconcile", *map(str, args), "--key-map", str(U / "key_map.yaml")]).stdout
    return doc, text


def test_web_search_requests_compared_per_group_and_in_total(tmp_path):
    doc, text = reconcile(traces(tmp_path, TRACED_SEARCHES), "-u", usage_report(tmp_path), "-u", cost_report(tmp_path))
    assert doc["tools"] == [{
        "provider": "anthropic", "tool": "web_search", "provider_requests": 8, "traced_requests": 5, "gap": 3,
        "provider_usd": "0.080000", "untraced_usd": "0.030000",
        "groups_with_gap": [
            {"group": "2026-01-01 / anthropic / claude-sonnet-4-5 / key apikey_01DevLaptop / workspace (default) / standard", "provider": 2, "traced": 0},
            {"group": "2026-01-01 / anthropic / claude-sonnet-4-5 / key apikey_01GatewayProd / workspace wrkspc_01Prod / standard", "provider": 4, "traced": 3},
        ],
    }]
    per_group = {(g["day"], g["api_key_id"], g["model"]): (g["tools"]["provider"]["web_search"], g["tools"]["traced"]["web_search"])
                 for g in doc["groups"] if g["provider"] == "anthropic"}
    assert per_group == {
        ("2026-01-01", "apikey_01DevLaptop", "claude-haiku-4-5"): (0, 0),
        ("2026-01-01", "apikey_01DevLaptop", "claude-sonnet-4-5"): (2, 0),
        ("2026-01-01", "apikey_01GatewayProd", "claude-sonnet-4-5"): (4, 3),
        ("2026-01-01", "apikey_01LeadScorer", "claude-sonnet-4-5"): (1, 1),
        ("2026-01-02", "apikey_01DevLaptop", "claude-haiku-4-5"): (0, 0),
        ("2026-01-02", "apikey_01GatewayProd", "claude-sonnet-4-5"): (1, 1),
        ("2026-01-02", "apikey_01LeadScorer", "claude-sonnet-4-5"): (0, 0),
    }
    assert all("tools" not in g for g in doc["groups"] if g["provider"] == "openai")  # OpenAI's export counts none
    # The web search lines are compared now, so no longer listed as "not compared".
    assert not [n for n in doc["notes"] if "non-token costs" in n]
    assert ("Server-side tool requests (invoice vs traces):\n"
            "  anthropic web_search: invoiced 8 request(s), traced 5: 3 untraced; $0.080000 of web_search charges on the "
            "invoice, $0.030000 of them for the untraced requests\n") in text


def test_not_compared_when_a_traced_call_does_not_state_its_tool_use(tmp_path):
    """lead-scorer's spans carry no usage object: their searches are unknown, not zero."""
    support_only = {k: v for k, v in TRACED_SEARCHES.items() if "support-bot" in k}
    doc, _ = reconcile(traces(tmp_path, support_only), "-u", usage_report(tmp_path))
    assert doc["tools"] == []
    assert all("tools" not in g for g in doc["groups"])
    assert ("anthropic: web_search requests not compared: the invoice counts 8, but 3 of 8 traced call(s) do not state "
            "their server tool use (only a usage object does: LiteLLM's metadata.usage_object or a raw_gen_ai_request "
            "payload)") in doc["notes"]


def test_console_usage_csv_web_search_count_is_read():
    ex = load_usage(U / "anthropic_console_usage.csv")
    assert {r.tools for r in ex.usage} == {(("web_search", 0),)}
    page = load_usage(U / "anthropic_usage_page1.json")
    assert {r.tools for r in page.usage} == {(("web_search", 0),)}


def test_bad_tool_count_is_a_one_line_error(tmp_path):
    page = json.loads((U / "anthropic_usage_page1.json").read_text())
    page["data"][0]["results"][0]["server_tool_use"]["web_search_requests"] = -1
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(page))
    res = CliRunner().invoke(cli, ["reconcile", str(TRACES), "-u", str(f)])
    assert res.exit_code == 2
    assert res.output.count("\n") <= 1 and "server_tool_use.web_search_requests" in res.output


def test_real_litellm_traces_web_searches_against_a_usage_report(tmp_path):
    """The traced side as LiteLLM 1.110.2 writes it (sample_traces/litellm: the research call ran
    2 searches, classify none) against one Anthropic usage-report bucket (the API's format) that
    counts 3: 1 untraced. The tokens match exactly, so the dollar gap is 0."""
    page = {"data": [{"starting_at": "2026-01-01T00:00:00Z", "ending_at": "2026-01-02T00:00:00Z", "results": [{
        "uncached_input_tokens": 400, "cache_creation": {"ephemeral_1h_input_tokens": 0, "ephemeral_5m_input_tokens": 500},
        "cache_read_input_tokens": 2000, "output_tokens": 140, "server_tool_use": {"web_search_requests": 3},
        "api_key_id": None, "workspace_id": None, "model": "claude-sonnet-4-5-20250929", "service_tier": None,
        "context_window": None}]}], "has_more": False, "next_page": None}
    f = tmp_path / "usage.json"
    f.write_text(json.dumps(page))
    res = CliRunner().invoke(cli, ["reconcile", str(ROOT / "sample_traces" / "litellm" / "raw-request.otlp.json"), "-u", str(f), "-f", "json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    jsonschema.validate(doc, SCHEMA)
    assert [(t["provider"], t["tool"], t["provider_requests"], t["traced_requests"], t["gap"]) for t in doc["tools"]] == [
        ("anthropic", "web_search", 3, 2, 1)]
    (g,) = doc["groups"]
    assert (g["ungated_usd"], g["traced_calls"], g["tools"]) == ("0.000000", 2, {"provider": {"web_search": 3}, "traced": {"web_search": 2}})
