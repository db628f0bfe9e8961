"""The fast path (rates looked up once, arithmetic per span) equals genai_prices.calc_price.

Over every model of every provider in the pinned data, random dates (prices change, tiers,
time-of-day prices), random usages with cache reads, 5m / 1h / unspecified cache writes and
reasoning, and the service tiers the data has variants for.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import genai_prices
from genai_prices.data import providers
from genai_prices.types import StartDateConstraint, TimeOfDateConstraint
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor.model import LlmCall, Usage
from auditor.price_epochs import NS_PER_DAY
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


def _exact(start_ns: int) -> datetime:
    """The call's start as calc_price takes it: its UTC instant floored to the microsecond."""
    return datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=start_ns // 1000)


# Every model whose price changes with the date or the time of day, with the instants it changes
# at (UTC midnights of its start dates, the off-peak bounds on some day): the edges a cache by
# price epoch could get wrong.
def _edges() -> list[tuple[str, str, int]]:
    out = []
    for p in providers:
        for m in p.models:
            conditional = [cp.constraint for cp in m.prices] if isinstance(m.prices, list) else []
            for c in conditional + [v.constraint for v in m.price_variants or ()]:
                if isinstance(c, StartDateConstraint):
                    d = c.start_date
                    out.append((p.id, m.id, int(datetime(d.year, d.month, d.day, tzinfo=timezone.utc).timestamp()) * 10**9))
                elif isinstance(c, TimeOfDateConstraint):
                    for t in (c.start_time, c.end_time):
                        day = datetime(2026, 2, 3, t.hour, t.minute, t.second, t.microsecond, tzinfo=timezone.utc)
                        out.append((p.id, m.id, int(day.timestamp()) * 10**9))
    return sorted(set(out))


EDGES = _edges()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    edge=st.sampled_from(EDGES),
    offsets=st.lists(st.one_of(st.integers(-3_000, 3_000), st.integers(-3 * NS_PER_DAY, 3 * NS_PER_DAY)), min_size=1, max_size=6),
    u=usages(),
    tier=st.sampled_from([None, "batch", "flex", "priority"]),
)
def test_prices_near_a_change_are_exact_in_any_order(edge, offsets, u, tier):
    """Calls a few ns (or days) either side of a price change, in any order, through one pricer:
    each equals calc_price at its own instant and a fresh pricer's answer (nothing aliases)."""
    provider_id, model_id, at = edge
    shared = Pricer()
    for off in offsets:
        start_ns = at + off
        call = LlmCall("a" * 32, "b" * 16, "s", "sc", "n", start_ns, start_ns, provider_id, model_id, None, u, {}, tier=tier)
        ours = shared.price(call)
        assert ours == Pricer().price(call)
        rates = shared.rates(provider_id, model_id, start_ns, tier)
        if isinstance(rates, str) or ours[0] is None:
            continue
        ctx = TIER_RULES[tier][0] if tier and rates.multiplier is None else None
        by_name = "matched by model name" in shared.find_model(provider_id, model_id).how
        theirs = genai_prices.calc_price(
            genai_usage(u), model_id, provider_id=None if by_name else provider_id, genai_request_timestamp=_exact(start_ns), price_context=ctx
        ).total_price
        assert ours[0] == (theirs * rates.multiplier if rates.multiplier is not None else theirs), (start_ns, u)


def test_every_model_of_the_data_prices_like_calc_price():
    """A deterministic sweep beside the random one: every model, tier and a few instants (before,
    between and after most price changes, peak and off-peak), usages with every kind of count."""
    pricer = Pricer()
    usages_ = [
        Usage(input=1_200, cache_read=48_000, cache_write=6_000, output=850, reasoning=300, convention="including"),
        Usage(input=250_000, cache_read=10_001, cache_write_5m=2_000, cache_write_1h=4_000, output=5, reasoning=5, convention="including"),
    ]
    instants = [datetime(2025, 1, 1, 12, tzinfo=timezone.utc), datetime(2026, 6, 1, 3, tzinfo=timezone.utc),
                datetime(2027, 1, 1, 20, tzinfo=timezone.utc)]
    compared = 0
    for provider_id, model_id in MODELS:
        for tier in (None, "batch", "priority"):
            for when in instants:
                start_ns = int(when.timestamp()) * 10**9
                rates = pricer.rates(provider_id, model_id, start_ns, tier)
                if isinstance(rates, str):
                    continue
                ctx = TIER_RULES[tier][0] if tier and rates.multiplier is None else None
                by_name = "matched by model name" in pricer.find_model(provider_id, model_id).how
                for u in usages_:
                    call = LlmCall("a" * 32, "b" * 16, "s", "sc", "n", start_ns, start_ns, provider_id, model_id, None, u, {}, tier=tier)
                    ours, note = pricer.price(call)
                    try:
                        theirs = genai_prices.calc_price(genai_usage(u), model_id, provider_id=None if by_name else provider_id,
                                                         genai_request_timestamp=when, price_context=ctx).total_price
                    except ValueError:
                        assert ours is None and note.startswith("cannot price"), (provider_id, model_id, note)
                        continue
                    if rates.multiplier is not None:
                        theirs *= rates.multiplier
                    assert ours == theirs, (provider_id, model_id, tier, when, u)
                    compared += 1
    assert compared > 10_000
