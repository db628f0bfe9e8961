"""LiteLLM writes request metadata as Python repr text (str(dict)). We read it with a literal
parser behind three gates and never evaluate it: calls, names, operators, comments and deep
nesting are refused, and refusing costs nothing (nothing runs, no exception escapes)."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditor.engine import audit
from auditor.pyrepr import MAX_REPR_CHARS, parse_pyrepr
from auditor.schema import load_schema
from builders import LLM, Tree

LITELLM = load_schema("preset:litellm")


def test_reads_tenant_id_from_requester_metadata_repr():
    text = str({"tenant_id": "acme", "workflow_id": "invoice_summary", "tags": ["a", "b"], "retries": 2, "opt": None, "x": True})
    assert text.startswith("{'tenant_id': 'acme'")
    assert parse_pyrepr(text)["tenant_id"] == "acme"
    trace = Tree("Received Proxy Server Request", {**LLM, "metadata.requester_metadata": text}, scope="litellm")
    result = audit(trace.spans(), LITELLM)
    (call,) = result.calls
    assert (call.values["tenant_id"], call.values["workflow_id"]) == ("acme", "invoice_summary")
    assert [f.code for f in result.findings if f.code.startswith("ATTR")] == []


HOSTILE = [
    "{'tenant_id': __import__('os').system('touch {marker}')}",
    "{'tenant_id': open('{marker}', 'w').write('x')}",
    "{'tenant_id': (lambda: __import__('os').system('touch {marker}'))()}",
    "{'tenant_id': [x for x in ().__class__.__base__.__subclasses__()]}",
    "{'tenant_id': 'a' * 10**9}",
    "{'tenant_id': 9**9**9}",
    "{'tenant_id': globals()}",
    "{'tenant_id': tenant}",
    "{'tenant_id': f'{{open(\"{marker}\", \"w\")}}'}",
    "{'a': " + "[" * 200 + "]" * 200 + "}",
    "{'a': " + "{'b': " * 50 + "1" + "}" * 50 + "}",
    "{'a': # '\n" + "[" * 5000 + "]" * 5000 + " # '\n}",  # brackets hidden from the scan by a comment
    "{'a': " + "-" * 100_000 + "1}",
    "{'a': 1" + ", 'b': 2" * 20_000 + "}",
    "{'tenant_id': 'acme'",
]


@pytest.mark.parametrize("template", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_reprs_are_refused_without_executing_anything(template, tmp_path):
    marker = tmp_path / "executed"
    text = template.replace("{marker}", str(marker))
    t0 = time.perf_counter()
    assert parse_pyrepr(text) is None
    assert time.perf_counter() - t0 < 2.0  # refused cheaply, not after evaluating
    assert not marker.exists()


def test_a_refused_repr_is_just_an_absent_key():
    trace = Tree("Received Proxy Server Request", {**LLM, "metadata.requester_metadata": "{'tenant_id': __import__('os').getcwd()}"}, scope="litellm")
    result = audit(trace.spans(), LITELLM)
    assert [f.code for f in result.findings if f.code.startswith("ATTR")] == ["ATTR002", "ATTR002"]
    assert result.calls[0].values["tenant_id"] is None


def test_size_limit():
    ok = "{'tenant_id': 'acme', 'pad': '" + "x" * (MAX_REPR_CHARS - 40) + "'}"
    assert len(ok) <= MAX_REPR_CHARS and parse_pyrepr(ok)["tenant_id"] == "acme"
    assert parse_pyrepr("{'tenant_id': 'acme', 'pad': '" + "x" * MAX_REPR_CHARS + "'}") is None


literals = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.text(max_size=10), literals, max_size=6))
def test_any_repr_of_a_plain_dict_reads_back(d):
    assert parse_pyrepr(repr(d)) == d


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_never_raises(text):
    out = parse_pyrepr("{" + text)
    assert out is None or isinstance(out, dict)
