"""One policy: the schema's severities and gate, applied once, to every finding, through merge.

Every code in the registry is switched off in turn; none of its findings remains, in
``check`` and after ``check --shard`` + ``merge``. ``merge`` keeps a schema's gate. The
unattributed share is one figure, with its basis, in every format and in /metrics.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.cli import cli
from auditor.report import Format, RenderOptions, render
from auditor.rules import REGISTRY, Visit
from auditor.rules.registry import WALKED
from builders import LLM, mk, to_json_bytes
from test_server_support import Sidecar

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = [str(p) for p in sorted((ROOT / "sample_traces").glob("*/*.otlp.json"))]
ALL_PRESETS = ["preset:" + p.stem for p in sorted((ROOT / "schemas/presets").glob("*.yaml"))]
WALKED_CODES = sorted(c for c, r in REGISTRY.rules.items() if r.visits in WALKED)


def _hostile_shapes(path: Path) -> str:
    """Spans that trigger the codes the samples do not: orphan, self-parent, mismatch, gap,
    bad value, wrong type, impossible counts."""
    bad_tokens = {**LLM, "gen_ai.usage.input_tokens": "12", "gen_ai.usage.output_tokens": -5}
    spans = [
        mk(1, 1, None, "POST /a", attrs={"tenant_id": "acme", "workflow_id": "w"}),
        mk(1, 2, 1, "step", attrs={"tenant_id": "globex", "workflow_id": "w"}),  # ATTR003
        mk(1, 3, 2, "hop", attrs={}),  # ATTR001
        mk(1, 4, 3, "again", attrs={"tenant_id": "globex", "workflow_id": "w"}),  # ATTR004
        mk(1, 5, 4, "chat", attrs={**bad_tokens, "tenant_id": "globex", "workflow_id": "w"}),  # GENAI003/004
        mk(1, 6, 99, "orphan", attrs={**LLM, "tenant_id": "x" * 300, "workflow_id": "w"}),  # TRACE001, ATTR005
        mk(2, 7, 7, "self", attrs=LLM),  # TRACE003
    ]
    path.write_bytes(to_json_bytes(spans))
    return str(path)


def _schema(path: Path, extends: list[str], off: str | None = None, gate: str = "") -> str:
    lines = ["version: 1", f"extends: {json.dumps(extends)}"]
    if off:
        lines += ["severity:", f"  {off}: off"]  # bare off: YAML reads it as false; accepted
    path.write_text("\n".join(lines) + "\n" + gate)
    return str(path)


def _check(schema: str, inputs: list[str], *extra: str) -> tuple[int, dict]:
    res = CliRunner().invoke(cli, ["check", "-s", schema, "--format", "json", *extra, *inputs])
    assert res.exit_code in (0, 1), res.output
    return res.exit_code, json.loads(res.stdout)


def _merged(schema: str, inputs: list[str], tmp: Path, *extra: str) -> tuple[int, dict]:
    outs = []
    for i in range(3):
        out = tmp / f"s{i}.json"
        res = CliRunner().invoke(cli, ["check", "-s", schema, "--shard", f"{i}/3", "--format", "json", "-o", str(out), *inputs])
        assert res.exit_code in (0, 1), res.output
        outs.append(str(out))
    res = CliRunner().invoke(cli, ["merge", "--format", "json", *extra, *outs])
    assert res.exit_code in (0, 1), res.output
    return res.exit_code, json.loads(res.stdout)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("policy")
    inputs = SAMPLES + [_hostile_shapes(d / "shapes.otlp.json")]
    schemas = {"default": ["default"], "all": ALL_PRESETS}
    baseline = {name: _check(_schema(d / f"{name}.yaml", ext), inputs)[1]["summary"]["findings"] for name, ext in schemas.items()}
    return d, inputs, schemas, baseline


ONLY_WITHOUT_CALLS = {"GENAI005"}  # needs a result without one LLM call: tested on its own below


def test_the_corpus_triggers_every_walked_code(corpus):
    """Else switching a code off would prove nothing."""
    _d, _inputs, _schemas, baseline = corpus
    seen = set(baseline["default"]) | set(baseline["all"])
    assert sorted(seen & set(WALKED_CODES)) == sorted(set(WALKED_CODES) - ONLY_WITHOUT_CALLS)


def test_a_schema_that_reads_no_call_says_so_and_the_finding_can_be_switched_off(tmp_path):
    sample = [str(ROOT / "sample_traces/dialects/openinference.otlp.json")]
    res = CliRunner().invoke(cli, ["check", "-s", "default", "--format", "json", *sample])
    assert res.exit_code == 1
    assert res.stderr == ("auditor: warning: spans speak openinference (4 traces), which schema default does not read: "
                          "add extends: [preset:openinference] or drop --schema to detect dialects per trace\n")
    doc = json.loads(res.stdout)
    (f,) = [f for f in doc["findings"] if f["code"] == "GENAI005"]
    assert f["message"].startswith("5 span(s) look like LLM calls (token counts or an LLM span kind) but the schema "
                                   "selects none as an LLM call: their spend is invisible. Their spans speak preset:openinference.")
    assert doc["summary"]["findings"] == {"GENAI005": 1} and doc["summary"]["llm_calls"] == 0
    off = _schema(tmp_path / "off.yaml", ["default"], off="GENAI005")
    _rc, whole = _check(off, sample)
    assert whole["summary"]["findings"] == {}
    _rc, merged = _merged(off, sample, tmp_path)
    assert merged["summary"]["findings"] == {}
    # detected, the same spans are read: no GENAI005
    assert "GENAI005" not in _cli_findings(sample)


def _cli_findings(inputs: list[str]) -> dict:
    res = CliRunner().invoke(cli, ["check", "--format", "json", *inputs])
    return json.loads(res.stdout)["summary"]["findings"]


@pytest.mark.parametrize("code", sorted(set(WALKED_CODES) - ONLY_WITHOUT_CALLS))
def test_a_code_switched_off_leaves_no_finding_in_check_or_merge(corpus, code, tmp_path):
    _d, inputs, schemas, baseline = corpus
    name = "default" if code in baseline["default"] else "all"
    schema = _schema(tmp_path / "off.yaml", schemas[name], off=code)
    _rc, whole = _check(schema, inputs)
    assert code not in whole["summary"]["findings"]
    assert not [f for f in whole["findings"] if f["code"] == code]
    assert whole["policy"]["severity"] == {code: "off"}
    others = {c: n for c, n in baseline[name].items() if c != code}
    if code not in ("TRACE005",):  # folding decides which record's COST00x remain; the rest are untouched
        assert {c: n for c, n in whole["summary"]["findings"].items()} == others
    _rc, merged = _merged(schema, inputs, tmp_path)
    assert code not in merged["summary"]["findings"]
    assert merged["findings"] == whole["findings"]


def test_merge_keeps_the_schemas_gate(tmp_path):
    inputs = [str(ROOT / "sample_traces/core/baggage_dropped.otlp.json")]
    never = _schema(tmp_path / "never.yaml", ["default"], gate="gate:\n  fail_on: never\n")
    rc_whole, whole = _check(never, inputs)
    rc_merged, merged = _merged(never, inputs, tmp_path)
    assert (rc_whole, rc_merged) == (0, 0)
    assert merged["summary"]["gate"] == whole["summary"]["gate"] == {
        "passed": True, "fail_on": "never", "max_unattributed_pct": {}, "reasons": []}
    # a flag still overrides, on check and on merge alike
    rc, over = _merged(never, inputs, tmp_path, "--fail-on", "error")
    assert rc == 1 and over["summary"]["gate"]["reasons"] == ["findings at or above error: 6 ATTR001"]


def test_merge_refuses_results_of_different_policies(tmp_path):
    inputs = [str(ROOT / "sample_traces/core/baggage_dropped.otlp.json")]
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    for out, schema in ((a, _schema(tmp_path / "x.yaml", ["default"])), (b, _schema(tmp_path / "y.yaml", ["default"], off="ATTR001"))):
        CliRunner().invoke(cli, ["check", "-s", schema, "--format", "json", "-o", str(out), *inputs])
    res = CliRunner().invoke(cli, ["merge", str(a), str(b)])
    assert res.exit_code == 2
    assert res.stderr == (f"auditor: error: {b}: audited with a different policy (the schema's severity: or gate:) "
                          f"than {a}; merge results of one schema\n")


# ---------------------------------------------------------------- one share, every format


def _unpriced_and_duplicated(path: Path) -> str:
    """Two calls with tenant_id; one unpriced call without it; one call recorded twice (two
    instrumentations, same response id), both records without tenant_id."""
    priced = {**LLM, "gen_ai.usage.input_tokens": 1_000_000, "gen_ai.usage.output_tokens": 0}  # $0.15 each
    unpriced = {**LLM, "gen_ai.request.model": "house-model-7b"}
    dup = {**LLM, "gen_ai.response.id": "resp-1", "gen_ai.usage.input_tokens": 2_000_000, "gen_ai.usage.output_tokens": 0}
    spans = [
        mk(1, 1, None, "POST /a", attrs={"tenant_id": "acme", "workflow_id": "w"}),
        mk(1, 2, 1, "chat", attrs={**priced, "tenant_id": "acme", "workflow_id": "w"}),
        mk(2, 3, None, "POST /b", attrs={"tenant_id": "acme", "workflow_id": "w"}),
        mk(2, 4, 3, "chat", attrs={**priced, "tenant_id": "acme", "workflow_id": "w"}),
        mk(3, 5, None, "job", attrs={"workflow_id": "w"}),
        mk(3, 6, 5, "chat", attrs={**unpriced, "workflow_id": "w"}),
        mk(4, 7, None, "job", attrs={"workflow_id": "w"}, start=10),
        mk(4, 8, 7, "chat", scope="framework", attrs={**dup, "workflow_id": "w"}, start=20, dur=500),
        mk(4, 9, 8, "chat", scope="openai", attrs={**dup, "workflow_id": "w"}, start=30, dur=400),
    ]
    path.write_bytes(to_json_bytes(spans))
    return str(path)


def test_every_format_and_metrics_show_one_share_with_its_basis(tmp_path):
    path = _unpriced_and_duplicated(tmp_path / "t.otlp.json")
    schema = _schema(tmp_path / "s.yaml", ["default"], gate="gate:\n  fail_on: never\n  max_unattributed_pct: {tenant_id: 50}\n")
    rc, doc = _check(schema, [path])
    k = doc["summary"]["keys"]["tenant_id"]
    # $0.30 of $0.60 priced spend lacks tenant_id (the duplicate counted once); one unpriced call too
    assert (k["llm_calls"], k["llm_calls_missing"], k["unattributed_usd"]) == (4, 2, "0.300000")
    assert (k["unattributed_pct"], k["unattributed_basis"], k["unattributed_unpriced_calls"]) == (50.0, "spend", 1)
    assert doc["summary"]["findings"]["TRACE005"] == 1 and doc["summary"]["cost"]["total_usd"] == "0.600000"
    assert rc == 0 and doc["summary"]["gate"]["passed"]  # 50% is not over 50%

    from auditor.pipeline import audit_files
    from auditor.plan import Plan

    result = audit_files([path], Plan.of(schema))
    text = render(Format.TEXT, result, RenderOptions())
    assert "$0.300000 of $0.600000 (50.0%) of LLM spend is unattributed for tenant_id, and 1 unpriced call(s) lack it" in text
    assert "50.0% of spend" in render(Format.MARKDOWN, result)
    assert "50.0% of spend ($0.300000; 2 of 4 LLM calls lack tenant_id)" in render(Format.JUNIT, result)
    sarif = json.loads(render(Format.SARIF, result))["runs"][0]["invocations"][0]["properties"]
    assert sarif["unattributed"]["tenant_id"] == {"share_pct": 50.0, "basis": "spend", "usd": "$0.300000"}
    html = render(Format.HTML, result)
    assert '<div class="big">50.0%</div>' in html and "share of spend" in html

    sidecar = Sidecar(tmp_path / "data", "--schema", schema, trace_idle=0.2).start()
    try:
        r = sidecar.post("/v1/traces", Path(path).read_bytes(), "application/json")
        assert r.status_code == 200, r.text
        sidecar.wait_audited()
        m = sidecar.metrics()
        assert m['auditor_unattributed_cost_usd{key="tenant_id"}'] == 0.3
        assert m['auditor_unattributed_share_pct{basis="spend",key="tenant_id"}'] == 50.0
        assert m['auditor_findings{code="TRACE005"}'] == 1.0
        rep = sidecar.report()
        assert rep["summary"]["keys"]["tenant_id"] == k
    finally:
        sidecar.stop()


def test_share_is_by_calls_only_when_nothing_is_priced(tmp_path):
    spans = [mk(1, 1, None, "job", attrs={"workflow_id": "w"}),
             mk(1, 2, 1, "chat", attrs={**LLM, "gen_ai.request.model": "house-model-7b", "workflow_id": "w"})]
    path = tmp_path / "u.otlp.json"
    path.write_bytes(to_json_bytes(spans))
    schema = _schema(tmp_path / "s.yaml", ["default"], gate="gate:\n  fail_on: never\n  max_unattributed_pct: {tenant_id: 10}\n")
    rc, doc = _check(schema, [str(path)])
    k = doc["summary"]["keys"]["tenant_id"]
    assert (k["unattributed_pct"], k["unattributed_basis"]) == (100.0, "calls")
    assert rc == 1 and doc["summary"]["gate"]["reasons"] == [
        "tenant_id: 100.00% of LLM calls (nothing priced) unattributed (limit 10%)"]


def test_registry_lists_every_code_once_with_what_it_visits():
    assert len(REGISTRY.rules) == len(set(REGISTRY.rules))
    assert {r.visits for r in REGISTRY.all()} <= set(Visit)
    assert REGISTRY.codes_visiting(Visit.RESULT) == {"TRACE005", "AGENT001", "AGENT002", "GENAI005"}
    with pytest.raises(ValueError, match="duplicate rule code ATTR001"):
        from auditor.rules import attribution
        from auditor.rules.registry import Registry

        Registry.of(attribution.RULES + attribution.RULES[:1], attribution.CHECKS)


def test_readme_documents_every_registered_code_with_its_default_severity():
    """Codes are documented in the README and never renumbered: the table is the registry."""
    import re

    table = re.findall(r"^\| ([A-Z]+[0-9]{3}) \| (error|warning|note) \|", (ROOT / "README.md").read_text(), re.M)
    assert sorted(table) == sorted((r.code, r.severity.value) for r in REGISTRY.all())
