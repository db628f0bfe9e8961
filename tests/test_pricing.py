"""Prices of single calls, computed by hand from the providers' published rates (USD per MTok).

Anthropic Claude Sonnet 4.5: input $3, output $15, cache read $0.30, cache write 5m $3.75,
1h $6; above 200K input tokens: $6 / $22.50 / $0.60 / $7.50 / $12.
OpenAI gpt-4o: input $2.50, cached input $1.25, output $10. gpt-4o-mini: $0.15, $0.075, $0.60;
Batch API: half.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

from auditor.model import LlmCall, Usage
from auditor.pricing import Pricer
from auditor.schema import compile_schema

D = Decimal


def ns(y: int, m: int, d: int) -> int:
    return int(datetime(y, m, d, tzinfo=timezone.utc).timestamp()) * 10**9


JAN = ns(2026, 1, 1)


def call(provider, model, usage: Usage, start=JAN, tier=None) -> LlmCall:
    return LlmCall("a" * 32, "b" * 16, "svc", "scope", "chat", start, start + 1, provider, model, None, usage, {}, tier=tier)


def inc(**kw) -> Usage:
    return Usage(convention="including", **kw)


def test_cache_heavy_anthropic_call():
    cost, note = Pricer().price(call("anthropic", "claude-sonnet-4-5-20250929", inc(input=1_200, cache_read=48_000, cache_write=6_000, output=850)))
    # 1,200 x 3 + 48,000 x 0.30 + 6,000 x 3.75 + 850 x 15, per million
    assert cost == D("0.0036") + D("0.0144") + D("0.0225") + D("0.01275") == D("0.05325")
    assert note == "genai-prices 0.2.3 anthropic/claude-sonnet-4-5"


def test_one_hour_cache_writes_at_their_own_rate():
    cost, _ = Pricer().price(call("anthropic", "claude-sonnet-4-5", inc(input=1_000, cache_write_5m=2_000, cache_write_1h=4_000, output=0)))
    assert cost == D("0.003") + D("0.0075") + D("0.024")


def test_openai_call_with_cached_tokens():
    cost, _ = Pricer().price(call("openai", "gpt-4o-2024-08-06", inc(input=3_808, cache_read=8_192, output=400)))
    assert cost == D("0.00952") + D("0.01024") + D("0.004") == D("0.02376")


def test_long_context_tier_applies_to_all_tokens_once_crossed():
    below, _ = Pricer().price(call("anthropic", "claude-sonnet-4-5", inc(input=200_000, output=1_000)))
    above, _ = Pricer().price(call("anthropic", "claude-sonnet-4-5", inc(input=190_000, cache_read=10_001, output=1_000)))
    assert below == D("0.6") + D("0.015")
    assert above == D("1.14") + D("0.0060006") + D("0.0225")


def test_price_as_of_the_span_start_time():
    # Claude Sonnet 4.6 had long-context tiers until Anthropic flattened them on 2026-03-13.
    u = inc(input=250_000, output=1_000)
    before, _ = Pricer().price(call("anthropic", "claude-sonnet-4-6", u, ns(2026, 3, 12)))
    after, _ = Pricer().price(call("anthropic", "claude-sonnet-4-6", u, ns(2026, 3, 13)))
    assert (before, after) == (D("1.5") + D("0.0225"), D("0.75") + D("0.015"))


def test_batch_and_flex_tiers():
    u = inc(input=20_000, output=2_000)
    p = Pricer()
    std, _ = p.price(call("openai", "gpt-4o-mini", u))
    batch, note = p.price(call("openai", "gpt-4o-mini", u, tier="batch"))
    assert (std, batch) == (D("0.0042"), D("0.0021"))
    assert note.endswith("batch tier: standard rates x0.5")  # the data has no batch rates before 2026-10-14
    batch_nov, note = p.price(call("openai", "gpt-4o-mini", u, ns(2026, 11, 1), tier="batch"))
    assert (batch_nov, note) == (D("0.0021"), "genai-prices 0.2.3 openai/gpt-4o-mini; batch tier rates")
    flex, note = p.price(call("openai", "gpt-4o-mini", u, tier="FLEX"))
    assert flex == D("0.0021") and "flex" in note
    dflt, _ = p.price(call("openai", "gpt-4o-mini", u, tier="default"))
    assert dflt == std


def test_priority_tier_from_the_data_or_standard_with_a_note():
    u = inc(input=10_000, cache_read=10_000, output=2_000)
    p = Pricer()
    nov, note = p.price(call("openai", "gpt-4o", u, ns(2026, 11, 1), tier="priority"))
    assert nov == D("0.0425") + D("0.02125") + D("0.034")  # $4.25 / $2.125 / $17
    jan, note = p.price(call("openai", "gpt-4o", u, tier="priority"))
    assert jan == D("0.025") + D("0.0125") + D("0.02")
    assert note.endswith("priority tier not in the price data: standard rates")


def test_unknown_model_is_unpriced_never_zero():
    cost, note = Pricer().price(call("vllm", "acme-support-70b-ft", inc(input=3_000, output=300)))
    assert cost is None
    assert note == "no price for model 'acme-support-70b-ft' (provider vllm) in genai-prices 0.2.3"
    assert Pricer().price(call("openai", None, inc(input=1, output=1))) == (None, "no model on the span")
    assert Pricer().price(call("openai", "gpt-4o", Usage(total=500))) == (None, "cannot price: no token counts")


def test_provider_names_from_spans_map_to_price_list_providers():
    u = inc(input=1_000, output=100)
    cost, note = Pricer().price(call("aws.bedrock", "anthropic.claude-3-5-sonnet-20240620-v1:0", u))
    assert cost == D("0.003") + D("0.0015") and note.startswith("genai-prices 0.2.3 aws/")
    cost, note = Pricer().price(call("litellm", "anthropic/claude-sonnet-4-5", u))
    assert cost == D("0.0045") and "anthropic/claude-sonnet-4-5" in note


def schema_with_prices(prices) -> object:
    return compile_schema({"version": 1, "keys": {}, "prices": prices}, origin="t")


def test_schema_prices_add_a_self_hosted_model_and_discount_a_known_one():
    s = schema_with_prices([
        {"model": "acme-support-70b-ft", "input_mtok": 0.4, "output_mtok": 1.6},
        {"provider": "openai", "model": "gpt-4o", "match": "prefix", "discount_pct": 20},
        {"model": "half-priced", "input_mtok": 1},
    ])
    p = Pricer(s)
    cost, note = p.price(call("vllm", "acme-support-70b-ft", inc(input=3_000, output=300)))
    assert (cost, note) == (D("0.0012") + D("0.00048"), "schema prices")
    cost, note = p.price(call("openai", "gpt-4o-2024-08-06", inc(input=3_808, cache_read=8_192, output=400)))
    assert cost == D("0.02376") * D("0.8")
    assert note.endswith("schema discount 20%")
    cost, note = p.price(call("x", "half-priced", inc(input=1, output=1)))
    assert cost is None and "needs input_mtok and output_mtok" in note


def test_schema_rates_override_a_known_model():
    p = Pricer(schema_with_prices([{"provider": "anthropic", "model": "claude-sonnet-4-5", "input_mtok": 2.5}]))
    cost, note = p.price(call("anthropic", "claude-sonnet-4-5", inc(input=1_000_000, output=0)))
    assert cost == D("2.5") and "schema prices override input_mtok" in note


def test_impossible_reasoning_is_unpriced_where_reasoning_has_its_own_rate():
    # reasoning is part of output; a model that prices reasoning separately cannot price more reasoning than output
    from genai_prices.data import providers

    pm = next((p.id, m.id) for p in providers for m in p.models if "output_reasoning_mtok" in repr(m.prices))
    cost, note = Pricer().price(call(pm[0], pm[1], inc(input=10, output=5, reasoning=9)))
    assert cost is None and note.startswith("cannot price: output_tokens (5)")


def test_the_auditor_never_starts_a_price_update():
    src = "\n".join(p.read_text() for p in Path(__file__).resolve().parents[1].joinpath("auditor").rglob("*.py"))
    assert "UpdatePrices(" not in src and ".UpdatePrices" not in src and "wait_prices_updated" not in src
    import genai_prices.data_snapshot as snap

    Pricer().price(call("openai", "gpt-4o", inc(input=1, output=1)))
    assert snap._custom_snapshot is None  # only the bundled, pinned data


def test_a_call_just_before_a_price_change_keeps_the_old_price_whatever_came_first():
    # Sonnet 4.6's long-context tier ended at 2026-03-13 00:00 UTC. A span starting 1 ns before
    # is in the old price; the epoch cache must not be filled by the first call's rounded date.
    u = inc(input=250_000, output=1_000)
    end = ns(2026, 3, 13)
    old, new = D("1.5") + D("0.0225"), D("0.75") + D("0.015")
    for order in ((end - 1, end - 86_400 * 10**9, end), (end, end - 86_400 * 10**9, end - 1)):
        p = Pricer()
        got = {t: p.price(call("anthropic", "claude-sonnet-4-6", u, t))[0] for t in order}
        assert got == {end - 1: old, end - 86_400 * 10**9: old, end: new}


def test_a_start_time_no_date_can_hold_is_priced_in_its_epoch_not_a_crash():
    u = inc(input=250_000, output=1_000)
    p = Pricer()
    assert p.price(call("anthropic", "claude-sonnet-4-6", u, 10**30))[0] == D("0.75") + D("0.015")  # after every change
    assert p.price(call("anthropic", "claude-sonnet-4-6", u, -10**30))[0] == D("1.5") + D("0.0225")  # before every change
    assert p.price(call("openai", "gpt-4o", inc(input=1_000, output=100), 10**30))[0] == D("0.0035")


def test_a_pricer_pickles_as_its_schema_and_prices_the_same():
    import pickle

    s = schema_with_prices([{"provider": "openai", "model": "gpt-4o", "match": "prefix", "discount_pct": 20}])
    p = Pricer(s)
    c = call("openai", "gpt-4o-2024-08-06", inc(input=3_808, cache_read=8_192, output=400))
    before = p.price(c)
    q = pickle.loads(pickle.dumps(p))
    assert q.price(c) == before == (D("0.02376") * D("0.8"), before[1]) and "schema discount 20%" in before[1]


def test_caches_stay_bounded_under_endless_distinct_names(monkeypatch):
    import auditor.pricing as pricing

    monkeypatch.setattr(pricing, "_MAX_CACHED", 8)
    p = Pricer()
    u = inc(input=1_000, output=100)
    for i in range(40):  # hostile spans: a new model name (and provider) each
        assert p.price(call(f"p{i}", f"no-such-model-{i}", u))[0] is None
        assert p.price(call("openai", "gpt-4o", u, JAN + i * 86_400 * 10**9))[0] == D("0.0035")
    assert max(len(p._hot), len(p._models), len(p._rates), len(p._built), len(p._leaf)) <= 8
