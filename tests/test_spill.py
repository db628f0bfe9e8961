"""Findings spilled to disk (``check --stream``) read back as the stable sort of every batch's
findings, and the view over them reads like the tuple the in-memory audit builds."""

from __future__ import annotations

from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditor import spill
from auditor.model import Finding, Severity
from auditor.spill import Spill, finding_view

# few distinct sort keys, so equal keys (kept in batch order) are common; the message tells
# equal-keyed findings apart
findings = st.builds(
    Finding,
    code=st.sampled_from(["ATTR001", "COST002"]),
    severity=st.sampled_from(list(Severity)),
    trace_id=st.sampled_from(["t1", "t2"]),
    span_id=st.sampled_from(["s1", "s2", "s3"]),
    message=st.text(max_size=5),
    key=st.sampled_from([None, "tenant_id"]),
)


def spilled(batches):
    w = Spill()
    for b in batches:
        w.add(b)
    return w.seal()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(findings, max_size=12), max_size=6), st.integers(1, 5))
def test_spilled_findings_read_back_as_the_stable_sort_of_the_batches(batches, chunk):
    with mock.patch.object(spill, "CHUNK", chunk):
        s = spilled(batches)
    everything = [f for b in batches for f in b]
    expected = sorted(everything, key=Finding.sort_key)
    assert list(s) == expected
    assert list(s) == expected  # read again: the same
    assert len(s) == len(everything)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(findings, max_size=12), max_size=4), st.lists(findings, max_size=6))
def test_the_view_judges_and_merges_like_the_sorted_tuple(batches, derived):
    def judge(f):  # drop notes, raise warnings: as a policy would
        if f.severity is Severity.NOTE:
            return None
        return Finding(f.code, Severity.ERROR, f.trace_id, f.span_id, f.message, f.key) if f.severity is Severity.WARNING else f

    with mock.patch.object(spill, "CHUNK", 3):
        s = spilled(batches)
    derived = tuple(sorted(derived, key=Finding.sort_key))
    kept = [g for g in map(judge, (f for b in batches for f in b)) if g is not None]
    expected = tuple(sorted(kept + list(derived), key=Finding.sort_key))
    view = finding_view(s, judge, derived)
    assert tuple(view) == expected
    assert view == expected and view == list(expected) and view == finding_view(s, judge, derived)
    assert len(view) == len(expected) and bool(view) == bool(expected)
    assert view[0:3] == expected[0:3] and view[1::2] == expected[1::2] and view[-2:] == expected[-2:]
    for i in (0, len(expected) - 1, -1):
        if expected:
            assert view[i] == expected[i]
    with pytest.raises(IndexError):
        view[len(expected)]


def test_nothing_spilled_is_an_empty_sequence_without_a_file():
    s = spilled([[], []])
    assert list(s) == [] and len(s) == 0
    assert list(finding_view(s, lambda f: f, ())) == []


def test_records_read_back_from_the_spill_equal_the_records_written(tmp_path):
    """Every record kind a spill holds, nested ones included (endpoint, boundary, mechanism,
    usage, Decimal cost), comes back equal, through the slots (``model.fast_pickle``)."""
    import pickle
    from decimal import Decimal

    from auditor.mechanism import Mechanism
    from auditor.model import Boundary, BoundaryClass, Endpoint, LlmCall, Usage

    a, b = Endpoint("gw", "litellm", "POST /chat"), Endpoint("api", "app", "handler")
    f = Finding("ATTR001", Severity.ERROR, "t" * 32, "s" * 16, "m", key="tenant_id", parent_span_id="p" * 16,
                boundary=Boundary(a, b, BoundaryClass.NETWORK), parent_value="acme", child_value=None,
                spans_affected=3, llm_calls_affected=("c1", "c2"), code_location=("app.py", 12, "run"),
                mechanism=Mechanism("thread-pool", "high", "ev", "patch", ("app.py", 3, None)))
    c = LlmCall("t" * 32, "c1", "api", "app", "chat", 1, 2, "openai", "gpt-4o", "r1",
                Usage(input=10, cache_read=5, output=3, convention="including", source="semconv"),
                {"tenant_id": None, "n": [1, 2.5]}, Decimal("0.00001200"), "note", "batch", Decimal("0.1"),
                (("web_search", 2),), "w")
    for rec in (f, c, a):
        back = pickle.loads(pickle.dumps(rec, protocol=pickle.HIGHEST_PROTOCOL))
        assert back == rec and type(back) is type(rec)
    assert pickle.loads(pickle.dumps(f)).severity is Severity.ERROR
    w = Spill()
    w.add([f, f])
    assert list(w.seal()) == [f, f]
