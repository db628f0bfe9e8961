"""GENAI001-004 from schemas/genai-semconv.yaml: exact findings per span."""

from __future__ import annotations

from builders import mk
from conftest import run

from auditor.schema import compile_schema


def schema(dialects=None, severity=None):
    doc = {
        "version": 1,
        "llm_calls": [{"attribute": "gen_ai.operation.name", "in": ["chat"]}, {"attribute": "gen_ai.system", "unless": "gen_ai.operation.name"}],
        "keys": {},
        "genai": {"enabled": True},
    }
    if dialects:
        doc["dialects"] = dialects
    if severity:
        doc["severity"] = severity
    return compile_schema(doc, origin="t")


CLEAN = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.request.temperature": 1,
    "gen_ai.response.finish_reasons": ["stop"],
    "gen_ai.usage.input_tokens": 100,
    "gen_ai.usage.cache_read.input_tokens": 20,
    "gen_ai.usage.cache_creation.input_tokens": 10,
    "gen_ai.usage.cache_write.input_tokens": 10,
    "gen_ai.usage.output_tokens": 30,
    "gen_ai.usage.reasoning.output_tokens": 12,
    "server.address": "api.openai.com",
    "server.port": 443,
}


def genai(attrs, sch=None, scope="app"):
    res = run([mk(1, 1, None, "chat gpt-4o", scope=scope, attrs=attrs)], sch or schema())
    return sorted((f.code, f.message) for f in res.findings if f.code.startswith("GENAI"))


def test_a_conforming_span_has_no_findings_and_nothing_is_deprecated_for_moving():
    assert genai(CLEAN) == []


def test_required_and_conditionally_required():
    attrs = {k: v for k, v in CLEAN.items() if k not in ("gen_ai.provider.name", "server.port")}
    assert genai(attrs) == [
        ("GENAI001", "required attribute gen_ai.provider.name is missing on 'chat gpt-4o' (operation chat; semconv 1.41.0 + semantic-conventions-genai (2026-05))"),
        ("GENAI001", "required attribute server.port is missing on 'chat gpt-4o' (operation chat; semconv 1.41.0 + semantic-conventions-genai (2026-05))"),
    ]


def test_non_llm_gen_ai_spans_are_checked_too():
    res = run([mk(1, 1, None, "execute_tool search", attrs={"gen_ai.operation.name": "execute_tool"})], schema())
    assert [(f.code, f.message.split(" is missing")[0]) for f in res.findings] == [("GENAI001", "required attribute gen_ai.tool.name")]


def test_renamed_names_say_the_new_one_and_are_not_also_missing():
    attrs = {k: v for k, v in CLEAN.items() if k != "gen_ai.provider.name"} | {"gen_ai.system": "openai"}
    assert genai(attrs) == [("GENAI002", "gen_ai.system was renamed to gen_ai.provider.name (semconv 1.37.0); write gen_ai.provider.name")]


def test_removed_names_and_renamed_values():
    attrs = CLEAN | {"gen_ai.prompt": "hi", "gen_ai.provider.name": "az.ai.inference"}
    assert genai(attrs) == [
        ("GENAI002", "gen_ai.prompt was removed (semconv 1.28.0) with no replacement: record content as gen_ai.input.messages (opt-in) or an event"),
        ("GENAI002", "gen_ai.provider.name value 'az.ai.inference' was renamed to 'azure.ai.inference'"),
    ]


def test_wrong_types():
    attrs = CLEAN | {"gen_ai.usage.input_tokens": "100", "gen_ai.response.finish_reasons": "stop", "gen_ai.request.temperature": True}
    assert genai(attrs) == [
        ("GENAI003", "gen_ai.request.temperature should be double, got boolean True"),
        ("GENAI003", "gen_ai.response.finish_reasons should be string[], got string 'stop'"),
        ("GENAI003", "gen_ai.usage.input_tokens should be int, got string '100'"),
    ]


def test_impossible_token_counts():
    attrs = CLEAN | {"gen_ai.usage.output_tokens": 10, "gen_ai.usage.cache_read.input_tokens": -5}
    assert genai(attrs) == [
        ("GENAI004", "cache read tokens are negative (-5): the call is counted as unpriced; fix the instrumentation that wrote it"),
        ("GENAI004", "reasoning tokens (12) exceed output tokens (10); reasoning is part of output"),
    ]


def test_cache_above_input_only_impossible_where_including_is_declared():
    attrs = CLEAN | {"gen_ai.usage.input_tokens": 5, "gen_ai.usage.cache_read.input_tokens": 400, "gen_ai.usage.cache_creation.input_tokens": 0, "gen_ai.usage.cache_write.input_tokens": 0}
    assert genai(attrs) == []  # undeclared: the excluding convention, priced so
    declared = schema(dialects={"convention": {"opentelemetry.instrumentation.openai": "including"}})
    assert genai(attrs, declared, scope="opentelemetry.instrumentation.openai_v2") == [
        ("GENAI004", "cache tokens (400) exceed input tokens (5) although the dialect declares scope "
                     "'opentelemetry.instrumentation.openai' as including cache tokens; priced as excluding: check the instrumentation or the dialect"),
    ]


def test_severity_override_turns_a_code_off():
    attrs = {k: v for k, v in CLEAN.items() if k != "gen_ai.provider.name"}
    assert genai(attrs, schema(severity={"GENAI001": "off"})) == []


def _sev(attrs, sch=None):
    res = run([mk(1, 1, None, "chat gpt-4o", attrs=attrs)], sch or schema())
    return sorted((f.code, f.severity.value, f.message) for f in res.findings if f.code.startswith("GENAI"))


def test_old_name_next_to_the_new_one_is_a_true_note_not_write_the_new_one():
    # pydantic-ai writes gen_ai.system and gen_ai.provider.name on the same span.
    assert _sev(CLEAN | {"gen_ai.system": "openai"}) == [
        ("GENAI002", "note", "gen_ai.system (renamed to gen_ai.provider.name in semconv 1.37.0) is written next to "
                             "gen_ai.provider.name; gen_ai.provider.name is already set, so gen_ai.system is redundant: drop it once nothing reads it"),
    ]
    assert _sev(CLEAN | {"gen_ai.system": "azure.ai.openai"})[0][2].startswith(
        "gen_ai.system (renamed to gen_ai.provider.name in semconv 1.37.0) is written next to gen_ai.provider.name "
        "(they differ: gen_ai.system='azure.ai.openai', gen_ai.provider.name='openai');"
    )
    # Alone, the old name still says to write the new one; the schema's severity for the code
    # applies to both messages (one policy per code).
    alone = {k: v for k, v in CLEAN.items() if k != "gen_ai.provider.name"} | {"gen_ai.system": "openai"}
    strict = schema(severity={"GENAI002": "error"})
    assert [(c, s, m.endswith("write gen_ai.provider.name")) for c, s, m in _sev(alone, strict)] == [("GENAI002", "error", True)]
    assert [(c, s) for c, s, _ in _sev(CLEAN | {"gen_ai.system": "openai"}, strict)] == [("GENAI002", "error")]
    assert _sev(CLEAN | {"gen_ai.system": "openai"}, schema(severity={"GENAI002": "off"})) == []


def _pinned(version):
    doc = {
        "version": 1,
        "llm_calls": [{"attribute": "gen_ai.operation.name", "in": ["chat"]}],
        "keys": {},
        "genai": {"enabled": True, "semconv": version},
    }
    return compile_schema(doc, origin="t")


def test_a_schema_pins_the_semconv_version_it_checks_against():
    """genai-0.1.0 is what open-telemetry/semantic-conventions-genai's migration guide lists
    since v1.41.0: top_k an int (#217), cache_creation -> cache_write (#440), no provider on the
    invoke_agent internal span (#289); and no workflow rename (the repository has none)."""
    old_cache = {k: v for k, v in CLEAN.items() if k != "gen_ai.usage.cache_write.input_tokens"}
    attrs = old_cache | {"gen_ai.request.top_k": 40.0, "gen_ai.workflow.name": "travel",
                         "gen_ai.usage.cache_creation.input_tokens": 10}
    assert genai(attrs) == []  # the base (semconv 1.41): top_k a double, cache_creation current
    assert genai(attrs, _pinned("genai-0.1.0")) == [
        ("GENAI002", "gen_ai.usage.cache_creation.input_tokens was renamed to gen_ai.usage.cache_write.input_tokens "
                     "(semconv semantic-conventions-genai (#440)); write gen_ai.usage.cache_write.input_tokens"),
        ("GENAI003", "gen_ai.request.top_k should be int, got double 40.0"),
    ]
    current = {k: v for k, v in CLEAN.items() if k != "gen_ai.usage.cache_creation.input_tokens"}
    assert genai(current | {"gen_ai.request.top_k": 40}, _pinned("v0.1.0")) == []
    missing = {k: v for k, v in CLEAN.items() if k != "gen_ai.provider.name"}
    assert genai(missing, _pinned("v0.1.0"))[0][1].endswith(
        "(operation chat; semconv semantic-conventions-genai v0.1.0 (built on semconv v1.45.0))")
    assert genai(missing, _pinned("1.41.0"))[0][1].endswith("(operation chat; semconv 1.41.0 + semantic-conventions-genai (2026-05))")
    agent = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner"}
    assert [c for c, _ in genai(agent, _pinned("v0.1.0"))] == []
    assert [c for c, _ in genai(agent, _pinned("1.41.0"))] == ["GENAI001"]


def test_an_unknown_semconv_version_names_the_known_ones():
    import pytest

    from auditor.errors import SchemaError
    from auditor.rules.genai import GenAiRules

    with pytest.raises(SchemaError, match=r"no gen_ai semconv version 'v9' \(known: semconv-1.41.0, genai-0.1.0\)"):
        GenAiRules.load("v9")
