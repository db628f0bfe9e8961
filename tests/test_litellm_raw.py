"""LiteLLM calls recorded only as ``raw_gen_ai_request`` (issue 17 item 1).

sample_traces/litellm/raw-request.otlp.json is made by LiteLLM 1.110.2's own OTel callback
(sample_traces/generate_litellm.py). Hand-checked prices (genai-prices rates, per million tokens:
gpt-4o-mini input $0.15, cached input $0.075, output $0.60; claude-sonnet-4-5 input $3, cache
read $0.30, cache write 5m $3.75, output $15; each sum below is divided by 1e6):

* summarise (a), parent span and raw child both record one call (same response id): counted
  once: 1000 uncached x 0.15 + 200 cached x 0.075 + 150 x 0.60 = $0.000255 (LiteLLM's own
  gen_ai.cost.total_cost on the parent says 0.000255 too).
* draft_reply (b), only the raw child (openai usage): 800 x 0.15 + 60 x 0.60 = $0.000156,
  unattributed: the handler span lost tenant_id / workflow_id (leak POST -> draft_reply).
* classify (b), only the raw child (anthropic usage, input excludes cache): 300 x 3 + 2000 x
  0.30 + 500 x 3.75 + 90 x 15 = 900 + 600 + 1875 + 1350 -> $0.004725 (tenant globex).

* research (a) with 2 Anthropic web searches: LiteLLM's gen_ai.response.id is its own
  chatcmpl-<uuid>, not Anthropic's msg_ id on the raw child, so the pair folds by shape (100 in,
  50 out, same trace, overlapping): 100 x 3 + 50 x 15 = 300 + 750 -> $0.00105 once. LiteLLM
  reports $0.02105 = $0.00105 + $0.02 of tool_usage_cost (2 searches x $10 / 1000): compared
  without the tool part, no AGENT003.

Total 0.000255 + 0.000156 + 0.004725 + 0.00105 = $0.006186; unattributed $0.000156 per key.
"""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from auditor import rawpayload
from auditor.cli import cli
from auditor.engine import audit
from auditor.schema import load_schema
from auditor.usage import Dialect
from builders import LLM, Tree, mk

SAMPLE = Path(__file__).resolve().parent.parent / "sample_traces" / "litellm" / "raw-request.otlp.json"
REPLY_TRACE = "1634dd0d436aecf3330344efffbfc2cb"
DIALECT = Dialect.from_mapping(load_schema("preset:litellm").dialects)


def run(*extra: str) -> tuple[int, dict]:
    res = CliRunner().invoke(cli, ["check", "--format", "json", *extra, str(SAMPLE)])
    return res.exit_code, json.loads(res.stdout)


def test_sample_counts_each_call_once_prices_it_and_finds_the_boundary_above_it():
    code, doc = run()
    assert code == 1
    calls = sorted((c["span_id"], c["provider"], c["model"], c["values"]["tenant_id"], c["values"]["workflow_id"],
                    c["cost_usd"], c["usage"]["source"], (c["duplicate_of"] or {}).get("span_id"), c["server_tools"])
                   for c in doc["calls"])
    assert calls == [
        ("214c4929c2bb66e6", "anthropic", "claude-sonnet-4-5", "globex", "triage", "0.00472500", "raw payload", None, {"web_search": 0}),
        ("27a004fdfb9c9161", "openai", "gpt-4o-mini", "acme", "invoice_summary", "0.000255000", "semconv", None, {"web_search": 0}),
        ("6373ae7f07c16ca9", "anthropic", "claude-sonnet-4-5", "acme", "vendor_research", "0.00105000", "semconv", None, {"web_search": 2}),
        ("81378455319d0859", "openai", "gpt-4o-mini", None, None, "0.000156000", "raw payload", None, {"web_search": 0}),
        # the raw children of (a): folded into their parent's record, not counted again
        ("954e493ea5f8af24", "anthropic", "claude-sonnet-4-5", "acme", "vendor_research", "0.00105000", "raw payload", "6373ae7f07c16ca9", {"web_search": 2}),
        ("c1b49f1bd278fadc", "openai", "gpt-4o-mini", "acme", "invoice_summary", "0.000255000", "raw payload", "27a004fdfb9c9161", {"web_search": 0}),
    ]
    s = doc["summary"]
    assert (s["traces"], s["spans"], s["llm_calls"]) == (4, 12, 4)
    assert s["cost"]["total_usd"] == "0.006186"
    assert s["cost"]["unattributed_usd"] == {"tenant_id": "0.000156", "workflow_id": "0.000156"}
    assert [(b["parent"]["name"], b["child"]["name"], b["class"], b["keys"], b["llm_calls_affected"], b["unattributed_cost_usd"])
            for b in doc["boundaries"]] == [
        ("POST /tickets/{id}/reply", "draft_reply", "in-process", ["tenant_id", "workflow_id"], 1, "0.000156"),
    ]
    got = sorted((f["code"], f["key"], f["trace_id"], f["span_id"]) for f in doc["findings"] if f["code"].startswith(("ATTR", "TRACE", "AGENT")))
    assert got == [
        ("ATTR001", "tenant_id", REPLY_TRACE, "982ec5350e034ecc"),
        ("ATTR001", "workflow_id", REPLY_TRACE, "982ec5350e034ecc"),
    ]  # the raw children folded into their own trace's record are LiteLLM describing one call twice: no TRACE005
    # LiteLLM's $0.02105 for research includes $0.02 of web search charges: not a mismatch.
    assert not [f for f in doc["findings"] if f["code"] == "AGENT003"]
    # A raw payload is LiteLLM's own shape, not a semconv span: no GENAI001 on it.
    assert not [f for f in doc["findings"] if f["code"] == "GENAI001"]


def test_anthropic_raw_usage_is_read_as_excluding_cache_tokens():
    _, doc = run()
    (c,) = [c for c in doc["calls"] if c["span_id"] == "214c4929c2bb66e6"]
    u = c["usage"]
    assert (u["input"], u["cache_read"], u["cache_write"], u["output"], u["convention"]) == (300, 2000, 500, 90, "excluding")
    assert u["basis"] == "anthropic raw usage: input_tokens exclude cache tokens"


def test_without_the_litellm_preset_the_raw_spans_are_not_read():
    """--schema default does not know the raw payload: only the parents of (a) are calls."""
    _, doc = run("--schema", "default")
    assert sorted(c["span_id"] for c in doc["calls"]) == ["27a004fdfb9c9161", "6373ae7f07c16ca9"]


def _raw(attrs: dict, name: str = "raw_gen_ai_request", scope: str = "litellm"):
    return mk(1, 2, 1, name=name, scope=scope, attrs=attrs)


def test_usage_shapes_openai_chat_responses_and_anthropic_with_ttl_split():
    chat = rawpayload.read(_raw({"llm.openai.usage": "{'prompt_tokens': 1200, 'completion_tokens': 150, "
                                 "'prompt_tokens_details': {'cached_tokens': 200}, 'completion_tokens_details': {'reasoning_tokens': 40}}",
                                 "llm.openai.model": "gpt-4o-mini", "llm.openai.id": "chatcmpl-1"}), DIALECT)
    assert (chat.provider, chat.model, chat.response_id) == ("openai", "gpt-4o-mini", "chatcmpl-1")
    assert (chat.usage.input, chat.usage.cache_read, chat.usage.output, chat.usage.reasoning, chat.usage.convention) == (1000, 200, 150, 40, "including")
    responses = rawpayload.read(_raw({"llm.openai.usage": '{"input_tokens": 500, "output_tokens": 20, "input_tokens_details": {"cached_tokens": 100}}'}), DIALECT)
    assert (responses.usage.input, responses.usage.cache_read, responses.usage.output, responses.usage.convention) == (400, 100, 20, "including")
    anth = rawpayload.read(_raw({"llm.anthropic.usage": "{'input_tokens': 10, 'cache_read_input_tokens': 0, 'cache_creation_input_tokens': 300, "
                                 "'cache_creation': {'ephemeral_5m_input_tokens': 100, 'ephemeral_1h_input_tokens': 200}, 'output_tokens': 5}",
                                 "llm.anthropic.service_tier": "batch"}), DIALECT)
    u = anth.usage
    assert (u.input, u.cache_write, u.cache_write_5m, u.cache_write_1h, u.output, u.convention, anth.tier) == (10, 0, 100, 200, 5, "excluding", "batch")


def test_hostile_or_missing_usage_is_not_a_call():
    for attrs in (
        {"llm.openai.usage": "__import__('os').system('true')"},
        {"llm.openai.usage": "{'prompt_tokens': (1).__class__}"},
        {"llm.openai.usage": "[1, 2]"},
        {"llm.openai.usage": "{'choices': []}"},
        {"llm.openai.usage": "{" * 10_000},
        {"llm.openai.model": "gpt-4o-mini", "llm.openai.max_tokens": 256},  # the request only
        {"llm.unknownprov.usage": "{'prompt_tokens': 10}"},  # a provider the preset does not list
    ):
        assert rawpayload.read(_raw(attrs), DIALECT) is None, attrs
    # Another span name: not LiteLLM's raw payload.
    assert rawpayload.read(_raw({"llm.openai.usage": "{'prompt_tokens': 10}"}, name="chat"), DIALECT) is None
    # Counts no call can have: a call, unpriced (GENAI004 says why), never a price.
    bad = rawpayload.read(_raw({"llm.openai.usage": "{'prompt_tokens': -5, 'completion_tokens': 1}"}), DIALECT)
    assert bad.usage.problem == "input tokens are negative (-5)"


def test_same_scope_parent_and_raw_child_fold_by_shape_when_the_parent_has_no_response_id():
    """litellm_request (no parent span) and its raw child share the scope ``litellm``: a second
    record of one call, not a second identical call. Counted once, attributed from the parent."""
    keys = {"metadata.requester_metadata": "{'tenant_id': 'acme', 'workflow_id': 'w'}"}
    parent = {**LLM, **keys, "gen_ai.system": "openai"}
    del parent["gen_ai.provider.name"]
    tree = Tree("POST /x", {"tenant_id": "acme", "workflow_id": "w"}, [
        Tree("litellm_request", parent, [
            Tree("raw_gen_ai_request", {"llm.openai.usage": "{'prompt_tokens': 1000, 'completion_tokens': 100}",
                                        "llm.openai.model": "gpt-4o-mini", "llm.openai.id": "chatcmpl-9"}, scope="litellm"),
        ], scope="litellm"),
    ])
    r = audit(tree.spans(), load_schema("preset:litellm"))
    assert [(c.span_id, c.cost_usd is not None) for c in r.calls] == [("0000000000000002", True)]
    assert r.duplicates == {(f"{1:032x}", "0000000000000003"): (f"{1:032x}", "0000000000000002")}
    assert [f.code for f in r.findings if f.code.startswith("ATTR")] == []
    # Two raw records of one scope with the same shape and no parent record are two calls.
    two = Tree("POST /x", {"tenant_id": "acme", "workflow_id": "w"}, [
        Tree("raw_gen_ai_request", {"llm.openai.usage": "{'prompt_tokens': 1000, 'completion_tokens': 100}"}, scope="litellm"),
        Tree("raw_gen_ai_request", {"llm.openai.usage": "{'prompt_tokens': 1000, 'completion_tokens': 100}"}, scope="litellm"),
    ])
    r2 = audit(two.spans(), load_schema("preset:litellm"))
    assert len(r2.calls) == 2 and r2.duplicates == {}


def test_raw_child_takes_its_parents_values_so_the_leak_is_reported_above_it():
    tree = Tree("POST /x", {"tenant_id": "acme", "workflow_id": "w"}, [
        Tree("handler", {}, [
            Tree("raw_gen_ai_request", {"llm.openai.usage": "{'prompt_tokens': 1000, 'completion_tokens': 100}"}, scope="litellm"),
        ]),
    ])
    r = audit(tree.spans(), load_schema("preset:litellm"))
    assert sorted((f.code, f.key, f.parent_span_id, f.span_id) for f in r.findings if f.code.startswith("ATTR")) == [
        ("ATTR001", "tenant_id", "0000000000000001", "0000000000000002"),
        ("ATTR001", "workflow_id", "0000000000000001", "0000000000000002"),
    ]


def test_reported_cost_is_compared_without_the_sources_tool_charges():
    """AGENT003 still fires when LiteLLM's token part disagrees with our price."""
    base = {**LLM, "gen_ai.system": "openai", "tenant_id": "a", "workflow_id": "w"}
    del base["gen_ai.provider.name"]
    ours = "0.00021"  # gpt-4o-mini: 1000 x 0.15 + 100 x 0.60 per million
    for reported, tools, codes in ((0.02021, 0.02, []), (0.02021, None, ["AGENT003"]), (0.05, 0.02, ["AGENT003"]), (0.02021, "NaN", ["AGENT003"])):
        attrs = {**base, "gen_ai.cost.total_cost": reported}
        if tools is not None:
            attrs["gen_ai.cost.tool_usage_cost"] = tools
        r = audit(Tree("chat", attrs, scope="litellm").spans(), load_schema("preset:litellm"))
        assert str(r.calls[0].cost_usd.normalize()) == ours
        assert [f.code for f in r.findings if f.code == "AGENT003"] == codes, (reported, tools)
