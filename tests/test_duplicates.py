"""Duplicate-call clustering: the O(n log n) sweep against the quadratic one it replaced.

``reference_clusters`` below is the previous implementation from ``auditor/rollup.py``,
kept verbatim as the oracle: the new sweep must give the same clusters, in the same order,
for any calls (same instants, one token shape for everything, missing models, ends before
starts, shared response ids, repeated refs).
"""

from __future__ import annotations

import random
from collections import defaultdict
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor import spill
from auditor.duplicates import duplicate_clusters, models_compatible
from auditor.model import LlmCall, Usage

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------- the oracle (previous code)


class _UnionFind:
    def __init__(self):
        self.p: dict = {}

    def find(self, x):
        p = self.p
        root = x
        while p.get(root, root) != root:
            root = p[root]
        while p.get(x, x) != root:
            p[x], x = root, p[x]
        return root

    def union(self, a, b):
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            lo, hi = (ra, rb) if ra < rb else (rb, ra)
            self.p[hi] = lo


def _models_compatible(a, b) -> bool:
    if not a or not b:
        return True
    a, b = a.lower(), b.lower()
    return a == b or a.startswith(b) or b.startswith(a) or a.split("/")[-1] == b.split("/")[-1]


def reference_clusters(calls) -> list[list[LlmCall]]:
    calls = list(calls)
    uf = _UnionFind()
    by_rid: dict[str, list[LlmCall]] = defaultdict(list)
    by_shape: dict[tuple, list[LlmCall]] = defaultdict(list)
    for c in calls:
        if c.response_id:
            by_rid[c.response_id].append(c)
        tin, out = c.usage.token_tuple()
        if tin or out:
            by_shape[("service", c.service, tin, out)].append(c)
            by_shape[("trace", c.trace_id, tin, out)].append(c)
    for group in by_rid.values():
        for c in group[1:]:
            uf.union(group[0].ref, c.ref)
    for group in by_shape.values():
        if len(group) < 2:
            continue
        group.sort(key=lambda c: (c.start_ns, c.ref))
        active: list[LlmCall] = []
        for c in group:
            active = [a for a in active if a.end_ns >= c.start_ns]
            for a in active:
                if a.scope == c.scope:
                    continue
                if a.response_id and c.response_id:
                    continue
                if not _models_compatible(a.model, c.model):
                    continue
                uf.union(a.ref, c.ref)
            active.append(c)
    clusters: dict = defaultdict(list)
    for c in calls:
        clusters[uf.find(c.ref)].append(c)
    return [sorted(v, key=lambda c: c.ref) for v in clusters.values() if len(v) > 1]


# ---------------------------------------------------------------- generators

MODELS = (None, "", "gpt-4o", "GPT-4o", "gpt-4o-2024-08-06", "openai/gpt-4o", "azure/GPT-4O", "gpt-4", "claude-sonnet-4-6", "claude")
SCOPES = (None, "", "openai", "langchain", "litellm", "gateway")
TOKENS = ((0, 0), (100, 20), (100, 20), (100, 21), (7, 0), (0, 5))


def _call(i, trace, service, scope, model, rid, tokens, start, dur, span=None) -> LlmCall:
    return LlmCall(
        trace_id=f"t{trace}",
        span_id=f"s{i if span is None else span:04d}",
        service=f"svc{service}",
        scope=scope,
        name="chat",
        start_ns=start,
        end_ns=start + dur,
        provider=None,
        model=model,
        response_id=None if rid is None else f"r{rid}",
        usage=Usage(input=tokens[0], output=tokens[1]),
        values={},
    )


@st.composite
def call_lists(draw, max_size=60):
    n = draw(st.integers(0, max_size))
    same_instant = draw(st.booleans())
    one_shape = draw(st.booleans())
    calls = []
    for i in range(n):
        calls.append(
            _call(
                i,
                trace=draw(st.integers(0, 3)),
                service=draw(st.integers(0, 2)),
                scope=draw(st.sampled_from(SCOPES)),
                model=draw(st.sampled_from(MODELS)),
                rid=draw(st.one_of(st.none(), st.integers(0, 6))),
                tokens=(100, 20) if one_shape else draw(st.sampled_from(TOKENS)),
                start=0 if same_instant else draw(st.integers(0, 40)),
                dur=draw(st.sampled_from((0, 1, 3, 10, 50, -2))),
                # now and then a ref seen twice (a shard merged twice)
                span=draw(st.one_of(st.none(), st.integers(0, 3))) if draw(st.integers(0, 9)) == 0 else None,
            )
        )
    return calls


def _ids(clusters):
    return [[(c.ref, c.scope, c.start_ns) for c in cl] for cl in clusters]


@SETTINGS
@given(call_lists(), st.randoms(use_true_random=False))
def test_same_clusters_as_the_quadratic_sweep(calls, rnd):
    assert _ids(duplicate_clusters(calls)) == _ids(reference_clusters(calls))
    rnd.shuffle(calls)
    assert _ids(duplicate_clusters(calls)) == _ids(reference_clusters(calls))


@SETTINGS
@given(call_lists(), st.sampled_from([1, 3, 50_000]))
def test_spilled_pairs_give_the_same_clusters(calls, run_rows):
    """``check --stream``: records in ref order, read twice; response ids and service-wide
    shapes sorted on disk in runs of ``run_rows`` rows (several runs merged), not held."""
    ordered = sorted(calls, key=lambda c: c.ref)
    with mock.patch.object(spill, "RUN_ROWS", run_rows), mock.patch.object(spill, "CHUNK", 2):
        got = duplicate_clusters(ordered, ordered=True, spill=True)
    assert _ids(got) == _ids(reference_clusters(ordered))


def _random_calls(r: random.Random, n: int) -> list[LlmCall]:
    starts = r.choice((1, 5, 40, 400))  # 1: everything at one instant
    scopes = SCOPES[: r.randint(1, len(SCOPES))]
    models = MODELS[: r.randint(1, len(MODELS))]
    identified = r.random()  # share of records with a response id
    return [
        _call(i, r.randrange(4), r.randrange(3), r.choice(scopes), r.choice(models),
              None if r.random() >= identified else r.randrange(n), r.choice(TOKENS[: r.randint(1, len(TOKENS))]),
              r.randrange(starts), r.choice((0, 1, 3, 10, 50, -2)))
        for i in range(n)
    ]


def test_same_clusters_as_the_quadratic_sweep_on_larger_random_sets():
    for seed in range(300):
        r = random.Random(seed)
        calls = _random_calls(r, r.choice((50, 200, 400)))
        expected = _ids(reference_clusters(calls))
        assert _ids(duplicate_clusters(calls)) == expected, seed
        if seed % 10 == 0:
            ordered = sorted(calls, key=lambda c: c.ref)
            with mock.patch.object(spill, "RUN_ROWS", 37):
                assert _ids(duplicate_clusters(ordered, ordered=True, spill=True)) == _ids(reference_clusters(ordered)), seed


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=12), st.text(max_size=12))
def test_models_compatible_is_the_old_relation(a, b):
    assert models_compatible(a, b) == _models_compatible(a, b)


def test_many_scopes_at_one_instant_form_one_cluster():
    calls = [_call(i, 0, 0, f"scope{i % 7}", "gpt-4o", None, (100, 20), 0, 5) for i in range(300)]
    got = duplicate_clusters(calls)
    assert _ids(got) == _ids(reference_clusters(calls))
    assert len(got) == 1 and len(got[0]) == 300


def test_one_scope_at_one_instant_is_never_folded():
    # two identical parallel calls from one instrumentation are two calls
    calls = [_call(i, i, 0, "openai", "gpt-4o", None, (100, 20), 0, 5) for i in range(300)]
    assert duplicate_clusters(calls) == []


def test_both_identified_only_the_id_decides():
    a = _call(1, 0, 0, "openai", "gpt-4o", 1, (100, 20), 0, 5)
    b = _call(2, 0, 0, "litellm", "gpt-4o", 2, (100, 20), 0, 5)
    c = _call(3, 0, 0, "gateway", "gpt-4o", 1, (9, 9), 100, 5)
    assert _ids(duplicate_clusters([a, b, c])) == [[(a.ref, "openai", 0), (c.ref, "gateway", 100)]]


def test_chain_through_a_third_record_joins_a_cluster():
    # a and c do not overlap; b overlaps both and has another scope
    a = _call(1, 0, 0, "openai", "gpt-4o", None, (100, 20), 0, 10)
    b = _call(2, 0, 0, "litellm", "gpt-4o", None, (100, 20), 5, 20)
    c = _call(3, 0, 0, "openai", "gpt-4o", None, (100, 20), 20, 5)
    assert len(duplicate_clusters([a, b, c])) == 1


def test_a_million_same_instant_shape_is_quick_enough_to_run_at_all():
    # not timed: a quadratic sweep would not finish 20k same-instant, same-shape calls in a test run
    calls = [_call(i, i % 50, i % 2, ("openai", "litellm", "gateway")[i % 3], "gpt-4o", None if i % 4 else i, (100, 20), 0, 5)
             for i in range(20_000)]
    got = duplicate_clusters(calls)
    assert sum(len(c) for c in got) == 20_000


def test_identified_records_joined_by_an_unidentified_one_keep_both_scopes_active():
    # a and b (both identified, so never joined to each other) are joined by c; c ends early,
    # then d (scope of a, unidentified) still overlaps b, which has another scope
    a = _call(1, 0, 0, "openai", "gpt-4o", 1, (100, 20), 0, 100)
    b = _call(2, 0, 0, "litellm", "gpt-4o", 2, (100, 20), 0, 90)
    c = _call(3, 0, 0, "gateway", "gpt-4o", None, (100, 20), 1, 1)
    d = _call(4, 0, 0, "openai", "gpt-4o", None, (100, 20), 50, 5)
    want = _ids(reference_clusters([a, b, c, d]))
    assert want == [[(a.ref, "openai", 0), (b.ref, "litellm", 0), (c.ref, "gateway", 1), (d.ref, "openai", 50)]]
    assert _ids(duplicate_clusters([a, b, c, d])) == want


# ---------------------------------------------------------------- raw payload records (issue 17)


def reference_clusters_with_raw(calls) -> list[list[LlmCall]]:
    """The quadratic oracle with the raw-payload rules: a raw record (LiteLLM's
    raw_gen_ai_request) is a recorder of its own even in its parent's scope, and its response id
    (the provider's) joins by id but never keeps the shape from deciding."""
    from auditor.rawpayload import SOURCE

    def raw(c):
        return c.usage.source == SOURCE

    calls = list(calls)
    uf = _UnionFind()
    by_rid: dict[str, list[LlmCall]] = defaultdict(list)
    by_shape: dict[tuple, list[LlmCall]] = defaultdict(list)
    for c in calls:
        if c.response_id:
            by_rid[c.response_id].append(c)
        tin, out = c.usage.token_tuple()
        if tin or out:
            by_shape[("service", c.service, tin, out)].append(c)
            by_shape[("trace", c.trace_id, tin, out)].append(c)
    for group in by_rid.values():
        for c in group[1:]:
            uf.union(group[0].ref, c.ref)
    for group in by_shape.values():
        group.sort(key=lambda c: (c.start_ns, c.ref))
        active: list[LlmCall] = []
        for c in group:
            active = [a for a in active if a.end_ns >= c.start_ns]
            for a in active:
                if (a.scope, raw(a)) == (c.scope, raw(c)):
                    continue
                if a.response_id and not raw(a) and c.response_id and not raw(c):
                    continue
                if not _models_compatible(a.model, c.model):
                    continue
                uf.union(a.ref, c.ref)
            active.append(c)
    clusters: dict = defaultdict(list)
    for c in calls:
        clusters[uf.find(c.ref)].append(c)
    return [sorted(v, key=lambda c: c.ref) for v in clusters.values() if len(v) > 1]


@given(call_lists(), st.randoms(use_true_random=False))
@SETTINGS
def test_raw_payload_records_cluster_like_the_quadratic_rule(calls, rnd):
    from dataclasses import replace

    from auditor.rawpayload import SOURCE

    calls = [replace(c, usage=replace(c.usage, source=SOURCE)) if rnd.random() < 0.4 else c for c in calls]
    assert _ids(duplicate_clusters(calls)) == _ids(reference_clusters_with_raw(calls))
