"""What agent frameworks' own OpenTelemetry output revealed (Strands Agents, Microsoft Agent
Framework, Google ADK), each fixed with a test that failed before."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from click.testing import CliRunner

from auditor import dialects
from auditor.cli import cli
from auditor.engine import audit
from auditor.model import SPAN_KIND_SERVER
from auditor.schema import compose_refs, load_schema
from builders import LLM, Tree, mk, to_json_bytes

# -- what the samples revealed, each fixed with a test that failed before ----------------------


def _agent_in_a_thread(serving: bool):
    """A request (or a job) in one trace; an agent run in a thread pool without the context in
    another: the framework's invoke_agent span roots that trace, its chat call below it."""
    keys = {"tenant_id": "acme", "workflow_id": "w"}
    request = Tree("POST /digest" if serving else "nightly digest", keys, [Tree("chat", {**LLM, **keys}, scope="agent_framework")]).spans(trace=1)
    if serving:
        request[0] = replace(request[0], kind=SPAN_KIND_SERVER)
    agent = Tree("invoke_agent translator", {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "translator",
                                             "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 100},
                 [Tree("chat", LLM, scope="agent_framework")], scope="agent_framework").spans(trace=2, first_id=10)
    return request + agent


def test_a_call_below_an_agent_span_that_roots_its_trace_lost_the_request():
    """Agent Framework's translator run in a ThreadPoolExecutor: the trace starts at invoke_agent,
    not at the call, and TRACE004 used to look only at calls that are roots themselves."""
    result = audit(_agent_in_a_thread(serving=True), load_schema("default"))
    (f,) = [f for f in result.findings if f.code in ("TRACE004", "TRACE006")]
    assert (f.code, f.trace_id, f.span_id) == ("TRACE004", f"{2:032x}", f"{11:016x}")
    assert f.message.startswith("LLM call 'chat' in svc is in a trace of its own, rooted at the agent or tool span "
                                "'invoke_agent translator': the request's context never reached it.")
    assert [(g.code, g.key, g.span_id) for g in result.findings if g.code == "ATTR002"] == [
        ("ATTR002", "tenant_id", f"{11:016x}"), ("ATTR002", "workflow_id", f"{11:016x}")]
    # the agent's usage total is not a second call
    assert [c.name for c in result.calls] == ["chat", "chat"]


def test_the_same_in_a_service_that_never_serves_is_a_job_note():
    result = audit(_agent_in_a_thread(serving=False), load_schema("default"))
    (f,) = [f for f in result.findings if f.code in ("TRACE004", "TRACE006")]
    assert (f.code, f.span_id) == ("TRACE006", f"{11:016x}")
    assert "rooted at the agent or tool span 'invoke_agent translator', and svc serves no request" in f.message


def test_an_agent_root_survives_the_json_round_trip_and_merge(tmp_path):
    """The root agent span travels with the headless record, so merge says what check says."""
    f = tmp_path / "t.json"
    f.write_bytes(to_json_bytes(_agent_in_a_thread(serving=True)))
    whole = CliRunner().invoke(cli, ["check", "--format", "json", "-o", str(tmp_path / "w.json"), str(f)])
    assert whole.exit_code == 1, whole.output
    merged = CliRunner().invoke(cli, ["merge", "--format", "json", str(tmp_path / "w.json")])
    doc = json.loads(merged.stdout)
    assert [h["root"] for h in doc["headless"]] == ["invoke_agent translator"]
    assert [x["message"] for x in doc["findings"] if x["code"] == "TRACE004"] == [
        x["message"] for x in json.loads((tmp_path / "w.json").read_text())["findings"] if x["code"] == "TRACE004"]


def test_agent_usage_totals_are_not_llm_like_spans_the_schema_missed(tmp_path):
    """GENAI005 counts spans that look like LLM calls no selector picked. An invoke_agent span's
    token counts are its calls' total: counting it said 2 where only 1 call was missed."""
    schema = tmp_path / "s.yaml"
    schema.write_text("version: 1\nllm_calls:\n  - attribute: llm.request.type\n"
                      "keys:\n  tenant_id:\n    sources:\n      - attribute: tenant_id\n")
    f = tmp_path / "t.json"
    f.write_bytes(to_json_bytes(_agent_in_a_thread(serving=True)[2:]))
    res = CliRunner().invoke(cli, ["check", "-s", str(schema), "--format", "json", str(f)])
    (g,) = [x for x in json.loads(res.stdout)["findings"] if x["code"] == "GENAI005"]
    assert g["message"].startswith("1 span(s) look like LLM calls")


@pytest.mark.parametrize(
    "scope, attrs, found",
    [
        ("strands.telemetry.tracer", {}, ["strands"]),
        # gen_ai.usage.prompt_tokens is semconv's own name before 1.27 (Strands still writes it):
        # no mark of OpenLLMetry, whose scopes and traceloop.* names still are.
        ("strands.telemetry.tracer", {"gen_ai.usage.prompt_tokens": 10}, ["strands"]),
        ("app", {"gen_ai.usage.prompt_tokens": 10}, []),
        ("opentelemetry.instrumentation.openai.v1", {"gen_ai.usage.prompt_tokens": 10}, ["openllmetry"]),
        ("gcp.vertex.agent", {}, []),  # ADK: plain semconv
        ("agent_framework", {}, []),  # Agent Framework: plain semconv
    ],
)
def test_detect_strands(scope, attrs, found):
    assert list(dialects.detect([mk(1, 1, None, scope=scope, attrs=attrs)])) == found


STRANDS_CLAUDE = {
    "gen_ai.operation.name": "chat", "gen_ai.system": "strands-agents", "gen_ai.request.model": "claude-haiku-4-5",
    # Strands adds Anthropic's cache counts back into input: 800 uncached + 4000 read + 1200 written.
    "gen_ai.usage.prompt_tokens": 6000, "gen_ai.usage.input_tokens": 6000, "gen_ai.usage.completion_tokens": 400,
    "gen_ai.usage.output_tokens": 400, "gen_ai.usage.total_tokens": 6400,
    "gen_ai.usage.cache_read.input_tokens": 4000, "gen_ai.usage.cache_creation.input_tokens": 1200,
    "tenant_id": "acme", "workflow_id": "w",
}


def test_a_strands_claude_call_is_read_as_including_cache_tokens(tmp_path):
    """Strands writes input_tokens with the cache counts included for every provider; a Claude
    model alone made its calls "ambiguous" (COST002) and the preset had to say which it is."""
    f = tmp_path / "t.json"
    f.write_bytes(to_json_bytes([mk(1, 1, None, "chat", scope="strands.telemetry.tracer", attrs=STRANDS_CLAUDE)]))
    res = CliRunner().invoke(cli, ["check", "--format", "json", str(f)])
    doc = json.loads(res.stdout)
    assert doc["summary"]["dialects"] == {"strands": 1}
    (call,) = doc["calls"]
    assert (call["usage"]["convention"], call["usage"]["basis"], call["usage"]["ambiguous"]) == (
        "including", "dialect: scope 'strands.telemetry' is including", False)
    assert call["cost_usd"] == "0.00470000"  # 800 x $1 + 4000 x $0.10 + 1200 x $1.25 + 400 x $5 per MTok
    assert "COST002" not in doc["summary"]["findings"]
    assert res.exit_code == 0


def test_the_strands_preset_reads_trace_attributes_and_sessions():
    schema = compose_refs(dialects.refs(["strands"]))
    attrs = {**STRANDS_CLAUDE, "session.id": "T-88", "user.id": "u-1"}
    result = audit([mk(1, 1, None, "chat", scope="strands.telemetry.tracer", attrs=attrs)], schema)
    (call,) = result.parts.calls
    assert dict(call.values) == {"tenant_id": "acme", "workflow_id": "w", "user_id": "u-1", "session_id": "T-88"}
