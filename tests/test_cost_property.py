"""Cost properties: chargeback rows add up to the total; span order and file splits change nothing."""

from __future__ import annotations

import random
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from auditor.commands.cost import UNATTRIBUTED, chargeback
from auditor.plan import Plan
from auditor.engine import audit, merge
from builders import mk
from conftest import simple_schema

MODELS = [
    ("openai", "gpt-4o"), ("openai", "gpt-4o-mini"), ("anthropic", "claude-sonnet-4-5"),
    ("anthropic", "claude-3-5-haiku-20241022"), ("vllm", "self-hosted-llm"),
]
SCHEMA = simple_schema().with_dimensions(("user.id",))


@st.composite
def traces(draw):
    spans = []
    n = draw(st.integers(1, 6))
    sid = 1
    for t in range(1, n + 1):
        tenant = draw(st.sampled_from([None, "acme", "globex"]))
        user = draw(st.sampled_from([None, "u1", "u2"]))
        root_attrs = {"tenant_id": tenant} if tenant else {}
        root = sid
        spans.append(mk(t, root, None, "POST /x", attrs=root_attrs, dur=10_000))
        sid += 1
        for k in range(draw(st.integers(1, 3))):
            provider, model = draw(st.sampled_from(MODELS))
            inp = draw(st.integers(0, 300_000))
            cached = draw(st.integers(0, inp))
            attrs = {
                "gen_ai.operation.name": "chat", "gen_ai.provider.name": provider, "gen_ai.request.model": model,
                "gen_ai.usage.input_tokens": inp, "gen_ai.usage.cache_read.input_tokens": cached,
                "gen_ai.usage.output_tokens": draw(st.integers(0, 5_000)), "gen_ai.response.id": f"r{t}-{k}",
            }
            if draw(st.booleans()):
                attrs["gen_ai.request.service_tier"] = "batch"
            if tenant and draw(st.booleans()):
                attrs["tenant_id"] = tenant  # otherwise the hop leaks it
            if user:
                attrs["user.id"] = user
            spans.append(mk(t, sid, root, "chat", attrs=attrs, start=100 * (k + 1), dur=50))
            sid += 1
    return spans


def rows(result, by):
    cb = chargeback(result, by)
    return cb, {r.values: (r.calls, r.unpriced_calls, r.tokens, r.cost_usd) for r in cb.rows}


@settings(max_examples=60, deadline=None)
@given(spans=traces(), seed=st.integers(0, 2**32))
def test_total_equals_chargeback_rows_and_is_invariant(spans, seed):
    c = Plan.fixed(SCHEMA)
    whole = audit(spans, SCHEMA, plan=c)
    for by in (("tenant_id",), ("user.id",), ("tenant_id", "user.id")):
        cb, table = rows(whole, by)
        assert sum((r.cost_usd for r in cb.rows), Decimal(0)) == whole.total_cost_usd == cb.total.cost_usd
        assert sum(r.calls for r in cb.rows) == len(whole.calls)
        assert sum(r.unpriced_calls for r in cb.rows) == whole.unpriced_calls
        if by == ("tenant_id",):
            unattributed = table.get((UNATTRIBUTED,), (0, 0, (), Decimal(0)))[3]
            assert unattributed == next(k.unattributed_usd for k in whole.keys if k.key == "tenant_id")

    shuffled = list(spans)
    random.Random(seed).shuffle(shuffled)
    again = audit(shuffled, SCHEMA)
    assert again.total_cost_usd == whole.total_cost_usd
    assert rows(again, ("tenant_id", "user.id"))[1] == rows(whole, ("tenant_id", "user.id"))[1]

    # split by trace into two "files", audit apart, merge
    r = random.Random(seed + 1)
    ids = sorted({s.trace_id for s in spans})
    left = {t for t in ids if r.random() < 0.5}
    a = audit([s for s in spans if s.trace_id in left], SCHEMA)
    b = audit([s for s in spans if s.trace_id not in left], SCHEMA)
    merged = merge(a, b)
    assert merged.total_cost_usd == whole.total_cost_usd
    assert merged.unpriced_calls == whole.unpriced_calls
    assert rows(merged, ("tenant_id",))[1] == rows(whole, ("tenant_id",))[1]
    assert [(k.key, k.unattributed_usd) for k in merged.keys] == [(k.key, k.unattributed_usd) for k in whole.keys]
