"""Each core scenario, produced by the real OpenTelemetry SDK, gives exactly its expected findings
through the CLI, from both its OTLP JSON and its gzipped protobuf form."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.cli import cli
from expected import essentials

CORE = Path(__file__).resolve().parent.parent / "sample_traces" / "core"
SCENARIOS = {"clean": 0, "threadpool": 1, "baggage_dropped": 1}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
@pytest.mark.parametrize("form", ["otlp.json", "pb.gz"])
def test_scenario_matches_its_expected_findings(name, form):
    res = CliRunner().invoke(cli, ["check", "--format", "json", str(CORE / f"{name}.{form}")])
    assert res.exit_code == SCENARIOS[name], res.output
    expected = json.loads((CORE / f"{name}.expected.json").read_text())
    assert essentials(json.loads(res.stdout)) == expected


def test_baggage_dropped_names_the_network_hop():
    res = CliRunner().invoke(cli, ["check", str(CORE / "baggage_dropped.otlp.json")])
    lines = res.stdout.splitlines()
    assert lines[0] == "Trace attribution audit: 3 traces, 18 spans, 6 LLM calls from 1 input(s)"
    assert "  1. [network] web-frontend / web_frontend.app : POST" in lines
    assert "       -> scoring-service / scoring_service.app : POST /score" in lines
