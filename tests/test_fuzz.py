"""Garbage, truncated, wrong-type and hostile inputs give exit 2 or findings: never a traceback, never a hang."""

import gzip
import json

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor.cli import cli
from builders import LLM, Tree, mk, to_json_bytes, to_length_prefixed, to_pb

SEED = Tree("root", {"tenant_id": "acme"}, [Tree("a", {}, [Tree("chat", LLM)])]).spans()
VALID = [to_pb(SEED), to_json_bytes(SEED), to_length_prefixed([SEED[:1], SEED[1:]]), gzip.compress(to_pb(SEED))]
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check_bytes(data: bytes):
    res = CliRunner().invoke(cli, ["check", "--format", "json", "-"], input=data)
    assert res.exit_code in (0, 1, 2), res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    if res.exit_code == 2:
        assert res.stderr.startswith("auditor: error: <stdin>") and res.stderr.count("\n") == 1, res.stderr
    return res


@FUZZ
@given(st.sampled_from(VALID), st.data())
def test_mutated_and_truncated_inputs(valid, data):
    b = bytearray(valid)
    for _ in range(data.draw(st.integers(0, 4))):
        i = data.draw(st.integers(0, len(b) - 1))
        b[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(b)))
    check_bytes(bytes(b[:cut]))


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(
        ["resourceSpans", "scopeSpans", "spans", "traceId", "spanId", "parentSpanId", "attributes", "key", "value",
         "stringValue", "intValue", "arrayValue", "kvlistValue", "values", "resource", "scope", "name", "kind",
         "startTimeUnixNano", "data", "x"]), inner, max_size=5),
    max_leaves=30,
)


@FUZZ
@given(JSONISH)
def test_wrong_type_json_documents(doc):
    check_bytes(json.dumps({"resourceSpans": [doc]} if not isinstance(doc, dict) else doc).encode())


def test_hostile_deep_nesting_and_huge_strings():
    check_bytes(b"[" * 200_000 + b"]" * 200_000)
    check_bytes(b'{"resourceSpans":' + b"[" * 50_000)
    deep = {"stringValue": "leaf"}
    for _ in range(200):
        deep = {"kvlistValue": {"values": [{"key": "k", "value": deep}]}}
    doc = json.loads(to_json_bytes(SEED))
    doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"].append({"key": "tenant_id", "value": deep})
    assert check_bytes(json.dumps(doc).encode()).exit_code in (1, 2)
    huge = [mk(1, 1, None, "x" * 1_000_000, attrs={"tenant_id": "t" * 2_000_000, **LLM})]
    assert check_bytes(to_pb(huge)).exit_code in (0, 1)


def test_cycles_only_trace_terminates():
    spans = [mk(1, i, (i % 50) + 1, "c", attrs=LLM) for i in range(1, 51)]  # one 50-cycle
    res = check_bytes(to_pb(spans))
    doc = json.loads(res.stdout)
    assert doc["summary"]["findings"]["TRACE003"] == 1
