"""Agent frameworks' own OpenTelemetry output: Strands Agents, Microsoft Agent Framework, Google ADK.

The samples (sample_traces/frameworks/, one generator each: sample_traces/generate_frameworks_*.py,
whose docstrings give the command and library versions) were made by the real libraries running
a real tool loop against the local fake provider. Every figure below was checked by hand from the
genai-prices 0.2.3 rates (USD per million tokens):

* gpt-4o-mini: input 0.15, cached input 0.075, output 0.60. OpenAI counts cached tokens inside
  the prompt, so a turn of (prompt, cached, completion) costs
  (prompt - cached) x 0.15 + cached x 0.075 + completion x 0.60.
* claude-haiku-4-5: input 1, cache read 0.10, cache write (5m) 1.25, output 5.

strands (9 calls):
  acme concierge (2400, 1024, 120) = 1376 x .15 + 1024 x .075 + 120 x .6 = 206.4 + 76.8 + 72 = $0.0003552
                 (3100, 2048, 90)  = 157.8 + 153.6 + 54 = $0.0003654
                 (3500, 2048, 60)  = 217.8 + 153.6 + 36 = $0.0004074
  acme writer    (1500, 0, 250)    = 225 + 150 = $0.000375 (attributed: trace_attributes forwarded)
  acme researcher, claude-haiku-4-5: input 800 + cache read 4000 + cache write 1200 (Strands writes
                 input_tokens 6000, cache included), output 400
                 = 800 x 1 + 4000 x .1 + 1200 x 1.25 + 400 x 5 = 800 + 400 + 1500 + 2000 = $0.0047 (lost; without
                 the strands preset "ambiguous", COST002)
  globex concierge (1800, 0, 70) = 270 + 42 = $0.000312; (2000, 1024, 80) = 146.4 + 76.8 + 48 = $0.0002712;
                 (2300, 1024, 40) = 191.4 + 76.8 + 24 = $0.0002922; writer $0.000375
  total $0.0074534, unattributed $0.0047 (the researcher).
agent-framework (8 calls):
  acme coordinator (3000, 2048, 150) = 142.8 + 153.6 + 90 = $0.0003864; (3600, 2048, 200) = 232.8 + 153.6 + 120
                 = $0.0005064
  analyst, claude-haiku-4-5, each tenant: Agent Framework writes Anthropic's own input_tokens 6000 (cache
                 excluded) beside cache read 4000 and write 1000, output 500
                 = 6000 x 1 + 4000 x .1 + 1000 x 1.25 + 500 x 5 = 6000 + 400 + 1250 + 2500 = $0.01015
                 (read as the conventions say, cache included, it was "ambiguous" and half that: $0.00515)
  globex coordinator (2800, 0, 140) = 420 + 84 = $0.000504; (3400, 2048, 120) = 202.8 + 153.6 + 72 = $0.0004284;
                 (3900, 2048, 180) = 277.8 + 153.6 + 108 = $0.0005394
  translator, in a thread pool (900, 0, 300) = 135 + 180 = $0.000315 (headless, never attributed)
  total $0.0229796, unattributed $0.000315.
adk (6 calls; adk-schema-v1, ADK's legacy span format, records each twice and gives the same figures):
  acme (/v2, baggage) planner (2600, 1024, 110) = 236.4 + 76.8 + 66 = $0.0003792; flights (1400, 0, 180)
                 = 210 + 108 = $0.000318; planner (3300, 2048, 240) = 187.8 + 153.6 + 144 = $0.0004854
  globex (/v1, server span only) planner (2200, 0, 100) = 330 + 60 = $0.00039; flights $0.000318;
                 planner (2900, 1024, 210) = 281.4 + 76.8 + 126 = $0.0004842
  total $0.0023748, unattributed $0.0011922 (globex's three calls).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor import dialects
from auditor.cli import cli
from auditor.engine import audit
from auditor.model import SPAN_KIND_SERVER
from auditor.schema import compose_refs, load_schema
from builders import LLM, Tree, mk, to_json_bytes

ROOT = Path(__file__).resolve().parent.parent
FRAMEWORKS = ROOT / "sample_traces" / "frameworks"

EXPECTED = {
    "strands": dict(
        detected={"strands": 2},
        llm_calls=9,
        records=9,
        calls=[
            ("1efdbd64e62c7e87", "claude-haiku-4-5", None, None, "0.00470000", False),
            ("392b684a8889065f", "gpt-4o-mini", "acme", "ticket_reply", "0.000355200", False),
            ("4213a08efada84b4", "gpt-4o-mini", "acme", "ticket_reply", "0.000375000", False),
            ("8366cf8d648eee8a", "gpt-4o-mini", "globex", "ticket_reply", "0.000271200", False),
            ("a4565c0e8f034e9c", "gpt-4o-mini", "globex", "ticket_reply", "0.000312000", False),
            ("a559de40ad26ab34", "gpt-4o-mini", "globex", "ticket_reply", "0.000375000", False),
            ("b9964bbafb504d5a", "gpt-4o-mini", "globex", "ticket_reply", "0.000292200", False),
            ("d0d259e71d79f72a", "gpt-4o-mini", "acme", "ticket_reply", "0.000407400", False),
            ("fec7747260d62fd9", "gpt-4o-mini", "acme", "ticket_reply", "0.000365400", False),
        ],
        findings=[
            ("ATTR001", "tenant_id", "49a43da60ac14cf1",
             ("support-desk / strands.telemetry.tracer : execute_tool research",
              "support-desk / strands.telemetry.tracer : invoke_agent researcher", "in-process")),
            ("ATTR001", "workflow_id", "49a43da60ac14cf1",
             ("support-desk / strands.telemetry.tracer : execute_tool research",
              "support-desk / strands.telemetry.tracer : invoke_agent researcher", "in-process")),
        ],
        boundaries=[("support-desk / strands.telemetry.tracer : execute_tool research",
                     "support-desk / strands.telemetry.tracer : invoke_agent researcher",
                     "in-process", ("tenant_id", "workflow_id"), 1, "0.004700")],
        total="0.007453",
        unattributed={"tenant_id": "0.004700", "workflow_id": "0.004700"},
        # GENAI002: gen_ai.system, and the legacy token names next to the current ones (notes).
        counts={"ATTR001": 2, "GENAI002": 70},
    ),
    "agent-framework": dict(
        detected={"agent-framework": 3},
        llm_calls=8,
        records=8,
        calls=[
            ("6732396462d0c880", "gpt-4o-mini", "globex", "invoice_digest", "0.000539400", False),
            ("8443181e4b019170", "gpt-4o-mini", None, None, "0.000315000", False),
            ("9c1121cd84740935", "gpt-4o-mini", "globex", "invoice_digest", "0.000428400", False),
            ("9f12cee57f15d67e", "gpt-4o-mini", "acme", "invoice_digest", "0.000386400", False),
            ("a199afd3fa2b66b3", "claude-haiku-4-5", "globex", "invoice_digest", "0.01015000", False),
            ("c2495be61a0494ee", "gpt-4o-mini", "globex", "invoice_digest", "0.000504000", False),
            ("cf6a58bb3584ef79", "claude-haiku-4-5", "acme", "invoice_digest", "0.01015000", False),
            ("ee566e35dc883526", "gpt-4o-mini", "acme", "invoice_digest", "0.000506400", False),
        ],
        findings=[
            ("ATTR002", "tenant_id", "8443181e4b019170", None),
            ("ATTR002", "workflow_id", "8443181e4b019170", None),
            ("TRACE004", None, "8443181e4b019170", None),
        ],
        boundaries=[],
        total="0.022980",
        unattributed={"tenant_id": "0.000315", "workflow_id": "0.000315"},
        # GENAI001: server.port missing next to server.address (which Agent Framework fills with
        # the client's base URL); GENAI003: gen_ai.response.finish_reasons written as a JSON string.
        counts={"ATTR002": 2, "GENAI001": 8, "GENAI003": 13, "TRACE004": 1},
    ),
    "adk-schema-v1": dict(
        # The same app in ADK's legacy span format: a call_llm span (gen_ai.system gcp.vertex.agent,
        # no operation name) over a generate_content span of the same scope and token counts. One
        # call each (TRACE005), the inner record kept: same calls, same figures as "adk".
        detected={},
        llm_calls=6,
        records=12,
        calls=[
            ("11aa2701b1338149", "openai/gpt-4o-mini", "acme", "trip_plan", "0.000485400", True),
            ("2a46a0b4dcc971bf", "openai/gpt-4o-mini", None, None, "0.000484200", True),
            ("5277fd6101455216", "openai/gpt-4o-mini", None, None, "0.000484200", False),
            ("683c394304661728", "openai/gpt-4o-mini", None, None, "0.000390000", True),
            ("777c9faa68eab9b5", "openai/gpt-4o-mini", "acme", "trip_plan", "0.000318000", True),
            ("9a8f1344a72a859d", "openai/gpt-4o-mini", "acme", "trip_plan", "0.000318000", False),
            ("af1ac7a8b67ccf59", "openai/gpt-4o-mini", "acme", "trip_plan", "0.000379200", False),
            ("bb41feebede6a8e3", "openai/gpt-4o-mini", None, None, "0.000318000", False),
            ("ddaa8f39d5e8fe21", "openai/gpt-4o-mini", None, None, "0.000390000", False),
            ("ec9d267180fa50da", "openai/gpt-4o-mini", "acme", "trip_plan", "0.000485400", False),
            ("f2b9b9116fa82741", "openai/gpt-4o-mini", None, None, "0.000318000", True),
            ("f88e79df44221a27", "openai/gpt-4o-mini", "acme", "trip_plan", "0.000379200", True),
        ],
        findings=[
            ("ATTR001", "tenant_id", "9c490fdc5ae8967c",
             ("trip-planner / trip_planner.app : POST /v1/plan", "trip-planner / gcp.vertex.agent : invocation", "library")),
            ("ATTR001", "workflow_id", "9c490fdc5ae8967c",
             ("trip-planner / trip_planner.app : POST /v1/plan", "trip-planner / gcp.vertex.agent : invocation", "library")),
            ("TRACE005", None, "11aa2701b1338149", None),
            ("TRACE005", None, "2a46a0b4dcc971bf", None),
            ("TRACE005", None, "683c394304661728", None),
            ("TRACE005", None, "777c9faa68eab9b5", None),
            ("TRACE005", None, "f2b9b9116fa82741", None),
            ("TRACE005", None, "f88e79df44221a27", None),
        ],
        boundaries=[("trip-planner / trip_planner.app : POST /v1/plan", "trip-planner / gcp.vertex.agent : invocation",
                     "library", ("tenant_id", "workflow_id"), 3, "0.001192")],
        total="0.002375",
        unattributed={"tenant_id": "0.001192", "workflow_id": "0.001192"},
        # GENAI001: call_llm has no gen_ai.operation.name (6), invoke_agent no provider (4);
        # GENAI002: gen_ai.system on both records of each call (12).
        counts={"ATTR001": 2, "GENAI001": 10, "GENAI002": 12, "TRACE005": 6},
    ),
    "adk": dict(
        detected={},
        llm_calls=6,
        records=6,
        calls=[
            ("7aec06b28c19daad", "openai/gpt-4o-mini", None, None, "0.000318000", False),
            ("9a8f1344a72a859d", "openai/gpt-4o-mini", "acme", "trip_plan", "0.000485400", False),
            ("ad61ce5b6364c7af", "openai/gpt-4o-mini", "acme", "trip_plan", "0.000318000", False),
            ("b5df6a8a1bcc2da1", "openai/gpt-4o-mini", None, None, "0.000390000", False),
            ("f6e2ef824c00b302", "openai/gpt-4o-mini", None, None, "0.000484200", False),
            ("f88e79df44221a27", "openai/gpt-4o-mini", "acme", "trip_plan", "0.000379200", False),
        ],
        findings=[
            ("ATTR001", "tenant_id", "4c297c4a1dcae4d1",
             ("trip-planner / trip_planner.app : POST /v1/plan", "trip-planner / gcp.vertex.agent : invoke_workflow planner", "library")),
            ("ATTR001", "workflow_id", "4c297c4a1dcae4d1",
             ("trip-planner / trip_planner.app : POST /v1/plan", "trip-planner / gcp.vertex.agent : invoke_workflow planner", "library")),
        ],
        boundaries=[("trip-planner / trip_planner.app : POST /v1/plan", "trip-planner / gcp.vertex.agent : invoke_workflow planner",
                     "library", ("tenant_id", "workflow_id"), 3, "0.001192")],
        total="0.002375",
        unattributed={"tenant_id": "0.001192", "workflow_id": "0.001192"},
        # invoke_agent spans without gen_ai.provider.name (required by the conventions).
        counts={"ATTR001": 2, "GENAI001": 4},
    ),
}


def _side(e: dict) -> str:
    return f"{e['service']} / {e['scope']} : {e['name']}"


def facts(doc: dict) -> dict:
    return dict(
        detected=doc["summary"]["dialects"],
        llm_calls=doc["summary"]["llm_calls"],
        records=len(doc["calls"]),
        calls=sorted((c["span_id"], c["model"], c["values"].get("tenant_id"), c["values"].get("workflow_id"), c["cost_usd"],
                      bool(c["duplicate_of"])) for c in doc["calls"]),
        findings=sorted(
            ((f["code"], f["key"], f["span_id"],
              None if f["boundary"] is None else (_side(f["boundary"]["parent"]), _side(f["boundary"]["child"]), f["boundary"]["class"]))
             for f in doc["findings"] if f["code"].startswith(("ATTR", "TRACE"))),
            key=lambda t: (t[0], t[1] or "", t[2])),
        boundaries=[(_side(b["parent"]), _side(b["child"]), b["class"], tuple(b["keys"]), b["llm_calls_affected"], b["unattributed_cost_usd"])
                    for b in doc["boundaries"]],
        total=doc["summary"]["cost"]["total_usd"],
        unattributed=doc["summary"]["cost"]["unattributed_usd"],
        counts=doc["summary"]["findings"],
    )


def run(sample: str, *extra: str):
    res = CliRunner().invoke(cli, ["check", "--format", "json", *extra, str(FRAMEWORKS / f"{sample}.otlp.json")])
    assert res.exit_code in (0, 1), res.output
    return res, json.loads(res.stdout)


def test_every_framework_sample_has_an_expectation():
    assert sorted(EXPECTED) == sorted(p.name[: -len(".otlp.json")] for p in FRAMEWORKS.glob("*.otlp.json"))


@pytest.mark.parametrize("sample", sorted(EXPECTED))
def test_framework_sample_audits_exactly(sample):
    res, doc = run(sample)
    assert facts(doc) == EXPECTED[sample]
    assert res.exit_code == 1  # every sample loses the key somewhere real
    # Agent and workflow spans carry usage totals (Strands', Agent Framework's invoke_agent):
    # aggregates, never calls, and not "LLM-like spans the schema missed" either.
    assert doc["llm_like_unread"] == {"spans": 0, "example": None}


def test_invoke_agent_usage_totals_are_not_counted_as_calls():
    """The samples' invoke_agent spans carry their agent's accumulated usage; the spend is the
    sum of the chat calls alone (any agent span counted too would at least double it)."""
    _res, doc = run("agent-framework")
    assert {c["name"] for c in doc["calls"]} == {"chat gpt-4o-mini", "chat claude-haiku-4-5"}
    _res, doc = run("strands")
    assert {c["name"] for c in doc["calls"]} == {"chat"}


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


def _adk_v1_call(trace: int, first: int, usage=(2200, 100), rid=None):
    """ADK's legacy format: call_llm (gen_ai.system gcp.vertex.agent, no operation name) over
    generate_content (operation and provider), one scope, the same token counts."""
    tokens = {"gen_ai.usage.input_tokens": usage[0], "gen_ai.usage.output_tokens": usage[1]}
    inner = {"gen_ai.operation.name": "generate_content", "gen_ai.system": "openai", "gen_ai.request.model": "openai/gpt-4o-mini", **tokens}
    if rid:
        inner["gen_ai.response.id"] = rid
    return Tree("call_llm", {"gen_ai.system": "gcp.vertex.agent", "gen_ai.request.model": "openai/gpt-4o-mini", **tokens},
                [Tree("generate_content openai/gpt-4o-mini", inner, scope="gcp.vertex.agent")], scope="gcp.vertex.agent")


def _agent(*calls: Tree) -> list:
    keys = {"tenant_id": "acme", "workflow_id": "w"}
    return Tree("POST /plan", keys, [Tree("invoke_agent planner", {"gen_ai.operation.name": "invoke_agent", **keys}, list(calls),
                                          scope="gcp.vertex.agent")]).spans()


def test_a_wrapper_span_over_its_own_model_span_is_one_call():
    """ADK's call_llm and the generate_content span inside it share one scope, so the
    different-scopes rule never folded them: every call was counted and priced twice."""
    result = audit(_agent(_adk_v1_call(1, 3)), load_schema("default"))
    (call,) = result.calls
    assert (call.name, call.provider, call.within, str(call.cost_usd)) == (
        "generate_content openai/gpt-4o-mini", "openai", f"{3:016x}", "0.000390000")  # 2200 x .15 + 100 x .6 per MTok
    assert [(f.code, f.span_id) for f in result.findings if f.code == "TRACE005"] == [("TRACE005", f"{3:016x}")]


def test_a_leak_counts_calls_not_their_wrapper_records():
    _res, doc = run("adk-schema-v1")
    (f,) = [f for f in doc["findings"] if f["code"] == "ATTR001" and f["key"] == "tenant_id"]
    assert f["message"].endswith(": 13 span(s) and 3 LLM call(s) below carry no tenant_id.")  # 6 records
    assert len(f["llm_calls_affected"]) == 6


def test_side_by_side_or_different_calls_stay_apart():
    # two identical calls of one instrumentation side by side: two calls (no nesting)
    two = audit(_agent(_adk_v1_call(1, 3).children[0], _adk_v1_call(1, 4).children[0]), load_schema("default"))
    assert len(two.calls) == 2 and "TRACE005" not in two.finding_counts
    # a wrapper whose counts differ from the span inside it, or two different response ids, or
    # two nested spans that both name their operation (two calls, as far as the spans say)
    wrapper = {"gen_ai.system": "openai", **{k: v for k, v in LLM.items() if k not in ("gen_ai.operation.name", "gen_ai.provider.name")}}
    for outer_attrs, inner_attrs in (
        (wrapper, {**LLM, "gen_ai.usage.input_tokens": 999}),
        ({**wrapper, "gen_ai.response.id": "a"}, {**LLM, "gen_ai.response.id": "b"}),
        (LLM, LLM),
    ):
        outer = Tree("call_llm", outer_attrs, [Tree("chat", inner_attrs)])
        assert len(audit(_agent(outer), load_schema("default")).calls) == 2


def test_the_wrapper_link_survives_json_and_merge(tmp_path):
    f = tmp_path / "t.json"
    f.write_bytes(to_json_bytes(_agent(_adk_v1_call(1, 3), _adk_v1_call(1, 5, usage=(3000, 200)))))
    whole = json.loads(CliRunner().invoke(cli, ["check", "--format", "json", "-o", "-", str(f)]).stdout)
    (tmp_path / "w.json").write_text(json.dumps(whole))
    merged = json.loads(CliRunner().invoke(cli, ["merge", "--format", "json", str(tmp_path / "w.json")]).stdout)
    for doc in (whole, merged):
        assert doc["summary"]["llm_calls"] == 2 and doc["summary"]["cost"]["total_usd"] == "0.000960"
        assert sorted(c.get("within") or "" for c in doc["calls"]) == ["", "", f"{3:016x}", f"{5:016x}"]


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
        ("agent_framework", {}, ["agent-framework"]),
    ],
)
def test_detect_framework_dialects(scope, attrs, found):
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


AF_CLAUDE = {
    "gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic", "gen_ai.request.model": "claude-haiku-4-5",
    # Anthropic's own input count (cache excluded), passed through by Agent Framework
    "gen_ai.usage.input_tokens": 6000, "gen_ai.usage.output_tokens": 500,
    "gen_ai.usage.cache_read.input_tokens": 4000, "gen_ai.usage.cache_creation.input_tokens": 1000,
    "tenant_id": "acme", "workflow_id": "w",
}


def test_agent_framework_passes_each_providers_counts_through(tmp_path):
    """Agent Framework writes Anthropic's input_tokens as Anthropic reports them (cache tokens
    excluded) and OpenAI's as OpenAI does (included). Cache 5000 <= input 6000 fits both
    readings: without the preset the call was "ambiguous", priced as including at half its price."""
    openai = {**LLM, "gen_ai.usage.input_tokens": 3000, "gen_ai.usage.cache_read.input_tokens": 2048, "tenant_id": "acme", "workflow_id": "w"}
    f = tmp_path / "t.json"
    f.write_bytes(to_json_bytes([mk(1, 1, None, "chat claude-haiku-4-5", scope="agent_framework", attrs=AF_CLAUDE),
                                 mk(1, 2, None, "chat gpt-4o-mini", scope="agent_framework", attrs=openai, start=5000)]))
    res = CliRunner().invoke(cli, ["check", "--format", "json", str(f)])
    doc = json.loads(res.stdout)
    assert doc["summary"]["dialects"] == {"agent-framework": 1}
    claude, gpt = sorted(doc["calls"], key=lambda c: c["span_id"])
    assert (claude["usage"]["input"], claude["usage"]["convention"], claude["usage"]["ambiguous"], claude["cost_usd"]) == (
        6000, "excluding", False, "0.01015000")  # 6000 x $1 + 4000 x $0.10 + 1000 x $1.25 + 500 x $5 per MTok
    assert claude["usage"]["basis"] == "dialect: scope 'agent_framework' passes the provider's own counts through (excluding for anthropic)"
    # 952 x $0.15 + 2048 x $0.075 + 100 x $0.60 = 142.8 + 153.6 + 60 per MTok: OpenAI's prompt includes its cached tokens
    assert (gpt["usage"]["input"], gpt["usage"]["convention"], gpt["cost_usd"]) == (952, "including", "0.000356400")
    assert "COST002" not in doc["summary"]["findings"]
    before = json.loads(CliRunner().invoke(cli, ["check", "-s", "default", "--format", "json", str(f)]).stdout)
    claude = min(before["calls"], key=lambda c: c["span_id"])
    assert (claude["usage"]["ambiguous"], claude["cost_usd"]) == (True, "0.00515000")
    assert before["summary"]["findings"]["COST002"] == 1


def test_native_is_a_convention_a_schema_may_declare(tmp_path):
    schema = tmp_path / "s.yaml"
    schema.write_text("version: 1\nextends: [default]\ndialects:\n  convention:\n    my.framework: native\n")
    f = tmp_path / "t.json"
    f.write_bytes(to_json_bytes([mk(1, 1, None, "chat", scope="my.framework.agents", attrs=AF_CLAUDE)]))
    doc = json.loads(CliRunner().invoke(cli, ["check", "-s", str(schema), "--format", "json", str(f)]).stdout)
    (call,) = doc["calls"]
    assert (call["usage"]["convention"], call["cost_usd"]) == ("excluding", "0.01015000")


@pytest.mark.parametrize("sample, span_id", [("strands", "1efdbd64e62c7e87"), ("agent-framework", "cf6a58bb3584ef79")])
def test_without_their_presets_the_samples_claude_calls_are_ambiguous(sample, span_id):
    """What the strands and agent-framework presets settle on the real samples: read by the
    default schema alone, their Claude calls with cache tokens fit both conventions (COST002)."""
    _res, doc = run(sample, "--schema", "default")
    (call,) = [c for c in doc["calls"] if c["span_id"] == span_id]
    assert call["usage"]["ambiguous"] is True
    assert doc["summary"]["findings"]["COST002"] == (1 if sample == "strands" else 2)
