"""The fast path (rates looked up once, arithmetic per span) equals genai_prices.calc_price.

Over every model of every provider in the pinned data, random dates (prices change, tiers,
time-of-day prices), random usages with cache reads, 5m / 1h / unspecified cache writes and
reasoning, and the service tiers the data has variants for.
"""

from __future__ import annotations

from datetime import datetime, timezone

import genai_prices
from genai_prices.data import providers
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor.model import LlmCall, Usage
from auditor.pricing import TIER_RULES, Pricer

MODELS = [(p.id, m.id) for p in providers for m in p.models]
PRICER = Pricer()  # one pricer for the whole run: its caches must never mix up keys

counts = st.integers(min_value=0, max_value=400_000)


@st.composite
def usages(draw):
    out = draw(counts)
    return Usage(
        input=draw(counts),
        cache_read=draw(counts),
        cache_write=draw(st.integers(0, 50_000)),
        cache_write_5m=draw(st.integers(0, 50_000)),
        cache_write_1h=draw(st.integers(0, 50_000)),
        output=out,
        reasoning=draw(st.integers(0, out)),
        convention="including",
    )


def genai_usage(u: Usage) -> genai_prices.Usage:
    cw = u.cache_write_total
    return genai_prices.Usage(
        input_tokens=u.input + u.cache_read + cw,
        cache_read_tokens=u.cache_read,
        cache_write_tokens=cw,
        cache_write_5m_tokens=u.cache_write_5m,
        cache_write_1h_tokens=u.cache_write_1h,
        output_tokens=u.output,
        output_reasoning_tokens=u.reasoning,
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    model=st.sampled_from(MODELS),
    u=usages(),
    when=st.datetimes(min_value=datetime(2023, 1, 1), max_value=datetime(2027, 6, 30)),
    tier=st.sampled_from([None, None, "batch", "flex", "priority", "fast"]),
)
def test_fast_path_equals_calc_price(model, u, when, tier):
    provider_id, model_id = model
    when = when.replace(tzinfo=timezone.utc)
    start_ns = int(when.timestamp()) * 10**9 + when.microsecond * 1000
    call = LlmCall("a" * 32, "b" * 16, "s", "sc", "n", start_ns, start_ns, provider_id, model_id, None, u, {}, tier=tier)
    rates = PRICER.rates(provider_id, model_id, start_ns, tier)
    ours, note = PRICER.price(call)
    ts = datetime.fromtimestamp(start_ns / 1e9, tz=timezone.utc)
    if isinstance(rates, str):  # a model whose id its own match rule does not take: neither finds it
        with pytest.raises(LookupError):
            genai_prices.calc_price(genai_usage(u), model_id, provider_id=provider_id, genai_request_timestamp=ts)
        assert ours is None
        return
    ctx = TIER_RULES[tier][0] if tier and rates.multiplier is None else None
    by_name = "matched by model name" in PRICER.find_model(provider_id, model_id).how
    try:
        theirs = genai_prices.calc_price(
            genai_usage(u), model_id, provider_id=None if by_name else provider_id, genai_request_timestamp=ts, price_context=ctx
        ).total_price
    except ValueError:
        assert ours is None and note.startswith("cannot price"), note
        return
    if rates.multiplier is not None:  # batch / flex without rates in the data: half the standard price
        theirs *= rates.multiplier
    assert ours == theirs, (note, u)


def test_nearly_every_model_in_the_data_resolves_by_its_own_id():
    missing = [m for m in MODELS if isinstance(PRICER.rates(m[0], m[1], 1_767_225_600 * 10**9, None), str)]
    assert len(missing) < len(MODELS) // 20, missing[:10]  # AWS "regional.*" pseudo-ids match no request id
