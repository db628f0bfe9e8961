"""Dialect detection and the key shapes presets read: flattened attributes, JSON blobs, Python
reprs, tag lists, captured headers (string arrays, JSON text, JSON objects), JSON-encoded values."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from auditor import dialects
from auditor.cli import cli
from auditor.engine import audit
from auditor.schema import compose_refs, load_schema
from auditor.values import make_resolver
from builders import LLM, Tree, mk, to_json_bytes


def span(scope="app", name="op", **attrs):
    return mk(1, 1, None, name=name, scope=scope, attrs=attrs)


@pytest.mark.parametrize(
    "s, found",
    [
        (span("opentelemetry.instrumentation.openai_v2"), ["otel"]),
        (span("com.anthropic.sdk.python"), ["otel"]),
        (span("opentelemetry.instrumentation.openai.v1"), ["openllmetry"]),
        (span("app", **{"traceloop.association.properties.tenant_id": "a"}), ["openllmetry"]),
        (span("openinference.instrumentation.langchain"), ["openinference"]),
        (span("app", **{"openinference.span.kind": "LLM"}), ["openinference"]),
        (span("langfuse-sdk"), ["langfuse"]),
        (span("traceai_openai"), ["traceai"]),
        (span("app", **{"gen_ai.span.kind": "LLM"}), ["traceai"]),
        (span("app", name="Received Proxy Server Request"), ["litellm"]),
        (span("app", **{"metadata.requester_metadata": "{}"}), ["litellm"]),
        (span("app", **{"http.request.header.x-portkey-metadata": ("{}",)}), ["portkey"]),
        (span("app", **{"http.request.header.helicone-user-id": ("u",)}), ["helicone"]),
        (span("kong-internal"), ["kong"]),
        (span("app", **{"http.request.header.x-tenant-id": ("acme",)}), ["diy-proxy"]),
        # Not dialects: the OpenAI instrumentation of OpenLLMetry is not the official openai_v2
        # one (a scope prefix must end at a separator), and plain semconv attributes need no preset.
        (span("opentelemetry.instrumentation.openai_v2x"), []),
        (span("app", **LLM), []),
    ],
)
def test_detect(s, found):
    assert list(dialects.detect([s])) == found


def test_refs_follow_preset_order_not_discovery_order():
    assert dialects.refs(["litellm", "openinference"]) == ["default", "preset:openinference", "preset:litellm"]
    assert dialects.all_refs() == ["default"] + [f"preset:{n}" for n in dialects.NAMES]


def test_detection_projection_keeps_what_detection_reads():
    p = dialects.projection()
    for name in ("traceloop.association.properties.x", "openinference.span.kind", "langfuse.trace.name",
                 "http.request.header.helicone-property-tenant", "gen_ai.span.kind", "kong.consumer"):
        assert p.wants(name)
    assert not p.wants("gen_ai.input.messages")


ALL = compose_refs(dialects.all_refs())


def resolve(attrs, key="tenant_id", schema=ALL):
    return make_resolver(schema.key(key))(attrs, {})


@pytest.mark.parametrize(
    "attrs, value",
    [
        ({"metadata": json.dumps({"tenant_id": "acme"})}, "acme"),  # OpenInference / traceAI
        ({"metadata.tenant_id": "acme"}, "acme"),  # flattened (gateways)
        ({"metadata.requester_metadata": "{'tenant_id': 'acme', 'n': 1}"}, "acme"),  # LiteLLM repr
        ({"metadata.spend_logs_metadata": '{"tenant_id": "acme"}'}, "acme"),  # LiteLLM JSON
        ({"metadata.tags": "['team:x', 'tenant:acme']"}, "acme"),  # LiteLLM tags as repr list
        ({"tag.tags": ("tier:gold", "tenant:acme")}, "acme"),  # OpenInference tags
        ({"tag.tags": '["tenant:acme"]'}, "acme"),  # the same from Jaeger / Zipkin
        ({"langfuse.trace.metadata.tenant_id": '"acme"'}, "acme"),  # Langfuse JSON-encodes values
        ({"langfuse.trace.tags": ("tenant:acme",)}, "acme"),
        ({"traceloop.association.properties.customer_id": "acme"}, "acme"),
        ({"http.request.header.x-portkey-metadata": ('{"tenant_id": "acme", "_user": "u"}',)}, "acme"),
        ({"http.request.header.helicone-property-tenant": ("acme",)}, "acme"),
        ({"http.request.header.x-tenant-id": '["acme"]'}, "acme"),  # header array as JSON text
        ({"portkey.metadata": '{"tenant_id": "acme"}'}, "acme"),
        ({"tenant_id": '"acme'}, '"acme'),  # not JSON: kept as written
        ({"metadata.requester_metadata": "{'tenant_id': __import__('os').getcwd()}"}, None),
        ({"tag.tags": ("tier:gold",)}, None),
        ({"metadata": "not json"}, None),
    ],
)
def test_tenant_sources_across_dialects(attrs, value):
    assert resolve(attrs) == value


def test_user_and_team_dimensions():
    assert resolve({"http.request.header.x-portkey-metadata": ('{"_user": "u-9"}',)}, "user_id") == "u-9"
    assert resolve({"metadata.user_api_key_team_id": "team-billing"}, "team_id") == "team-billing"
    # Langfuse's own resolution order: langfuse.user.id before user.id.
    assert resolve({"langfuse.user.id": "u-1", "user.id": "u-2"}, "user_id", load_schema("preset:langfuse")) == "u-1"


def test_json_metadata_parent_and_flattened_child_are_one_key():
    """An OpenInference app mints tenant_id in the `metadata` JSON; the gateway below writes
    metadata.tenant_id: no leak, no mismatch. A different value is a mismatch (ATTR003)."""
    schema = load_schema("preset:openinference")

    def tree(child_value):
        return Tree("chain", {"metadata": json.dumps({"tenant_id": "acme", "workflow_id": "w"})}, [
            Tree("POST /chat", {"metadata.tenant_id": child_value, "metadata.workflow_id": "w"}, [
                Tree("chat", {**LLM, "metadata.tenant_id": child_value, "metadata.workflow_id": "w"}, service="gw", scope="litellm"),
            ], service="gw", scope="litellm"),
        ], scope="openinference.instrumentation.langchain")

    same = audit(tree("acme").spans(), schema)
    assert [f.code for f in same.findings if f.code.startswith("ATTR")] == []
    bleed = audit(tree("globex").spans(), schema)
    assert [(f.code, f.key, f.parent_value, f.child_value) for f in bleed.findings if f.code.startswith("ATTR")] == [
        ("ATTR003", "tenant_id", "acme", "globex")
    ]


def test_check_without_schema_says_nothing_when_no_dialect_is_found(tmp_path):
    f = tmp_path / "t.json"
    f.write_bytes(to_json_bytes(Tree("POST /x", {"tenant_id": "a", "workflow_id": "w"}, [Tree("chat", {**LLM, "tenant_id": "a", "workflow_id": "w"})]).spans()))
    res = CliRunner().invoke(cli, ["check", "--format", "json", str(f)])
    assert res.exit_code == 0 and res.stderr == ""
    assert json.loads(res.stdout)["run"]["schema"] == "default"


def test_stream_mode_and_stdin_detect_per_trace_like_a_whole_file():
    """Detection is per trace, so --stream and stdin need no second pass and agree with a file."""
    sample = "sample_traces/dialects/litellm.otlp.json"
    said = "auditor: dialects detected: litellm (3 traces); each trace is read by the default schema plus its dialects' presets"
    whole = CliRunner().invoke(cli, ["check", "--format", "json", sample])
    res = CliRunner().invoke(cli, ["check", "--stream", "--format", "json", sample])
    assert res.stderr.startswith(said)
    assert json.loads(res.stdout)["summary"]["keys"]["tenant_id"]["llm_calls_missing"] == 1
    with open(sample, "rb") as fh:
        piped = CliRunner().invoke(cli, ["check", "--stream", "--format", "json", "-"], input=fh.read())
    assert piped.stderr.startswith(said)
    for r in (res, piped):
        got, want = json.loads(r.stdout), json.loads(whole.stdout)
        got.pop("run"), want.pop("run")
        assert got == want
