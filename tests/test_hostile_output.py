"""Trace data cannot forge CI workflow commands or terminal escapes in any text report, and a
megabyte value does not become a megabyte line (item 5 and the clipping part of item 8 of #13)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest
from builders import LLM, mk, to_json_bytes
from click.testing import CliRunner

from auditor.cli import cli
from auditor.report.safe_text import clip, guard, inline

FORGE = "\n::error file=app.py,line=1::forged\n::stop-commands::pwned\n##[group]x\n##vso[task.setvariable variable=x]1\n"
ESC = "\x1b[2J\x1b]0;title\x07\x9b31m\u202eevil\u2028next"
BIG = "t" * 1_000_000


def hostile_spans():
    return [
        mk(1, 1, None, name="POST /in" + FORGE, service="web" + ESC, attrs={"tenant_id": "acme" + FORGE, "workflow_id": "w"}),
        mk(1, 2, 1, name="::warning::hop" + ESC, service="worker\n::error::svc", scope="s" + FORGE, start=10, dur=500),
        mk(1, 3, 2, name="chat " + FORGE, service="worker\n::error::svc", scope="openai", attrs=dict(LLM), start=20, dur=400),
        # a different tenant below: a mismatch whose message quotes both values and both names
        mk(2, 1, None, name=BIG, service="web", attrs={"tenant_id": "a", "workflow_id": "w"}),
        mk(2, 2, 1, name="::error::" + BIG, service="web", attrs={**LLM, "tenant_id": BIG + FORGE, "workflow_id": "w"}, start=5),
    ]


CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
COMMAND = re.compile(r"^\s*(::|##\[|##vso\[)", re.MULTILINE)


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile")
    trace = d / "hostile.otlp.json"
    trace.write_bytes(to_json_bytes(hostile_spans()))
    out = {}
    for fmt in ("text", "markdown", "junit", "sarif"):
        res = CliRunner().invoke(cli, ["check", "-v", "-s", "default", "-f", f"{fmt}:{d / fmt}", str(trace)])
        assert res.exit_code == 1, res.output
        out[fmt] = (d / fmt).read_text(encoding="utf-8")
    return out


@pytest.mark.parametrize("fmt", ["text", "markdown", "junit"])
def test_no_line_starts_a_ci_command_and_no_raw_control_characters(outputs, fmt):
    text = outputs[fmt]
    assert "forged" in text or "\\n::error" in text  # the hostile data is there, shown...
    assert not COMMAND.search(text), COMMAND.search(text).group(0)  # ...but never as a command
    assert not CONTROL.search(text.replace("\t", "")), repr(CONTROL.search(text).group(0))
    assert "\\x1b[2J" in text or "\\\\x1b" in text  # escapes are visible


def test_junit_text_nodes_are_safe_too(outputs):
    root = ET.fromstring(outputs["junit"])
    for el in root.iter():
        for value in [el.text or "", *el.attrib.values()]:
            assert not COMMAND.search(value) and not CONTROL.search(value)


def test_sarif_strings_carry_no_control_characters(outputs):
    doc = json.loads(outputs["sarif"])

    def strings(o):
        if isinstance(o, dict):
            for v in o.values():
                yield from strings(v)
        elif isinstance(o, list):
            for v in o:
                yield from strings(v)
        elif isinstance(o, str):
            yield o

    run = doc["runs"][0]
    texts = [r["message"]["text"] for r in run["results"]] + list(strings(run["logicalLocations"]))
    assert texts
    for t in texts:
        assert not CONTROL.search(t) and "\n" not in t


@pytest.mark.parametrize("fmt", ["text", "markdown", "junit", "sarif"])
def test_a_megabyte_value_does_not_make_a_megabyte_report(outputs, fmt):
    assert len(outputs[fmt]) < 100_000, len(outputs[fmt])
    assert max(len(line) for line in outputs[fmt].splitlines()) < 5_000


def test_helpers():
    assert inline("a\nb\x1b[0m\u202e") == "a\\nb\\x1b[0m\\u202e"
    assert guard("ok\n  ::error::x\n##[group]y\nfine ::x") == "ok\n  | ::error::x\n| ##[group]y\nfine ::x"
    c = clip("x" * 1000, 100)
    assert len(c) < 130 and c.startswith("x" * 80) and "[900 more chars]" in c
    assert inline("é ü 中文 emoji 🙂") == "é ü 中文 emoji 🙂"
