"""Each provider export format: what it reads, and a one-line error naming the file and the
field for what it cannot read (exit 2 through the CLI, never a traceback)."""

import gzip
import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.cli import cli
from auditor.reconcile import Tokens, UsageExportError, load_usage, parse_usage
from auditor.reconcile.model import DEFAULT
from auditor.reconcile.names import model_key, tier_name

ROOT = Path(__file__).resolve().parent.parent
U = ROOT / "tests" / "fixtures" / "usage"
TRACES = str(ROOT / "sample_traces" / "reconcile" / "litellm_proxy.otlp.json")


def test_anthropic_usage_report_pages():
    ex = load_usage(U / "anthropic_usage_pages.json")
    assert (ex.kind, ex.provider, len(ex.usage)) == ("anthropic-usage-report", "anthropic", 7)
    assert ex.grouped_by == {"model", "api_key_id", "workspace_id", "tier"}
    dev = next(r for r in ex.usage if r.dims.api_key_id == "apikey_01DevLaptop" and r.dims.model.startswith("claude-sonnet"))
    assert dev.day == date(2026, 1, 1)
    assert dev.dims.workspace_id == DEFAULT  # null workspace in an export grouped by workspace: the default one
    assert dev.tokens == Tokens(uncached_input=5000, cache_read=40000, cache_write_5m=10000, output=2000)
    assert len(ex.pages) == 2 and ex.intervals[0][1] == ex.intervals[1][0]


def test_anthropic_cost_report_amount_is_cents_as_a_string():
    ex = load_usage(U / "anthropic_cost_report.json")
    assert ex.kind == "anthropic-cost-report"
    line = next(c for c in ex.costs if c.dims.workspace_id == DEFAULT and c.token_type == "cache_write_5m")
    assert line.usd == Decimal("0.0375")  # "3.75" cents
    assert line.dims.tier == "standard" and line.dims.model == "claude-sonnet-4-5-20250929"
    assert sum(c.usd for c in ex.costs) == Decimal("0.23005")


def test_console_cost_csv():
    ex = load_usage(U / "anthropic_console_cost.csv")
    assert (ex.kind, len(ex.costs)) == ("anthropic-console-cost-csv", 23)
    first = ex.costs[0]
    assert (first.day, first.dims.model, first.dims.api_key_id, first.token_type, first.usd) == (
        date(2026, 1, 1), "Claude Haiku 4.5", "apikey_01DevLaptop", "uncached_input", Decimal("0.02"))
    assert model_key(first.dims.model) == "claude-haiku-4-5"


def test_console_usage_csv():
    ex = load_usage(U / "anthropic_console_usage.csv")
    assert (ex.kind, len(ex.usage)) == ("anthropic-console-usage-csv", 7)
    dev = next(r for r in ex.usage if r.dims.api_key_id == "alice-laptop" and "sonnet" in r.dims.model)
    assert dev.tokens == Tokens(uncached_input=5000, cache_read=40000, cache_write_5m=10000, output=2000)
    assert (dev.dims.workspace_id, dev.dims.tier) == (DEFAULT, "standard")
    with pytest.raises(UsageExportError, match=r"^x.csv: line 2 column usage_output_tokens: expected a token count"):
        parse_usage("usage_date_utc,usage_input_tokens_no_cache,usage_output_tokens\n2026-01-01,5,-1\n", "x.csv")


def test_openai_usage_input_includes_cached():
    ex = load_usage(U / "openai_usage_completions.json")
    assert ex.kind == "openai-usage-completions"
    gw = next(r for r in ex.usage if r.dims.api_key_id == "key_SupportGw" and r.day == date(2026, 1, 1))
    assert gw.tokens == Tokens(uncached_input=2476, cache_read=1024, output=250)
    assert (gw.requests, gw.dims.workspace_id, gw.dims.tier) == (2, "proj_SupportBot", "standard")
    batch = next(r for r in ex.usage if r.dims.api_key_id == "key_BatchJobs")
    assert batch.dims.tier == "batch"


def test_openai_costs_line_items():
    ex = load_usage(U / "openai_costs.json")
    assert ex.kind == "openai-costs"
    kinds = {(c.dims.model, c.token_type, c.dims.tier) for c in ex.costs if c.day == date(2026, 1, 1)}
    assert kinds == {
        ("gpt-4.1-mini-2025-04-14", "uncached_input", "batch"), ("gpt-4.1-mini-2025-04-14", "output", "batch"),
        ("gpt-4o-mini-2024-07-18", "uncached_input", "standard"), ("gpt-4o-mini-2024-07-18", "cache_read", "standard"),
        ("gpt-4o-mini-2024-07-18", "output", "standard"),
    }


def test_gzip_and_json_array_of_pages(tmp_path):
    pages = [json.loads((U / f"anthropic_usage_page{i}.json").read_text()) for i in (1, 2)]
    f = tmp_path / "pages.json.gz"
    f.write_bytes(gzip.compress(json.dumps(pages).encode()))
    assert len(load_usage(f).usage) == 7


def test_names():
    assert model_key("anthropic/claude-sonnet-4-5-20250929") == "claude-sonnet-4-5"
    assert model_key("Claude Sonnet 4.5") == "claude-sonnet-4-5"
    assert model_key("gpt-4.1-mini-2025-04-14") == model_key("gpt-4.1-mini") == "gpt-4.1-mini"
    assert [tier_name(t) for t in (None, "default", "auto", "standard", "batch", "flex", "priority")] == [
        "standard", "standard", "standard", "standard", "batch", "flex", "priority"]


ANTH = {"data": [{"starting_at": "2026-01-01T00:00:00Z", "ending_at": "2026-01-02T00:00:00Z", "results": [
    {"uncached_input_tokens": 10, "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
     "cache_read_input_tokens": 0, "output_tokens": 1, "model": "claude-haiku-4-5-20251001"}]}], "has_more": False}
OAI = {"object": "page", "data": [{"object": "bucket", "start_time": 1767225600, "end_time": 1767312000, "results": [
    {"object": "organization.usage.completions.result", "input_tokens": 10, "input_cached_tokens": 2, "output_tokens": 1,
     "num_model_requests": 1, "model": "gpt-4o-mini"}]}]}
COST = {"data": [{"starting_at": "2026-01-01T00:00:00Z", "ending_at": "2026-01-02T00:00:00Z", "results": [
    {"currency": "USD", "amount": "12.5", "workspace_id": None, "description": None}]}]}
OCOST = {"object": "page", "data": [{"object": "bucket", "start_time": 1767225600, "end_time": 1767312000, "results": [
    {"object": "organization.costs.result", "amount": {"value": 0.5, "currency": "usd"}, "line_item": None, "project_id": None}]}]}


def patched(doc, path, value):
    doc = json.loads(json.dumps(doc))
    cur = doc
    for p in path[:-1]:
        cur = cur[p]
    if value is KeyError:
        del cur[path[-1]]
    else:
        cur[path[-1]] = value
    return json.dumps(doc)


R0 = ("data", 0, "results", 0)
BAD = [
    (patched(ANTH, R0 + ("uncached_input_tokens",), "many"),
     'x.json: $.data[0].results[0].uncached_input_tokens: expected a token count (integer >= 0), got "many"'),
    (patched(ANTH, R0 + ("output_tokens",), KeyError),
     "x.json: $.data[0].results[0].output_tokens: expected a token count (integer >= 0)"),
    (patched(ANTH, R0 + ("cache_creation",), [1]),
     "x.json: $.data[0].results[0].cache_creation: expected an object, got [1]"),
    (patched(ANTH, ("data", 0, "starting_at"), "yesterday"),
     'x.json: $.data[0].starting_at: expected an RFC 3339 timestamp, got "yesterday"'),
    (patched(OAI, R0 + ("input_cached_tokens",), 11),
     "x.json: $.data[0].results[0].input_cached_tokens: expected at most input_tokens (10): input_tokens includes cached tokens, got 11"),
    (patched(OAI, R0 + ("batch",), "yes"), 'x.json: $.data[0].results[0].batch: expected true, false or null, got "yes"'),
    (patched(OAI, ("data", 0, "end_time"), -5), "x.json: $.data[0].end_time: expected a Unix time in seconds, got -5"),
    (patched(COST, R0 + ("amount",), "12,5"), 'x.json: $.data[0].results[0].amount: expected a decimal amount, got "12,5"'),
    (patched(COST, R0 + ("currency",), "EUR"), 'x.json: $.data[0].results[0].currency: expected "USD", got "EUR"'),
    (patched(OCOST, R0 + ("amount",), {"currency": "usd"}), "x.json: $.data[0].results[0].amount.value: expected a number of dollars"),
    ('{"data": [', "x.json: line 1 column 11: invalid JSON: Expecting value"),
    ('{"hello": 1}', "x.json: $: expected an Anthropic usage report or cost report (JSON), an OpenAI usage/completions "
                     "or costs page (JSON), or the Anthropic Console's cost or usage CSV"),
    ("usage_date_utc,cost_usd\n2026-01-01,abc\n", 'x.json: line 2 column cost_usd: expected a decimal amount, got "abc"'),
    ("usage_date_utc,cost_usd\nJanuary,0.1\n", 'x.json: line 2 column usage_date_utc: expected a date YYYY-MM-DD, got "January"'),
    ("usage_date_utc,cost_usd,token_type\n2026-01-01,0.1,input_magic\n",
     'x.json: line 2 column token_type: expected one of input_no_cache, input_cache_read, input_cache_write_5m, '
     'input_cache_write_1h, output, got "input_magic"'),
    ("", "x.json: empty file: expected an Anthropic usage report or cost report (JSON), an OpenAI usage/completions "
         "or costs page (JSON), or the Anthropic Console's cost or usage CSV"),
]


@pytest.mark.parametrize("text,message", BAD)
def test_bad_export_one_line_naming_the_field(text, message):
    with pytest.raises(UsageExportError) as e:
        parse_usage(text, "x.json")
    assert str(e.value) == message


def test_cli_bad_export_exits_2_with_one_line(tmp_path):
    f = tmp_path / "usage.json"
    f.write_text(patched(ANTH, R0 + ("uncached_input_tokens",), -3))
    res = CliRunner().invoke(cli, ["reconcile", TRACES, "-u", str(f)])
    assert res.exit_code == 2
    assert res.stderr == f"auditor: error: {f}: $.data[0].results[0].uncached_input_tokens: expected a token count (integer >= 0), got -3\n"
    assert res.stdout == ""


def test_cli_bad_key_map_and_missing_file(tmp_path):
    km = tmp_path / "km.yaml"
    km.write_text("support-bot: [1, 2]\n")
    res = CliRunner().invoke(cli, ["reconcile", TRACES, "-u", str(U / "openai_costs.json"), "--key-map", str(km)])
    assert res.exit_code == 2 and res.stderr == f"auditor: error: {km}: $.support-bot: expected an api key id, or {{api_key_id, workspace_id}}\n"
    res = CliRunner().invoke(cli, ["reconcile", TRACES, "-u", str(tmp_path / "nope.json")])
    assert res.exit_code == 2 and res.stderr == f"auditor: error: {tmp_path / 'nope.json'}: cannot read: No such file or directory\n"


def test_bucket_times_with_an_offset_are_utc():
    """2026-01-02T00:30:00+01:00 is 2026-01-01T23:30Z: the bucket (and its day) is Jan 1."""
    doc = json.loads(json.dumps(ANTH))
    doc["data"][0]["starting_at"] = "2026-01-02T00:30:00+01:00"
    doc["data"][0]["ending_at"] = "2026-01-02T01:30:00+01:00"
    ex = parse_usage(json.dumps(doc), "x.json")
    assert ex.usage[0].day == date(2026, 1, 1)
    assert ex.intervals == ((1_767_310_200 * 10**9, 1_767_313_800 * 10**9),)
