"""Property tests of the engine over generated trees and encodings (hypothesis)."""

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor.plan import Plan
from auditor.engine import audit, merge
from auditor.ingest import decode_bytes
from auditor.result_json import to_json
from builders import LLM, mk, sid, to_json_bytes, to_pb
from conftest import simple_schema

SCHEMA = simple_schema(keys=("tenant_id", "workflow_id"))
PLAN = Plan.fixed(SCHEMA)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def traces(draw, trace_no=1, min_size=1, max_size=25):
    n = draw(st.integers(min_size, max_size))
    parents = [None] + [draw(st.integers(0, i - 1)) for i in range(1, n)]
    spans = []
    for i in range(n):
        attrs = {}
        if draw(st.booleans()) or i == 0:
            attrs["tenant_id"] = draw(st.sampled_from(["acme", "acme", "acme", "globex"]))
        if draw(st.booleans()):
            attrs["workflow_id"] = "wf"
        if draw(st.integers(0, 3)) == 0:
            attrs.update(LLM)
            attrs["gen_ai.usage.input_tokens"] = draw(st.integers(0, 5000))
            if draw(st.booleans()):
                attrs["gen_ai.response.id"] = f"r{draw(st.integers(0, 6))}"
        service = draw(st.sampled_from(["a", "b"]))
        scope = draw(st.sampled_from(["x", "y"]))
        p = parents[i]
        spans.append(
            mk(trace_no, trace_no * 1000 + i + 1, None if p is None else trace_no * 1000 + p + 1,
               f"op{i % 4}", service, scope, attrs, start=i * 10, dur=5)
        )
    return spans


def view(result):
    doc = to_json(result)
    doc.pop("run")
    return doc


@st.composite
def trace_sets(draw):
    k = draw(st.integers(1, 5))
    return [draw(traces(trace_no=t + 1)) for t in range(k)]


@SETTINGS
@given(trace_sets(), st.randoms(use_true_random=False))
def test_span_order_never_changes_the_result(ts, rnd):
    spans = [s for t in ts for s in t]
    shuffled = list(spans)
    rnd.shuffle(shuffled)
    assert view(audit(spans, SCHEMA, plan=PLAN)) == view(audit(shuffled, SCHEMA, plan=PLAN))


@SETTINGS
@given(trace_sets(), st.randoms(use_true_random=False))
def test_splitting_across_files_and_encodings_never_changes_the_result(ts, rnd):
    spans = [s for t in ts for s in t]
    k = rnd.randint(1, 4)
    files = [[] for _ in range(k)]
    for s in spans:
        files[rnd.randrange(k)].append(s)
    decoded = []
    for i, f in enumerate(files):
        if not f:
            continue
        data = to_pb(f) if rnd.random() < 0.5 else to_json_bytes(f)
        got, rejected = decode_bytes(data, f"file{i}", PLAN.projection)
        assert rejected == []
        decoded.extend(got)
    assert view(audit(decoded, SCHEMA, plan=PLAN)) == view(audit(spans, SCHEMA, plan=PLAN))


@SETTINGS
@given(trace_sets(), st.randoms(use_true_random=False))
def test_merge_of_any_split_by_trace_equals_the_whole(ts, rnd):
    parts = [[], [], []]
    for t in ts:
        parts[rnd.randrange(3)].extend(t)
    whole = audit([s for t in ts for s in t], SCHEMA, plan=PLAN)
    results = [audit(p, SCHEMA, plan=PLAN) for p in parts]
    merged = merge(merge(results[0], results[1]), results[2])
    assert view(merged) == view(whole)
    # and the JSON round trip (auditor merge reads JSON) loses nothing
    assert json.loads(json.dumps(view(merged))) == view(whole)


@st.composite
def attributed_tree_and_victim(draw):
    """A trace where every span carries the key, and a node on the way to an LLM call."""
    n = draw(st.integers(2, 30))
    parents = [None] + [draw(st.integers(0, i - 1)) for i in range(1, n)]
    llm = {i for i in range(1, n) if draw(st.integers(0, 2)) == 0} or {n - 1}
    below = set()
    for i in llm:
        j = i
        while j is not None:
            below.add(j)
            j = parents[j]
    victim = draw(st.sampled_from(sorted(below - {0})))
    return parents, llm, victim


@SETTINGS
@given(attributed_tree_and_victim())
def test_removing_the_key_at_one_node_yields_exactly_one_leak_at_that_edge(case):
    parents, llm, victim = case
    spans = []
    for i, p in enumerate(parents):
        attrs = {} if i == victim else {"tenant_id": "acme", "workflow_id": "wf"}
        if i in llm:
            attrs.update(LLM)
        spans.append(mk(1, i + 1, None if p is None else p + 1, f"s{i}", attrs=attrs))
    r = audit(spans, SCHEMA, plan=PLAN)
    leaks = [(f.key, f.parent_span_id, f.span_id) for f in r.findings if f.code == "ATTR001"]
    assert sorted(leaks) == [
        ("tenant_id", sid(parents[victim] + 1), sid(victim + 1)),
        ("workflow_id", sid(parents[victim] + 1), sid(victim + 1)),
    ]
    others = {f.code for f in r.findings} - {"ATTR001", "ATTR004"}
    assert others == set()
    gaps = sorted(f.span_id for f in r.findings if f.code == "ATTR004")
    kids = sorted(sid(i + 1) for i, p in enumerate(parents) if p == victim)
    assert gaps == sorted(kids + kids)  # one per key
    affected = {f.llm_calls_affected for f in r.findings if f.code == "ATTR001"}
    assert affected == {((sid(victim + 1),) if victim in llm else ())}
