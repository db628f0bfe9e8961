"""The per-span fast paths (issue 18) answer exactly what the general code answers.

Each shortcut reads the common case inline (a plain string attribute, a span shape seen
before, a span without retired gen_ai names); these pin it to the slow path on the cases
where the two could part: quoted, empty and non-string values, every AnyValue kind, bad
values deep in a document, a bad semconv table.
"""

from __future__ import annotations

import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from auditor import dialects
from auditor.errors import SchemaError
from auditor.ingest import otlp_json, otlp_proto
from auditor.ingest.otlp_values import BadJson, any_value
from auditor.ingest.interning import canonical
from auditor.model import Span
from auditor.rules.genai import GenAiRules, _from_text
from auditor.schema import KeySpec, Source
from auditor.values import make_resolver, make_values

TENANT = KeySpec("tenant_id", (Source("attribute", "tenant_id"), Source("attribute", "tenant.id"), Source("resource", "tenant_id")))
TAGGED = KeySpec("team", (Source("tags", "tags", prefix="team:"), Source("attribute", "team")))


@pytest.mark.parametrize("attrs", [
    {"tenant_id": "acme"},
    {"tenant_id": '"acme"'},  # JSON-quoted (Langfuse): unquoted by the resolver
    {"tenant_id": '"'},
    {"tenant_id": "", "tenant.id": "beta"},  # empty counts as absent
    {"tenant_id": 7},
    {"tenant_id": ("a",)},
    {"tenant_id": None, "tenant.id": "beta"},
    {"tenant.id": "beta"},
    {"tags": ("team:red",), "tenant_id": "acme"},
    {"team": "blue"},
    {},
])
def test_values_read_inline_equal_the_resolvers(attrs):
    resource = {"tenant_id": "from-resource"}
    keys = (TENANT, TAGGED)
    assert make_values(keys)(attrs, resource) == tuple(make_resolver(k)(attrs, resource) for k in keys)


def _kv(key: str, **value) -> KeyValue:
    kv = KeyValue(key=key)
    if "array" in value:
        kv.value.array_value.values.extend(AnyValue(string_value=x) for x in value.pop("array"))
    for name, v in value.items():
        setattr(kv.value, name, v)
    return kv


def test_protobuf_values_read_inline_equal_any_value():
    kvs = [
        _kv("s", string_value="acme"), _kv("empty", string_value=""), _kv("long", string_value="x" * 80),
        _kv("i", int_value=-3), _kv("zero", int_value=0), _kv("b", bool_value=False), _kv("d", double_value=0.5),
        _kv("arr", array=["a", ""]), _kv("bytes", bytes_value=b"\x00"), KeyValue(key="unset"), _kv("skipped", int_value=1),
    ]
    names = frozenset(kv.key for kv in kvs) - {"skipped"}
    canon = canonical(names)
    got = otlp_proto._projected(kvs, canon.get, canon, ())
    assert got == {kv.key: any_value(kv.value) for kv in kvs if kv.key in names}
    assert [type(v) for v in got.values()] == [str, str, str, int, int, bool, float, tuple, bytes, type(None)]
    assert otlp_proto._projected(kvs, canon.get, canon, ("skip",))["skipped"] == 1


def test_json_values_read_inline_keep_the_full_path_of_a_bad_value():
    kvs = [
        {"key": "s", "value": {"stringValue": "acme"}},
        {"key": "n", "value": {"arrayValue": {"values": [{"stringValue": "a"}, {"intValue": "x1"}]}}},
    ]
    with pytest.raises(BadJson) as bad:
        otlp_json.attributes(kvs, "$.resourceSpans[0].scopeSpans[0].spans[3].attributes", None)
    assert bad.value.path == "$.resourceSpans[0].scopeSpans[0].spans[3].attributes[1].value.arrayValue.values[1].intValue"
    assert otlp_json.attributes(kvs[:1] + [{"key": "e", "value": {}}, {"key": "q", "value": {"stringValue": ""}}], "$", None) == {
        "s": "acme", "e": None, "q": ""}
    with pytest.raises(BadJson) as bad:
        otlp_json.attributes([{"key": "v", "value": ["not", "an", "object"]}], "$.a", None)
    assert (bad.value.path, bad.value.expected) == ("$.a[0].value", "expected an AnyValue object, got list")


def test_dialects_of_a_span_shape_seen_before_are_counted_again():
    def span(sid: str, scope: str, attrs: dict) -> Span:
        return Span("t" * 32, sid, "", "chat", "svc", scope, 3, 0, 1, 0, attrs, {})

    spans = [span("a" * 16, "openinference.instrumentation.openai", {"openinference.span.kind": "LLM"}),
             span("b" * 16, "openinference.instrumentation.openai", {"openinference.span.kind": "LLM"}),
             span("c" * 16, "my.app", {"tenant_id": "x"})]
    first = dialects.detect(spans)
    assert first == dialects.detect(spans) == {"openinference": 2}
    assert dialects.detect(spans[2:]) == {}


def test_retired_names_are_the_renamed_and_removed_ones_of_the_table():
    rules = GenAiRules.load()
    assert rules.retired == frozenset(rules.renamed) | frozenset(rules.removed)
    assert "gen_ai.system" in rules.retired


def test_a_bad_semconv_table_names_pyyaml_s_error_line():
    with pytest.raises(SchemaError) as e:
        _from_text("operations: [unclosed\n", "table.yaml", None)
    assert str(e.value) == "table.yaml: invalid YAML: while parsing a flow sequence"
