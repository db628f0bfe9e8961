"""The provider side is priced by the auditor's own pricing code, per token, so aggregated
tokens are priced as the provider bills each request; long-context rows (Anthropic's
``context_window: 200k-1M``) at the long-context rates, as the traced call itself is."""

import json
from decimal import Decimal

from auditor.engine import audit
from auditor.model import Span
from auditor.pricing import Pricer
from auditor.reconcile import parse_usage, reconcile, with_gateway_keys
from auditor.reconcile.provider_side import RateBook
from auditor.schema import load_schema

T0 = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z
SCHEMA = with_gateway_keys(load_schema("default"))


def one_call(uncached: int, output: int) -> Span:
    attrs = {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic",
        "gen_ai.response.model": "claude-sonnet-4-5-20250929", "gen_ai.usage.input_tokens": uncached,
        "gen_ai.usage.output_tokens": output, "api_key_id": "apikey_01A",
    }
    return Span("1" * 32, "1" * 16, "", "chat", "app", "app", 3, T0 + 5 * 10**9, T0 + 6 * 10**9, 0, attrs, {"service.name": "app"})


def report(uncached: int, output: int, window: str) -> str:
    return json.dumps({"data": [{"starting_at": "2026-01-01T00:00:00Z", "ending_at": "2026-01-02T00:00:00Z", "results": [{
        "uncached_input_tokens": uncached, "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "cache_read_input_tokens": 0, "output_tokens": output, "api_key_id": "apikey_01A", "workspace_id": None,
        "model": "claude-sonnet-4-5-20250929", "service_tier": "standard", "context_window": window}]}]})


def test_long_context_rows_priced_at_long_context_rates():
    result = audit([one_call(300_000, 1_000)], SCHEMA)
    (call,) = result.calls
    assert call.cost_usd == Decimal("1.8225")  # 300k x $6 + 1k x $22.50 per MTok: past 200k input
    long = reconcile([parse_usage(report(300_000, 1_000, "200k-1M"), "u.json")], result.calls)
    assert [(g.provider_usd, g.ungated_usd) for g in long.groups] == [(Decimal("1.8225"), 0)]
    # The same tokens reported as short-context requests are priced at the base rates.
    short = reconcile([parse_usage(report(300_000, 1_000, "0-200k"), "u.json")], result.calls)
    assert [g.provider_usd for g in short.groups] == [Decimal("0.915")]  # 300k x $3 + 1k x $15


def test_rates_are_per_token_and_cancel_per_request_fees():
    book = RateBook(Pricer())
    from datetime import date

    r = book.rates("openai", ["gpt-4o-mini-2024-07-18"], date(2026, 1, 1), "batch")
    assert r["uncached_input"] == Decimal("0.075") / 10**6  # $0.15 / MTok, half for batch
    assert r["cache_read"] == Decimal("0.0375") / 10**6
    assert r["output"] == Decimal("0.30") / 10**6
    assert book.rates("anthropic", ["no-such-model"], date(2026, 1, 1), None)["output"] is None
