"""``auditor schema infer`` proposes a valid schema from traces; ``auditor schema check`` validates one."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from click.testing import CliRunner

from auditor.cli import cli
from auditor.schema import load_schema_text
from builders import LLM, Tree, to_json_bytes

DIALECTS = Path(__file__).resolve().parent.parent / "sample_traces" / "dialects"


def infer(*paths):
    res = CliRunner().invoke(cli, ["schema", "infer", *map(str, paths)])
    assert res.exit_code == 0, res.output
    return res.stdout


def test_mixed_trace_gives_one_key_with_all_its_aliases():
    text = infer(DIALECTS / "mixed-openinference-litellm.otlp.json")
    load_schema_text(text, "inferred.yaml")  # valid against the schema-file JSON Schema
    doc = yaml.safe_load(text)
    assert "# Dialects detected: openinference (6 spans), litellm (4 spans)." in text
    assert doc["extends"] == ["default", "preset:openinference", "preset:litellm"]
    tenant = doc["keys"]["tenant_id"]
    assert tenant["required"] is True
    assert tenant["sources"] == [
        {"json": "metadata", "path": "tenant_id"},
        {"attribute": "tenant_id"},
        {"pyrepr": "metadata.requester_metadata", "path": "tenant_id"},
    ]
    assert "    # on the root of 2/2 trace(s), constant within 2 of them; on 3/4 LLM call(s) (75%)\n" in text


def test_langfuse_json_encoded_values_and_dimensions():
    text = infer(DIALECTS / "langfuse.otlp.json")
    load_schema_text(text, "inferred.yaml")
    keys = yaml.safe_load(text)["keys"]
    assert sorted(keys) == ["session_id", "tenant_id", "user_id", "workflow_id"]
    assert keys["tenant_id"]["sources"] == [{"attribute": "langfuse.trace.metadata.tenant_id"}]
    assert '    # e.g. "acme", "globex"\n' in text  # decoded, not '"acme"'


def test_roots_constancy_and_noise(tmp_path):
    traces = [
        Tree("POST /a", {"http.route": "/a", "tenant.id": "acme", "app.request_step": "1", "app.feature": "search"}, [
            Tree("step", {"app.request_step": "2", "app.feature": "search"}, [
                Tree("chat", {**LLM, "tenant.id": "acme", "app.feature": "search"}),
            ]),
        ]).spans(trace=t, first_id=10 * t)
        for t in (1, 2)
    ]
    f = tmp_path / "t.json"
    f.write_bytes(to_json_bytes([s for t in traces for s in t]))
    text = infer(f)
    load_schema_text(text, "x")
    keys = yaml.safe_load(text)["keys"]
    assert sorted(keys) == ["feature_id", "request_step", "tenant_id"]  # no http.route, no gen_ai.*
    assert keys["tenant_id"]["sources"] == [{"attribute": "tenant.id"}] and keys["tenant_id"]["required"] is True
    assert keys["feature_id"]["required"] is True
    assert keys["request_step"]["required"] is False  # changes within each trace
    assert "constant within 0 of them" in text.split("  request_step:")[1].splitlines()[1]


def test_inferred_schema_audits_like_detection(tmp_path):
    sample = DIALECTS / "litellm.otlp.json"
    out = tmp_path / "inferred.yaml"
    assert CliRunner().invoke(cli, ["schema", "infer", "-o", str(out), str(sample)]).exit_code == 0
    got = json.loads(CliRunner().invoke(cli, ["check", "-f", "json", "-s", str(out), str(sample)]).stdout)
    auto = json.loads(CliRunner().invoke(cli, ["check", "-f", "json", str(sample)]).stdout)
    for key in ("tenant_id", "workflow_id"):
        assert got["summary"]["keys"][key] == auto["summary"]["keys"][key]


def test_schema_check(tmp_path):
    res = CliRunner().invoke(cli, ["schema", "check", "preset:portkey"])
    assert res.exit_code == 0
    assert res.stdout.startswith("preset:portkey: valid schema 'portkey': 3 key(s): tenant_id (required, 14 sources), ")
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nkeys:\n  tenant_id:\n    sources:\n      - header_json: x-meta\n")
    res = CliRunner().invoke(cli, ["schema", "check", str(bad)])
    assert res.exit_code == 2
    assert res.stderr.startswith(f"auditor: error: {bad}: $.keys.tenant_id.sources[0] (line 5): expected a source with exactly one of")
    assert res.stderr.count("\n") == 1


def test_infer_unreadable_input_is_a_one_line_error(tmp_path):
    f = tmp_path / "x.json"
    f.write_text("{nope")
    res = CliRunner().invoke(cli, ["schema", "infer", str(f)])
    assert res.exit_code == 2 and res.stderr.startswith(f"auditor: error: {f}: line 1 column 2") and "Traceback" not in res.output
