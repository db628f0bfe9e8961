"""HTML, Markdown, JUnit and SARIF reports: content, escaping, schemas, several outputs in one run."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from html import unescape
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import jsonschema
import pytest
import xmlschema
from click.testing import CliRunner
from report_fixtures import BAGGAGE, CODE, ROOT, SCHEMAS, XSS_NAME, XSS_VALUE, leak_result, leak_spans

from auditor.cli import cli
from auditor.pipeline import Overrides, audit_files
from auditor.plan import Plan
from auditor.engine import audit, merge
from auditor.examples import pick
from auditor.report import Format, RenderOptions, html_report, markdown_report, render, sarif_report
from auditor.result_json import parts_from_json, to_json
from auditor.rollup import finish
from auditor.schema import load_schema

JUNIT_XSD = xmlschema.XMLSchema(str(SCHEMAS / "JUnit.xsd"))
SARIF_SCHEMA = json.loads((SCHEMAS / "sarif-schema-2.1.0-rtm.5.json").read_text())
SCENARIOS = sorted((ROOT / "sample_traces").glob("*/*.otlp.json"))


@pytest.fixture(scope="module")
def baggage():
    return audit_files([str(BAGGAGE)], Plan.of(None))


@pytest.fixture(scope="module")
def scenario_results():
    return {p.name: audit_files([str(p)], Plan.of(None)) for p in SCENARIOS}


def test_every_format_renders_a_leak():
    result = leak_result()
    for fmt in Format:
        text = render(fmt, result, RenderOptions())
        assert text.endswith("\n") and len(text) > 100, fmt


# ---------------------------------------------------------------- example traces


def test_example_trace_keeps_the_smallest_trace_with_values_and_the_hop(baggage):
    [ex] = baggage.parts.examples
    assert ex.boundary == baggage.boundaries[0].boundary
    assert ex.trace_id == "216363698b529b4a97b750923ceb3ffd"  # all three have 6 spans: lowest id wins
    assert ex.total_spans == 6 and len(ex.spans) == 6
    assert ex.hops == (("94b2b8fda02f34a6", "4da4f9fc3c6da5d7", ("tenant_id", "workflow_id")),)
    by_id = {s.span_id: s for s in ex.spans}
    assert by_id["94b2b8fda02f34a6"].values == {"tenant_id": "acme", "workflow_id": "lead-scoring"}
    assert by_id["4da4f9fc3c6da5d7"].values == {"tenant_id": None, "workflow_id": None}
    assert [s.name for s in ex.spans if s.llm] == ["chat gpt-4o-mini", "chat gpt-4o"]


def test_examples_merge_like_the_whole_and_survive_json():
    small = leak_spans()
    big = [replace(s, trace_id="f" * 32) for s in small] + [
        replace(small[2], trace_id="f" * 32, span_id="00000000000000aa", parent_span_id=small[1].span_id)
    ]
    schema = load_schema()
    whole = audit(small + big, schema)
    a, b = audit(big, schema), audit(small, schema)
    assert merge(a, b).parts.examples == whole.parts.examples == merge(b, a).parts.examples
    assert whole.parts.examples[0].trace_id == small[0].trace_id  # 3 spans beat 4
    assert pick(reversed(a.parts.examples + b.parts.examples)) == whole.parts.examples
    parts, run = parts_from_json(json.loads(json.dumps(to_json(whole))), "x.json")
    assert parts.examples == whole.parts.examples


# ---------------------------------------------------------------- HTML


def test_html_is_self_contained_and_escapes_hostile_names():
    html = html_report.render(leak_result())
    assert "<script>window.__xss" not in html and "onerror=\"window" not in html and "<svg onload" not in html
    # the only SVG elements are our charts (the hostile tenant value is a bar label, as text)
    assert re.findall(r"<svg[^>]*>", html) and all(t.startswith('<svg class="') for t in re.findall(r"<svg[^>]*>", html))
    assert 'aria-label="#1 network boundary web / web.app : POST /leads → worker / worker.app : &lt;script&gt;' in html
    assert "&lt;script&gt;window.__xss=&#34;name&#34;&lt;/script&gt;" in html
    assert html.count("<script>") == 1  # ours, pinned by hash in the CSP
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), "no network references"
    csp = unescape(re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html).group(1))
    assert "default-src 'none'" in csp and "script-src 'sha256-" in csp


def test_html_headline_boundary_tree_and_tables(baggage):
    html = html_report.render(baggage)
    assert 'id="gate">Gate failed' in html
    assert '<div class="big">6</div>' in html and '<div class="big">$0.020520</div>' in html
    assert html.count('<div class="big">98.2%</div>') == 2
    assert "web-frontend / web_frontend.app : POST</span>" in html
    assert 'class="leak" data-span="4da4f9fc3c6da5d7"' in html
    assert html.count('class="below"') == 2  # score_lead and the LLM call under the hop
    assert "tenant_id, workflow_id lost here" in html
    assert html.count('<tr data-code="ATTR001"') == 2  # grouped: one row per key at the boundary
    assert html.count('<td class="num">3 in 3 traces</td>') == 2
    assert "<code>sample_traces/core/baggage_dropped.otlp.json</code>" in html or str(BAGGAGE) in html


# ---------------------------------------------------------------- Markdown


def test_markdown_summary_of_a_leak(baggage):
    md = markdown_report.render(baggage)
    assert md.startswith("## Trace attribution audit: ❌ gate failed\n")
    assert "**3** traces · **18** spans · **6** LLM calls · spend **$0.020520** over 6 priced call(s)" in md
    assert "| `tenant_id` ❗ | 98.2% of spend | $0.020160 | 3 of 6 |" in md
    assert (
        "| 1 | network | web-frontend / web\\_frontend.app : POST → scoring-service / scoring\\_service.app : POST /score"
        " | `tenant_id`, `workflow_id` | 3 | 3 | $0.020160 |"
    ) in md
    assert md.rstrip().endswith("- findings at or above error: 6 ATTR001")


def test_markdown_cells_cannot_break_the_table_or_inject_html():
    md = markdown_report.render(leak_result())
    row = next(line for line in md.splitlines() if line.startswith("| 1 |"))
    assert row.count("|") - row.count("\\|") == 9  # eight cells, nothing split by a name
    assert "<script" not in md and "<img" not in md and "&lt;script&gt;" in md


# ---------------------------------------------------------------- JUnit


def test_junit_validates_for_every_scenario(scenario_results):
    for name, result in scenario_results.items():
        JUNIT_XSD.validate(render(Format.JUNIT, result))


def test_junit_suites_per_key_and_family_case_per_boundary(baggage):
    root = ET.fromstring(render(Format.JUNIT, baggage))
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert list(suites) == ["tenant_id / attribution", "workflow_id / attribution"]
    cases = [(c.get("name"), c.find("failure") is not None) for c in suites["tenant_id / attribution"].iter("testcase")]
    assert cases == [
        ("ATTR001 web-frontend / web_frontend.app : POST -> scoring-service / scoring_service.app : POST /score", True),
        ("unattributed spend for tenant_id", False),
    ]
    failure = suites["tenant_id / attribution"].find("testcase/failure")
    assert failure.get("type") == "ATTR001"
    assert "$0.020160 unattributed below; network boundary" in failure.text
    assert suites["tenant_id / attribution"].get("failures") == "1"


def test_junit_spend_limit_case_fails_over_the_limit_and_passes_below():
    over = audit_files([str(BAGGAGE)], Plan.of(None), overrides=Overrides("never", {"tenant_id": 50.0}))
    root = ET.fromstring(render(Format.JUNIT, over))
    case = next(c for c in root.iter("testcase") if c.get("name") == "unattributed spend for tenant_id")
    assert case.find("failure").get("message") == "tenant_id: 98.2% of spend ($0.020160; 3 of 6 LLM calls lack tenant_id) is over the limit of 50%"
    assert all(c.find("failure") is None for c in root.iter("testcase") if c.get("name").startswith("ATTR001"))
    under = audit_files([str(BAGGAGE)], Plan.of(None), overrides=Overrides("never", {"tenant_id": 99.0}))
    assert "<failure" not in render(Format.JUNIT, under)
    JUNIT_XSD.validate(render(Format.JUNIT, over))


def test_junit_survives_control_characters_in_names():
    spans = leak_spans()
    spans[1] = replace(spans[1], name="bad\x00name\x1b[31m")
    xml = render(Format.JUNIT, audit(spans, load_schema()))
    JUNIT_XSD.validate(xml)


# ---------------------------------------------------------------- SARIF


def test_sarif_validates_for_every_scenario(scenario_results):
    validator = jsonschema.Draft4Validator(SARIF_SCHEMA)
    for name, result in scenario_results.items():
        errors = sorted(validator.iter_errors(sarif_report.to_sarif(result)), key=str)
        assert not errors, (name, errors[0].message)


def test_sarif_rules_logical_and_physical_locations():
    doc = sarif_report.to_sarif(leak_result())
    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(doc)
    run = doc["runs"][0]
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    assert rules["ATTR001"]["help"]["text"].startswith("The key was on the parent span")
    assert rules["ATTR001"]["defaultConfiguration"]["level"] == "error"
    results = run["results"]
    assert [(r["ruleId"], r["properties"]["key"]) for r in results] == [("ATTR001", "tenant_id"), ("ATTR001", "workflow_id")]
    loc = results[0]["locations"][0]
    assert loc["physicalLocation"] == {
        "artifactLocation": {"uri": CODE["code.filepath"], "uriBaseId": "%SRCROOT%"},
        "region": {"startLine": 42},
    }
    span_loc = loc["logicalLocations"][0]
    assert span_loc["fullyQualifiedName"] == f"worker / worker.app / {XSS_NAME}"
    assert span_loc["kind"] == "function"
    chain = []
    idx = span_loc["index"]
    while idx is not None:
        item = run["logicalLocations"][idx]
        chain.append((item["name"], item["kind"]))
        idx = item.get("parentIndex")
    assert chain == [(XSS_NAME, "function"), ("worker.app", "namespace"), ("worker", "module")]
    assert results[0]["ruleIndex"] == list(rules).index("ATTR001")
    assert results[0]["partialFingerprints"]["attributionGroup/v1"] != results[1]["partialFingerprints"]["attributionGroup/v1"]


def test_sarif_absolute_code_path_becomes_a_file_uri():
    spans = leak_spans()
    spans[1] = replace(spans[1], attributes={**spans[1].attributes, "code.filepath": "/srv/app/my worker.py"})
    doc = sarif_report.to_sarif(audit(spans, load_schema()))
    art = doc["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert art == {"uri": "file:///srv/app/my%20worker.py"}


# ---------------------------------------------------------------- several outputs in one run


def test_several_outputs_in_one_run(tmp_path: Path):
    out = {fmt: tmp_path / f"report.{fmt}" for fmt in ("junit", "html", "sarif", "markdown")}
    args = ["check", str(BAGGAGE), "--format", "text"] + [a for f, p in out.items() for a in ("--format", f"{f}:{p}")]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 1, res.output
    assert "Leaking boundaries (1)" in res.stdout
    JUNIT_XSD.validate(str(out["junit"]))
    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(json.loads(out["sarif"].read_text()))
    assert out["html"].read_text().startswith("<!DOCTYPE html>")
    assert out["markdown"].read_text().startswith("## Trace attribution audit: ❌ gate failed")


def test_clean_result_reads_as_passing():
    clean = audit_files([str(ROOT / "sample_traces/core/clean.otlp.json")], Plan.of(None))
    assert 'id="gate">Gate passed' in html_report.render(clean)
    assert "No leaking boundaries" in html_report.render(clean)
    assert markdown_report.render(clean).startswith("## Trace attribution audit: ✅ gate passed")
    assert "<failure" not in render(Format.JUNIT, clean)
    assert sarif_report.to_sarif(clean)["runs"][0]["results"] == []


def test_share_falls_back_to_calls_when_nothing_is_priced():
    result = leak_result()
    unpriced = finish(
        replace(result.parts, calls=tuple(replace(c, cost_usd=None) for c in result.parts.calls)), result.run,
    )
    assert unpriced.total_cost_usd == Decimal(0)
    md = markdown_report.render(unpriced)
    assert "| `tenant_id` ❗ | 100.0% of calls (nothing priced) | $0.000000 | 1 of 1 |" in md
    assert "share by calls (nothing priced)" in html_report.render(unpriced)
    assert XSS_VALUE not in html_report.render(unpriced)


def test_sarif_keeps_the_worst_results_under_the_cap(monkeypatch):
    result = leak_result()
    extra = replace(result.findings[0], code="ATTR004", severity=result.findings[0].severity.__class__("warning"))
    many = replace(result, findings=(extra,) + result.findings)
    monkeypatch.setattr(sarif_report, "MAX_RESULTS", 2)
    doc = sarif_report.to_sarif(many)
    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(doc)
    run = doc["runs"][0]
    assert [r["level"] for r in run["results"]] == ["error", "error"]
    note = run["invocations"][0]["toolExecutionNotifications"][0]["message"]["text"]
    assert note == "1 lower-severity results left out (at most 2 per run); see --format json"


def test_html_names_the_spend_of_calls_that_never_had_a_key():
    result = audit_files([str(ROOT / "sample_traces/core/threadpool.otlp.json")], Plan.of(None))
    html = html_report.render(result)
    assert (
        "<b>Not at any boundary:</b> 4 LLM calls never had tenant_id, workflow_id anywhere above them (ATTR002), "
        "$0.000733 of spend; 4 of them started a trace of their own (TRACE004)"
    ) in html
    assert 'class="sub" id="no-boundaries"' in html


def test_sarif_points_at_the_trace_file_when_spans_carry_no_code_location(baggage):
    doc = sarif_report.to_sarif(replace(baggage, run=replace(baggage.run, inputs=("traces/run.jsonl",))))
    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(doc)
    locs = [r["locations"][0]["physicalLocation"] for r in doc["runs"][0]["results"]]
    assert locs == [{"artifactLocation": {"uri": "traces/run.jsonl", "uriBaseId": "%SRCROOT%"}, "region": {"startLine": 1}}] * 6
    two = sarif_report.to_sarif(replace(baggage, run=replace(baggage.run, inputs=("a.jsonl", "b.jsonl"))))
    assert all("physicalLocation" not in r["locations"][0] for r in two["runs"][0]["results"])


def test_html_of_inputs_in_different_dialects_renders():
    """A key of one dialect's preset is not among another trace's example values: it is left
    out of that tree, never an error (this used to raise UndefinedError for 'user_id')."""
    from auditor.pipeline import audit_files
    from auditor.plan import Plan

    root = Path(__file__).resolve().parents[1] / "sample_traces"
    result = audit_files([str(root / "core" / "baggage_dropped.otlp.json"), str(root / "dialects" / "langfuse.otlp.json")],
                         Plan.detect())
    html = html_report.render(result)
    assert 'id="chart-boundaries"' in html and "tenant_id missing" in html
