"""``check --baseline``: a pull request fails only on what is new or worse than an earlier report.

Through the real CLI: ``auditor baseline`` writes the report, ``check --baseline`` judges against
it, SARIF marks each result new / unchanged / absent, and groups match by normalised place, never
by trace or span ids.
"""

import json
from pathlib import Path

from click.testing import CliRunner

from auditor.cli import cli
from builders import LLM, Tree, to_json_bytes

ROOT = Path(__file__).resolve().parent.parent
THREADPOOL = str(ROOT / "sample_traces/core/threadpool.otlp.json")
BAGGAGE = str(ROOT / "sample_traces/core/baggage_dropped.otlp.json")
TENANT = {"tenant_id": "acme", "workflow_id": "w"}


def invoke(*args, input=None):
    return CliRunner().invoke(cli, [str(a) for a in args], input=input)


def baseline(tmp_path, *paths) -> Path:
    out = tmp_path / "old.json"
    res = invoke("baseline", *paths, "-o", out)
    assert res.exit_code == 0, res.output
    return out


def sarif_states(tmp_path, *args) -> tuple[int, list[tuple[str, str | None, str]]]:
    out = tmp_path / "r.sarif"
    res = invoke("check", *args, "-f", f"sarif:{out}")
    doc = json.loads(out.read_text())
    return res.exit_code, [(r["ruleId"], r["properties"].get("key"), r["baselineState"]) for r in doc["runs"][0]["results"]]


def leaky(trace: int, order_id: int) -> bytes:
    """A request whose tenant is lost below ``charge/{order_id}``: the same leak in any trace."""
    return to_json_bytes(Tree("POST /orders", TENANT, [
        Tree(f"charge/{order_id}", {}, [Tree("chat", LLM)], service="billing"),
    ], service="shop").spans(trace=trace))


def test_unchanged_input_passes_and_every_result_is_unchanged(tmp_path):
    old = baseline(tmp_path, THREADPOOL)
    assert invoke("check", THREADPOOL).exit_code == 1  # without a baseline its findings fail the gate
    code, states = sarif_states(tmp_path, THREADPOOL, "--baseline", old)
    assert code == 0
    assert states == [("ATTR002", "tenant_id", "unchanged"), ("ATTR002", "workflow_id", "unchanged"),
                      ("TRACE004", None, "unchanged")] * 4


def test_a_new_leak_fails_and_only_its_results_are_new(tmp_path):
    old = baseline(tmp_path, THREADPOOL)
    res = invoke("check", THREADPOOL, BAGGAGE, "--baseline", old)
    assert res.exit_code == 1
    gate = res.stdout.strip().splitlines()[-1]
    assert gate == (
        "Gate: FAILED (fail-on error): 2 new finding group(s) at or above error since " + str(old) + ": "
        "ATTR001 tenant_id at web-frontend / web_frontend.app : POST -> scoring-service / scoring_service.app : "
        "POST /score [network]; ATTR001 workflow_id at web-frontend / web_frontend.app : POST -> scoring-service / "
        "scoring_service.app : POST /score [network]; tenant_id: unattributed share rose 78.7% -> 97.4% of spend "
        "(+18.7 points) (tolerance 0 points); workflow_id: unattributed share rose 78.7% -> 97.4% of spend "
        "(+18.7 points) (tolerance 0 points)"
    )
    _, states = sarif_states(tmp_path, THREADPOOL, BAGGAGE, "--baseline", old)
    new = [s for s in states if s[2] == "new"]
    assert new == [("ATTR001", "tenant_id", "new"), ("ATTR001", "workflow_id", "new")] * 3
    assert all(s[2] == "unchanged" for s in states if s[0] != "ATTR001")
    assert {s[2] for s in states} == {"new", "unchanged"}


def test_share_rise_within_tolerance_passes_on_share_but_not_on_new_groups(tmp_path):
    old = baseline(tmp_path, THREADPOOL)
    res = invoke("check", THREADPOOL, BAGGAGE, "--baseline", old, "--baseline-tolerance-pct", "20")
    assert res.exit_code == 1
    assert "share rose" not in res.stdout and "2 new finding group(s)" in res.stdout
    # the same, with the leak's severity below the gate: only the share could fail it, and it is tolerated
    res = invoke("check", THREADPOOL, BAGGAGE, "--baseline", old, "--baseline-tolerance-pct", "20", "--fail-on", "never")
    assert res.exit_code == 0, res.stdout


def test_a_fixed_leak_shows_as_absent_and_passes(tmp_path):
    old = baseline(tmp_path, THREADPOOL, BAGGAGE)
    code, states = sarif_states(tmp_path, THREADPOOL, "--baseline", old)
    assert code == 0  # the share fell: 97.4% -> 78.7%
    assert [s for s in states if s[2] == "absent"] == [("ATTR001", "tenant_id", "absent"), ("ATTR001", "workflow_id", "absent")]
    md = invoke("check", THREADPOOL, "--baseline", old, "-f", "markdown").stdout
    assert "**0 new** · 3 known · 0 updated · **2 fixed** finding groups · spend $0.021451 → $0.000931 (-$0.020520)" in md
    assert "| `tenant_id` | 97.4% → 78.7% | -18.7 points | $0.020893 → $0.000733 |" in md
    assert ("| network | web-frontend / web\\_frontend.app : POST → scoring-service / scoring\\_service.app : POST /score "
            "| `tenant_id`, `workflow_id` | 3 | $0.020160 |") in md.split("**Fixed leaks** (1)")[1]


def test_groups_match_by_normalised_place_not_by_ids(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_bytes(leaky(trace=1, order_id=1001))
    b.write_bytes(leaky(trace=2, order_id=2002))  # other trace and span ids, another order number
    old = baseline(tmp_path, a)
    code, states = sarif_states(tmp_path, b, "--baseline", old)
    assert code == 0
    assert states == [("ATTR001", "tenant_id", "unchanged"), ("ATTR001", "workflow_id", "unchanged")]


def test_json_carries_the_comparison_and_merge_agrees(tmp_path):
    old = baseline(tmp_path, THREADPOOL)
    shards = []
    for i in range(2):
        out = tmp_path / f"s{i}.json"
        invoke("check", THREADPOOL, BAGGAGE, "--shard", f"{i}/2", "-f", f"json:{out}")
        shards.append(out)
    whole = json.loads(invoke("check", THREADPOOL, BAGGAGE, "--baseline", old, "-f", "json").stdout)
    res = invoke("merge", *shards, "--baseline", old, "-f", "json")
    assert res.exit_code == 1
    merged = json.loads(res.stdout)
    assert merged["baseline"] == whole["baseline"]
    assert merged["summary"]["gate"] == whole["summary"]["gate"]
    b = whole["baseline"]
    assert b["counts"] == {"new": 2, "unchanged": 3, "updated": 0, "absent": 0}
    assert b["keys"][0] == {"key": "tenant_id", "before_pct": 78.74, "after_pct": 97.4, "basis": "spend",
                            "before_usd": "0.000733", "after_usd": "0.020893", "rise_points": 18.66}
    assert b["cost"] == {"before_usd": "0.000931", "after_usd": "0.021451", "change_usd": "0.020520"}
    assert [g["state"] for g in b["groups"]] == ["new", "new", "unchanged", "unchanged", "unchanged"]


def test_a_new_key_or_basis_is_not_compared(tmp_path):
    """Nothing priced before, priced now: a share of calls and a share of spend are not comparable."""
    unpriced = dict(LLM, **{"gen_ai.request.model": "no-such-model-xyz"})
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_bytes(to_json_bytes(Tree("root", {}, [Tree("chat", unpriced)]).spans(trace=1)))
    b.write_bytes(to_json_bytes(Tree("root", {}, [Tree("chat", LLM)]).spans(trace=1)))
    old = baseline(tmp_path, a)
    res = invoke("check", b, "--baseline", old, "-f", "json")
    keys = {k["key"]: k for k in json.loads(res.stdout)["baseline"]["keys"]}
    assert keys["tenant_id"]["rise_points"] is None
    assert keys["tenant_id"]["before_pct"] == 100.0 and keys["tenant_id"]["after_pct"] == 100.0


def test_bad_baselines_are_one_line_exit_2(tmp_path):
    garbage = tmp_path / "bad.json"
    garbage.write_text("{nope")
    res = invoke("check", THREADPOOL, "--baseline", garbage)
    assert res.exit_code == 2 and res.output.strip().count("\n") == 0
    assert res.output.startswith(f"auditor: error: {garbage}: line 1 column 2: invalid JSON")
    res = invoke("check", THREADPOOL, "--baseline", tmp_path / "missing.json")
    assert res.exit_code == 2 and "cannot open" in res.output
    res = invoke("check", THREADPOOL, "--baseline-tolerance-pct", "5")
    assert res.exit_code == 2 and res.output == "auditor: error: --baseline-tolerance-pct needs --baseline\n"
    old = baseline(tmp_path, THREADPOOL)
    res = invoke("check", THREADPOOL, "--baseline", old, "--baseline-tolerance-pct", "-1")
    assert res.exit_code == 2 and "between 0 and 100" in res.output
    not_a_report = tmp_path / "list.json"
    not_a_report.write_text("[1, 2]")
    res = invoke("check", THREADPOOL, "--baseline", not_a_report)
    assert res.exit_code == 2 and res.output.startswith(f"auditor: error: {not_a_report}")


# ---------------------------------------------------------------- properties

from hypothesis import given  # noqa: E402

from auditor.baseline import BaselineRef, apply  # noqa: E402
from auditor.engine import audit  # noqa: E402
from test_properties import PLAN, SCHEMA, SETTINGS, trace_sets  # noqa: E402


def judged(spans):
    return audit(spans, SCHEMA, plan=PLAN)


@SETTINGS
@given(trace_sets())
def test_a_run_against_itself_is_all_known_and_passes(ts):
    r = judged([s for t in ts for s in t])
    got = apply(r, BaselineRef("self.json", r))
    assert got.gate.passed and got.gate.reasons == ()
    assert set(got.baseline.states.values()) <= {"unchanged"} and got.baseline.absent == ()
    assert got.baseline.new_leaks == () and got.baseline.fixed_leaks == ()
    assert all(k.rise in (0, None) for k in got.baseline.keys)


@SETTINGS
@given(trace_sets(), trace_sets())
def test_what_is_new_one_way_is_absent_the_other(xs, ys):
    x, y = judged([s for t in xs for s in t]), judged([s for t in ys for s in t])
    forward = apply(y, BaselineRef("x.json", x)).baseline
    backward = apply(x, BaselineRef("y.json", y)).baseline
    new = {g for g, state in forward.states.items() if state == "new"}
    assert new == {g.ident for g in backward.absent}
    assert {b.boundary for b in forward.new_leaks} == {b.boundary for b in backward.fixed_leaks}
    # a new group at or above the gate's severity is exactly what fails it
    fails = any(g.ident in new and y.policy.fails(g.severity) for g in y.groups)
    assert (not apply(y, BaselineRef("x.json", x, 100.0)).gate.passed) == fails


def test_junit_fails_exactly_what_the_baseline_gate_fails(tmp_path):
    import xml.etree.ElementTree as ET

    old = baseline(tmp_path, THREADPOOL)
    out = tmp_path / "r.xml"
    invoke("check", THREADPOOL, BAGGAGE, "--baseline", old, "-f", f"junit:{out}")
    failed = sorted((c.get("classname"), c.get("name"), c.find("failure").get("type"))
                    for c in ET.parse(out).getroot().iter("testcase") if c.find("failure") is not None)
    hop = "ATTR001 web-frontend / web_frontend.app : POST -> scoring-service / scoring_service.app : POST /score"
    assert failed == [
        ("attribution.tenant_id", hop, "ATTR001"),
        ("attribution.tenant_id", "unattributed spend for tenant_id", "baseline-share-rise"),
        ("attribution.workflow_id", hop, "ATTR001"),
        ("attribution.workflow_id", "unattributed spend for workflow_id", "baseline-share-rise"),
    ]
    invoke("check", THREADPOOL, "--baseline", old, "-f", f"junit:{out}")
    assert not any(c.find("failure") is not None for c in ET.parse(out).getroot().iter("testcase"))
