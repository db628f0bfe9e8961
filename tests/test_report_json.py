"""The JSON report validates against schemas/report.schema.json, for every core scenario."""

import json
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from auditor.cli import cli

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "schemas" / "report.schema.json").read_text())


@pytest.mark.parametrize("name", ["clean", "threadpool", "baggage_dropped"])
def test_json_report_matches_its_documented_schema(name):
    res = CliRunner().invoke(cli, ["check", "--format", "json", str(ROOT / "sample_traces" / "core" / f"{name}.pb.gz")])
    doc = json.loads(res.stdout)
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    jsonschema.validate(doc, SCHEMA, cls=jsonschema.Draft202012Validator)
    assert doc["summary"]["llm_calls"] == len([c for c in doc["calls"] if c["duplicate_of"] is None])
