"""sample_traces/cost (real OTel SDK spans) priced end to end through the CLI, to the cent.

Rates (USD per million tokens, as published): Claude Sonnet 4.5 input $3, output $15,
cache read $0.30, cache write (5m) $3.75; gpt-4o input $2.50, cached $1.25, output $10;
gpt-4o-mini input $0.15, output $0.60, Batch API half.
"""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.cli import cli

SAMPLES = Path(__file__).resolve().parents[1] / "sample_traces" / "cost"
JSON_SAMPLE = str(SAMPLES / "cost.otlp.json")
PB_SAMPLE = str(SAMPLES / "cost.pb.gz")
D = Decimal

# Hand-computed price of each LLM call, by span name.
EXPECTED = {
    # OpenLLMetry-style: input_tokens 55,200 includes 48,000 read + 6,000 written; 1,200 fresh.
    "anthropic.chat": D("1200") * 3 / 10**6 + D("48000") * D("0.30") / 10**6 + D("6000") * D("3.75") / 10**6 + D("850") * 15 / 10**6,
    # legacy names: 1,000 prompt + 200 completion on gpt-4o-mini
    "openai.chat": D("1000") * D("0.15") / 10**6 + D("200") * D("0.60") / 10**6,
    # 12,000 input of which 8,192 cached, 400 output on gpt-4o (the LangChain record folds into it)
    "chat gpt-4o": D("3808") * D("2.50") / 10**6 + D("8192") * D("1.25") / 10**6 + D("400") * 10 / 10**6,
    # batch tier: half of 20,000 x $0.15 + 2,000 x $0.60
    "chat gpt-4o-mini": (D("20000") * D("0.15") / 10**6 + D("2000") * D("0.60") / 10**6) / 2,
    # excluding convention: 800 uncached + 30,000 read + 2,000 written, 500 output
    "chat claude-sonnet-4-5": D("800") * 3 / 10**6 + D("30000") * D("0.30") / 10**6 + D("2000") * D("3.75") / 10**6 + D("500") * 15 / 10**6,
    "chat acme-support-70b-ft": None,
}


def test_the_hand_computed_figures():
    assert EXPECTED["anthropic.chat"] == D("0.05325")
    assert EXPECTED["chat gpt-4o"] == D("0.02376")
    assert EXPECTED["chat gpt-4o-mini"] == D("0.0021")
    assert EXPECTED["chat claude-sonnet-4-5"] == D("0.0264")
    assert sum(v for v in EXPECTED.values() if v is not None) == D("0.10578")


def check_json(*args) -> dict:
    r = CliRunner().invoke(cli, ["check", "--fail-on", "never", "-f", "json", *args])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def default_result() -> dict:
    return check_json("-s", "default", JSON_SAMPLE)


def test_every_call_priced_exactly(default_result):
    calls = {c["name"]: c for c in default_result["calls"] if c["duplicate_of"] is None}
    assert set(calls) == set(EXPECTED)
    for name, want in EXPECTED.items():
        got = calls[name]["cost_usd"]
        assert (None if got is None else D(got)) == want, name
    s = default_result["summary"]["cost"]
    assert (s["total_usd"], s["unpriced_calls"], s["priced_calls"]) == ("0.105780", 1, 5)
    assert s["unattributed_usd"] == {"tenant_id": "0.026400", "workflow_id": "0.026400"}


def test_conventions_are_recorded_per_call(default_result):
    calls = {c["name"]: c["usage"] for c in default_result["calls"]}
    assert (calls["anthropic.chat"]["input"], calls["anthropic.chat"]["convention"], calls["anthropic.chat"]["ambiguous"]) == (1200, "including", True)
    assert (calls["chat claude-sonnet-4-5"]["input"], calls["chat claude-sonnet-4-5"]["convention"]) == (800, "excluding")
    assert calls["chat claude-sonnet-4-5"]["basis"] == "evidence: cache tokens exceed input tokens"
    assert (calls["chat gpt-4o"]["input"], calls["chat gpt-4o"]["cache_read"]) == (3808, 8192)


def test_duplicate_record_priced_once_from_the_detailed_record(default_result):
    by_name = {c["name"]: c for c in default_result["calls"]}
    lc, oa = by_name["ChatOpenAI.chat"], by_name["chat gpt-4o"]
    assert lc["duplicate_of"] == {"trace_id": oa["trace_id"], "span_id": oa["span_id"]}
    assert D(lc["cost_usd"]) == D("0.034")  # what the total-only record would have cost: 12,000 x $2.50 + 400 x $10
    t5 = [f for f in default_result["findings"] if f["code"] == "TRACE005"]
    assert len(t5) == 1 and t5[0]["span_id"] == lc["span_id"]
    assert "priced once, from that record (its usage is the most detailed: semconv including, input 3808, output 400, cache read 8192)" in t5[0]["message"]


def test_cost_findings(default_result):
    f = {(x["code"], x["span_id"]): x for x in default_result["findings"] if x["code"].startswith("COST")}
    by_name = {c["name"]: c["span_id"] for c in default_result["calls"]}
    assert set(f) == {("COST001", by_name["chat acme-support-70b-ft"]), ("COST002", by_name["anthropic.chat"])}
    msg = f[("COST002", by_name["anthropic.chat"])]["message"]
    # the other reading: 55,200 uncached input tokens at $3 instead of 1,200
    assert "Priced as including ($0.053250)" in msg and "(excluding) it is $0.215250" in msg
    assert "dialects.convention {'opentelemetry.instrumentation.anthropic': including|excluding}" in msg
    codes = default_result["summary"]["cost"]["by_finding_code"]
    assert codes["COST002"] == {"llm_calls": 1, "usd": "0.053250", "unpriced_calls": 0}
    assert codes["COST001"] == {"llm_calls": 1, "usd": "0.000000", "unpriced_calls": 1}
    assert codes["ATTR002"] == {"llm_calls": 2, "usd": "0.026400", "unpriced_calls": 1}


def test_genai_findings_on_the_sample(default_result):
    got = sorted((x["code"], x["message"].split(" ")[0] if x["code"] == "GENAI002" else x["message"].split(" ")[2])
                 for x in default_result["findings"] if x["code"].startswith("GENAI"))
    assert got == [
        ("GENAI001", "gen_ai.operation.name"),  # ChatOpenAI.chat
        ("GENAI001", "gen_ai.operation.name"),  # openai.chat
        ("GENAI001", "gen_ai.provider.name"),  # ChatOpenAI.chat: no provider at all
        ("GENAI002", "gen_ai.system"),
        ("GENAI002", "gen_ai.usage.completion_tokens"),
        ("GENAI002", "gen_ai.usage.completion_tokens"),
        ("GENAI002", "gen_ai.usage.prompt_tokens"),
        ("GENAI002", "gen_ai.usage.prompt_tokens"),
    ]


def test_a_dialect_declaration_settles_the_ambiguity(tmp_path):
    schema = tmp_path / "s.yaml"
    schema.write_text("extends: [default]\ndialects:\n  convention:\n    opentelemetry.instrumentation.anthropic: including\n")
    doc = check_json("-s", str(schema), JSON_SAMPLE)
    assert "COST002" not in doc["summary"]["findings"]
    assert doc["summary"]["cost"]["total_usd"] == "0.105780"
    schema.write_text("extends: [default]\ndialects:\n  convention:\n    opentelemetry.instrumentation.anthropic: excluding\n")
    doc = check_json("-s", str(schema), JSON_SAMPLE)
    assert doc["summary"]["cost"]["total_usd"] == str((D("0.10578") - D("0.05325") + D("0.21525")).quantize(D("0.000001")))


def test_protobuf_and_json_encodings_price_the_same(default_result):
    pb = check_json("-s", "default", PB_SAMPLE)
    assert pb["summary"] == {**default_result["summary"]} | {"gate": pb["summary"]["gate"]}


def cost_cli(*args) -> str:
    r = CliRunner().invoke(cli, ["cost", "-s", "default", *args])
    assert r.exit_code == 0, r.output
    return r.stdout


def test_chargeback_by_tenant_reconciles_with_check(default_result):
    rows = list(csv.DictReader(io.StringIO(cost_cli(JSON_SAMPLE, "--by", "tenant_id", "-f", "csv"))))
    got = [(r["tenant_id"], r["llm_calls"], r["unpriced_calls"], r["cost_usd"]) for r in rows]
    assert got == [
        ("acme", "2", "0", "0.053520"),
        ("globex", "2", "0", "0.025860"),
        ("(unattributed)", "2", "1", "0.026400"),
        ("total", "6", "1", "0.105780"),
    ]
    assert rows[-1]["cost_usd"] == default_result["summary"]["cost"]["total_usd"]
    assert [r["cache_read_tokens"] for r in rows] == ["48000", "8192", "30000", "86192"]


def test_chargeback_by_any_attribute_and_combinations():
    doc = json.loads(cost_cli(JSON_SAMPLE, "--by", "gen_ai.provider.name", "-f", "json"))
    got = {r["values"]["gen_ai.provider.name"]: (r["llm_calls"], r["cost_usd"]) for r in doc["rows"]}
    # the legacy span names its provider in gen_ai.system only: unattributed for this attribute
    assert got == {"anthropic": (2, "0.079650"), "openai": (2, "0.025860"), "vllm": (1, "0.000000"), "(unattributed)": (1, "0.000270")}
    assert doc["total"]["cost_usd"] == doc["check_total_usd"] == "0.105780"
    text = cost_cli(JSON_SAMPLE, "--by", "tenant_id", "--by", "workflow_id")
    assert "acme            deep-research" in text and "globex          summarise" in text
    assert "1 call(s) unpriced (COST001)" in text


def test_cost_usage_errors():
    r = CliRunner().invoke(cli, ["cost", JSON_SAMPLE])
    assert r.exit_code == 2
    r = CliRunner().invoke(cli, ["cost", "/nonexistent.json", "--by", "tenant_id"])
    assert r.exit_code == 2 and r.stderr.startswith("auditor: error: /nonexistent.json")


def test_gate_on_unattributed_share_of_cost():
    # tenant_id: $0.0264 of $0.10578 = 24.96% unattributed
    fail = CliRunner().invoke(cli, ["check", "-s", "default", "--fail-on", "never", "--max-unattributed-pct", "tenant_id=24.9", JSON_SAMPLE])
    assert fail.exit_code == 1 and "tenant_id: 24.96% of LLM spend unattributed (limit 24.9%)" in fail.stdout
    ok = CliRunner().invoke(cli, ["check", "-s", "default", "--fail-on", "never", "--max-unattributed-pct", "tenant_id=25", JSON_SAMPLE])
    assert ok.exit_code == 0


def test_text_report_headline_is_money():
    r = CliRunner().invoke(cli, ["check", "-s", "default", "--fail-on", "never", JSON_SAMPLE])
    assert "LLM spend: $0.105780 over 5 priced call(s); 1 call(s) unpriced (COST001)" in r.stdout
    assert "$0.026400 of $0.105780 (25.0%) of LLM spend is unattributed for tenant_id" in r.stdout
    assert "  COST002  $0.053250 over 1 LLM call(s)" in r.stdout
    assert "  COST001  1 LLM call(s), all unpriced" in r.stdout


def test_json_result_validates_against_the_report_schema(default_result):
    import jsonschema

    schema = json.loads((Path(__file__).resolve().parents[1] / "schemas" / "report.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(default_result)
    assert schema["properties"]["summary"]["properties"]["cost"]["properties"]["by_finding_code"]


def test_pricing_findings_of_a_folded_record_are_dropped():
    from builders import mk

    from auditor.engine import audit
    from auditor.schema import load_schema

    usage = {"gen_ai.usage.input_tokens": 1_000, "gen_ai.usage.output_tokens": 50}
    spans = [
        mk(1, 1, None, "POST /x", attrs={"tenant_id": "acme", "workflow_id": "w"}, dur=10_000),
        # the framework's record: no model, so unpriced on its own
        mk(1, 2, 1, "llm", scope="framework", attrs={"llm.request.type": "chat", **usage}, start=10, dur=500),
        mk(1, 3, 2, "chat gpt-4o-mini", scope="client", start=20, dur=100, attrs={
            "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini", **usage}),
    ]
    r = audit(spans, load_schema("default"))
    assert r.duplicates == {(spans[1].trace_id, spans[1].span_id): (spans[2].trace_id, spans[2].span_id)}
    assert "COST001" not in r.finding_counts and r.unpriced_calls == 0
    assert r.total_cost_usd == Decimal("0.00015") + Decimal("0.00003")


def test_cost_reads_stdin():
    r = CliRunner().invoke(cli, ["cost", "-", "--by", "tenant_id", "-f", "csv"], input=Path(JSON_SAMPLE).read_bytes())
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[-1].startswith("total,6,1,") and r.stdout.splitlines()[-1].endswith(",0.105780,100.00")
