"""The Claude Code sample (sample_traces/claude_code): exact spend per developer, session and team,
unattributed spend, and findings, from its log events, its beta traces, and both together."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor import ingest
from auditor.cli import cli
from auditor.plan import Plan
from auditor.engine import audit, audit_spans, merge
from auditor.model import RunInfo
from auditor.rollup import finish
from auditor.schema import load_schema

SAMPLES = Path(__file__).resolve().parent.parent / "sample_traces"
DIR = SAMPLES / "claude_code"
LOGS_PB, LOGS_JSON = DIR / "logs.pb", DIR / "logs.otlp.json"
TRACES_PB, TRACES_JSON = DIR / "traces.pb", DIR / "traces.otlp.json"


def _generator():
    spec = importlib.util.spec_from_file_location("generate_claude_code", SAMPLES / "generate_claude_code.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


gen = _generator()
SID = {s.key: gen.session_id(s) for s in gen.SESSIONS}
D = Decimal

# List price, worked out by hand from the token counts in generate_claude_code.py
# (sonnet-4.5 $3/$15/$0.30/$3.75, haiku-4.5 $1/$5/$0.10/$1.25, opus-4.1 $15/$75/$1.50/$18.75 per MTok).
PER_DEVELOPER = {
    "alice@example.com": D("0.1260"),  # a1 0.0825 + a2 0.0435
    "bob@example.com": D("0.01645"),
    "carol@example.com": D("1.82325"),
    "dave@example.com": D("0.05985"),
    "erin@example.com": D("0.0792"),
    None: D("0.00795"),  # the API-key session
}
PER_SESSION = {  # (spend, model calls)
    "a1": (D("0.0825"), 4),
    "a2": (D("0.0435"), 2),
    "b1": (D("0.01645"), 2),
    "c1": (D("1.82325"), 3),
    "d1": (D("0.05985"), 2),
    "e1": (D("0.0792"), 2),
    "k1": (D("0.00795"), 2),
}
PER_TEAM = {"platform": D("0.1504"), "data": D("1.82325"), None: D("0.13905")}
TOTAL = D("2.1127")
UNATTRIBUTED = {"developer": D("0.00795"), "session": D(0), "team": D("0.13905"), "cost_center": D("0.13905"), "repository": D("0.0792")}

AGENT_FINDINGS = [
    ("AGENT001", "cost_center", "dave@example.com"),
    ("AGENT001", "cost_center", "erin@example.com"),
    ("AGENT001", "repository", "erin@example.com"),
    ("AGENT001", "team", "dave@example.com"),
    ("AGENT001", "team", "erin@example.com"),
    ("AGENT002", "developer", SID["k1"]),
    ("AGENT003", None, "0.003200"),
]


@pytest.fixture(scope="module")
def schema():
    return load_schema("preset:claude-code")


def run(schema, *paths):
    c = Plan.fixed(schema)
    loaded = ingest.load([str(p) for p in paths], c.projection)
    return audit(loaded.spans, schema, inputs=loaded.inputs, plan=c)


def spend_by(result, key):
    out = defaultdict(Decimal)
    for call in result.calls:
        out[call.values.get(key)] += call.cost_usd
    return dict(out)


def agent_findings(result):
    return sorted(
        ((f.code, f.key, f.child_value) for f in result.findings if f.code.startswith("AGENT")),
        key=lambda t: (t[0], t[1] or "", str(t[2])),
    )


def test_committed_sample_is_what_the_generator_writes():
    log_msg, trace_msg = gen.generate()
    assert LOGS_PB.read_bytes() == log_msg.SerializeToString(deterministic=True)
    assert json.loads(LOGS_JSON.read_text()) == gen.logs_json(log_msg)
    assert TRACES_PB.read_bytes() == trace_msg.SerializeToString(deterministic=True)


def test_generator_list_prices_match_the_pinned_figures():
    assert gen.expected_costs() == {k: v for k, (v, _) in PER_SESSION.items()}


@pytest.mark.parametrize("path", [LOGS_PB, LOGS_JSON])
def test_log_events_spend_per_developer_session_and_team(schema, path):
    r = run(schema, path)
    assert (r.counts.spans, len(r.calls), r.unpriced_calls) == (36, 17, 0)  # prompts, tools, an api_error: not calls
    assert r.total_cost_usd == TOTAL
    assert spend_by(r, "developer") == PER_DEVELOPER
    assert spend_by(r, "team") == PER_TEAM
    sessions = defaultdict(lambda: [Decimal(0), 0])
    for c in r.calls:
        sessions[c.values["session"]][0] += c.cost_usd
        sessions[c.values["session"]][1] += 1
    assert {k: tuple(sessions[SID[k]]) for k in PER_SESSION} == PER_SESSION
    assert {k.key: k.unattributed_usd for k in r.keys} == UNATTRIBUTED
    assert all(c.usage.convention == "excluding" for c in r.calls)


def test_log_events_findings(schema):
    r = run(schema, LOGS_PB)
    assert agent_findings(r) == AGENT_FINDINGS
    attr = defaultdict(int)
    for f in r.findings:
        if f.code == "ATTR002":
            attr[f.key] += 1
    # dave: 2 calls x (team, cost_center); erin: 2 x (team, cost_center, repository); k1: 2 x developer
    assert dict(attr) == {"team": 4, "cost_center": 4, "repository": 2, "developer": 2}
    assert set(r.finding_counts) == {"AGENT001", "AGENT002", "AGENT003", "ATTR002"}  # no TRACE004 for records
    (mismatch,) = [f for f in r.findings if f.code == "AGENT003"]
    assert (mismatch.parent_value, mismatch.child_value) == ("0.014900", "0.003200")
    assert "bob" not in mismatch.message and "reports $0.014900, we price it at $0.003200" in mismatch.message
    by_msg = {(f.key, f.child_value): f.message for f in r.findings if f.code == "AGENT001"}
    assert by_msg[("team", "erin@example.com")].startswith(
        "developer erin@example.com: 2 of 2 model calls ($0.079200 of $0.079200) carry no team."
    )
    (no_user,) = [f for f in r.findings if f.code == "AGENT002"]
    assert no_user.message.startswith(f"session {SID['k1']}: 2 of 2 model calls ($0.007950) carry no user")


def test_beta_traces_interaction_to_llm_request(schema):
    r = run(schema, TRACES_PB)
    assert (r.counts.traces, r.counts.spans, len(r.calls)) == (2, 12, 4)
    assert {c.name for c in r.calls} == {"claude_code.llm_request"}
    assert spend_by(r, "developer") == {"alice@example.com": D("0.0435"), "dave@example.com": D("0.05985")}
    assert agent_findings(r) == [
        ("AGENT001", "cost_center", "dave@example.com"),
        ("AGENT001", "team", "dave@example.com"),
    ]
    # every span carries the standard attributes: nothing leaks between interaction and llm_request
    assert set(r.finding_counts) == {"AGENT001", "ATTR002"}
    assert r.boundaries == ()


def test_logs_and_traces_together_count_each_call_once(schema):
    r = run(schema, LOGS_PB, TRACES_JSON)
    assert (len(r.calls), len(r.duplicates)) == (17, 4)
    assert r.total_cost_usd == TOTAL
    assert spend_by(r, "developer") == PER_DEVELOPER
    assert agent_findings(r) == AGENT_FINDINGS
    assert r.finding_counts["TRACE005"] == 4


def test_agent_findings_are_exact_under_merge(schema):
    c = Plan.fixed(schema)
    spans = ingest.load([str(LOGS_PB)], c.projection).spans
    by_session = defaultdict(list)
    for s in spans:
        by_session[s.attributes["session.id"]].append(s)
    # shard so that alice's two sessions land in different shards
    shards = [[], []]
    for i, (_, ss) in enumerate(sorted(by_session.items())):
        shards[i % 2].extend(ss)
    parts = [finish(audit_spans(sh, c), RunInfo()) for sh in shards]
    merged = merge(parts[0], parts[1])
    whole = run(schema, LOGS_PB)
    assert merged.findings == whole.findings
    assert merged.calls == whole.calls


def test_concentration_line_and_json(schema):
    runner = CliRunner()
    res = runner.invoke(cli, ["check", "-s", "preset:claude-code", str(LOGS_PB)])
    assert res.exit_code == 1  # AGENT001/002 and ATTR002 are errors: the gate fails
    assert "top 10% of developers (1 of 5): 86.3% of spend" in res.output
    res = runner.invoke(cli, ["check", "-s", "preset:claude-code", "--format", "json", str(LOGS_PB)])
    doc = json.loads(res.output)
    assert doc["summary"]["cost"]["concentration"] == {
        "key": "developer", "people": 5, "top": 1, "top_usd": "1.823250", "total_usd": "2.112700", "top_pct": 86.3,
    }
    assert doc["summary"]["cost"]["unattributed_usd"] == {
        "developer": "0.007950", "session": "0.000000", "team": "0.139050", "cost_center": "0.139050", "repository": "0.079200",
    }
    calls = {c["span_id"]: c for c in doc["calls"]}
    assert sum(D(c["reported_cost_usd"]) for c in calls.values()) == TOTAL - D("0.0032") + D("0.0149")


@pytest.mark.parametrize(
    "by, expected",
    [
        ("session.id", {SID[k]: (f"{v:.6f}", n) for k, (v, n) in PER_SESSION.items()}),
        ("user.email", {k: (f"{v:.6f}", n) for k, v, n in [
            ("alice@example.com", D("0.1260"), 6), ("bob@example.com", D("0.01645"), 2), ("carol@example.com", D("1.82325"), 3),
            ("dave@example.com", D("0.05985"), 2), ("erin@example.com", D("0.0792"), 2), ("(unattributed)", D("0.00795"), 2)]}),
        ("team", {"platform": ("0.150400", 10), "data": ("1.823250", 3), "(unattributed)": ("0.139050", 4)}),
    ],
)
def test_cost_views_by_session_user_and_team(by, expected):
    res = CliRunner().invoke(cli, ["cost", "-s", "preset:claude-code", "--by", by, "-f", "json", str(LOGS_PB)])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)["rows"]
    assert {r["values"][by]: (r["cost_usd"], r["llm_calls"]) for r in rows} == expected


def test_detected_without_a_schema_like_the_preset():
    runner = CliRunner()
    detected = runner.invoke(cli, ["check", "--format", "json", str(LOGS_PB)])
    assert "dialects detected: claude-code (34 traces); each trace is read by the default schema plus its dialects' presets" in detected.stderr
    preset = runner.invoke(cli, ["check", "-s", "preset:claude-code", "--format", "json", str(LOGS_PB)])
    a, b = json.loads(detected.stdout), json.loads(preset.stdout)
    assert a["required_keys"] == b["required_keys"] == ["developer", "session", "team", "cost_center", "repository"]
    assert a["summary"]["findings"] == b["summary"]["findings"] == {"AGENT001": 5, "AGENT002": 1, "AGENT003": 1, "ATTR002": 12}
    assert a["summary"]["cost"] == b["summary"]["cost"]


def test_numbers_sent_as_strings_price_the_same(schema):
    """Claude Code sometimes sends numeric event fields as strings; they must price identically."""
    from test_logs import request

    attrs = {
        "event.name": "api_request", "session.id": "s1", "user.email": "x@example.com", "model": gen.SONNET,
        "input_tokens": 1200, "output_tokens": 800, "cache_read_tokens": 20000, "cache_creation_tokens": 4000,
        "cost_usd": 0.0366, "duration_ms": 5200,
    }
    as_str = {k: str(v) for k, v in attrs.items()}
    res = {"team.id": "platform", "cost_center": "eng-100", "repository": "acme/api"}
    out = []
    for a in (attrs, as_str):
        spans, _ = ingest.decode_bytes(
            request([{"body": "claude_code.api_request", "attrs": a}], resource=res, scope=gen.EVENTS_SCOPE).SerializeToString(),
            "x", Plan.fixed(schema).projection,
        )
        out.append(audit(spans, schema))
    for r in out:
        (call,) = r.calls
        assert (call.cost_usd, call.reported_cost_usd) == (D("0.0366"), D("0.0366"))
        assert call.usage.convention == "excluding"
        assert r.findings == ()
