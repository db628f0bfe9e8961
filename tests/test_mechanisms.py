"""Root cause, not just class: each mechanism named from evidence in the trace's own spans.

Every mechanism has a sample made by the library that produces it (sample_traces/mechanisms,
sample_traces/generate_mechanisms.py) and its golden names it exactly, with its evidence and the
code location of the span where the patch goes. Without evidence the answer is "unknown".
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor import mechanism
from auditor.cli import cli
from auditor.model import FLAG_REMOTE_KNOWN, FLAG_REMOTE_PARENT
from builders import mk
from expected import essentials

ROOT = Path(__file__).resolve().parent.parent
MECH = ROOT / "sample_traces" / "mechanisms"
SAMPLES = sorted(p.name[: -len(".otlp.json")] for p in MECH.glob("*.otlp.json"))


def check(*args: str):
    return CliRunner().invoke(cli, ["check", *args])


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_names_its_mechanism_exactly(name):
    res = check("--format", "json", str(MECH / f"{name}.otlp.json"))
    doc = json.loads(res.stdout)
    got = essentials(doc)
    got["exit_code"] = res.exit_code
    got["mechanisms"] = []
    for f in doc["findings"]:
        m = f["mechanism"]
        if m is None:
            continue
        assert m["patch"] == mechanism.PATCHES[m["name"]]
        assert f["code_location"] == (m["location"] or f["code_location"])  # SARIF reads this one
        got["mechanisms"].append({"code": f["code"], "key": f["key"], "span_id": f["span_id"],
                                  **{k: v for k, v in m.items() if k != "patch"}})
    assert got == json.loads((MECH / f"{name}.expected.json").read_text())


def test_every_mechanism_has_a_sample_that_names_it():
    named = {m["name"] for n in SAMPLES for m in json.loads((MECH / f"{n}.expected.json").read_text())["mechanisms"]}
    assert named == set(mechanism.NAMES)


def test_each_sample_names_the_mechanism_it_was_made_for():
    made_for = {
        "thread_pool": {"thread-pool (high)"}, "run_in_executor": {"thread-pool (high)"},
        "async_task": {"async-task (low)"}, "closed_scope": {"closed-scope (high)"},
        "gateway_allow_list": {"gateway-allow-list (high)"}, "receiver_no_baggage": {"receiver-no-baggage (high)"},
        "queue_hop": {"queue-hop (high)"}, "unknown": {"unknown (none)"},
    }
    assert set(SAMPLES) == set(made_for)
    for name, want in made_for.items():
        found = json.loads((MECH / f"{name}.expected.json").read_text())["findings"]
        assert {f["mechanism"] for f in found if "mechanism" in f} == want, name


def test_core_threadpool_without_thread_attributes_says_unknown():
    doc = json.loads(check("--format", "json", str(ROOT / "sample_traces/core/threadpool.otlp.json")).stdout)
    mechs = {(f["code"], f["mechanism"]["name"]) for f in doc["findings"] if f["mechanism"]}
    assert mechs == {("TRACE004", "unknown")}
    assert {h["mechanism"]["name"] for h in doc["headless"]} == {"unknown"}


# ------------------------------------------------------------------ reading the evidence


def _k(s, kind: int, flags: int = 0):
    return replace(s, kind=kind, flags=flags)


def test_no_evidence_is_unknown_never_a_guess():
    p, c = mk(1, 1, None, attrs={"tenant_id": "a"}), mk(1, 2, 1, start=10, dur=10)
    m = mechanism.for_hop(p, c)
    assert (m.name, m.confidence, m.location) == ("unknown", "none", None)
    h = mechanism.for_headless(mk(2, 3, None))
    assert (h.name, h.confidence) == ("unknown", "none")


@pytest.mark.parametrize("pattrs, cattrs, want", [
    ({"thread.name": "MainThread", "thread.id": 1}, {"thread.name": "ThreadPoolExecutor-0_3", "thread.id": 2}, ("thread-pool", "high")),
    ({"thread.name": "MainThread"}, {"thread.name": "asyncio_0"}, ("thread-pool", "high")),
    ({"thread.id": 1, "thread.name": "main"}, {"thread.id": 7, "thread.name": "worker"}, ("thread-pool", "medium")),
    ({"thread.id": 1}, {"thread.id": 1}, ("unknown", "none")),
])
def test_thread_evidence(pattrs, cattrs, want):
    m = mechanism.for_hop(mk(1, 1, None, attrs=pattrs), mk(1, 2, 1, attrs=cattrs, start=10, dur=10))
    assert (m.name, m.confidence) == want


def test_hop_kinds_flags_timing_and_gateway_metadata():
    p = mk(1, 1, None, service="a", dur=100)
    c = mk(1, 2, 1, service="b", start=10, dur=10)
    assert mechanism.for_hop(_k(p, 4), _k(c, 5)).name == "queue-hop"
    assert mechanism.for_hop(_k(p, 4), _k(c, 5)).confidence == "high"
    assert mechanism.for_hop(p, _k(c, 5)).confidence == "medium"
    remote = mechanism.for_hop(_k(p, 3), _k(c, 2, FLAG_REMOTE_KNOWN | FLAG_REMOTE_PARENT))
    assert (remote.name, remote.confidence) == ("receiver-no-baggage", "high")
    # Formats without span flags (ClickHouse, Zipkin) keep the kinds: a SERVER span of another service.
    assert mechanism.for_hop(_k(p, 3), _k(c, 2)) == remote
    assert mechanism.for_hop(_k(p, 3), _k(c, 1)).name == "unknown"  # an INTERNAL span: no hop evidence
    late = mk(1, 2, 1, service="a", start=200, dur=10)
    m = mechanism.for_hop(p, late)
    assert (m.name, m.confidence) == ("closed-scope", "high")
    assert m.evidence.startswith("'op' started 100 ns after its parent 'op' ended")
    assert mechanism.for_hop(p, mk(1, 2, 1, service="a", start=100, dur=10)).name == "unknown"  # started as it ended
    skewed = mk(1, 2, 1, service="a", start=100 + 3601 * 10**9, dur=10)  # an hour late: the clocks disagree
    assert mechanism.for_hop(p, skewed).name == "unknown"
    assert mechanism.for_hop(p, replace(late, service="other")).name == "unknown"  # two clocks
    gw = mechanism.for_hop(p, mk(1, 2, 1, service="litellm", attrs={"metadata.user_api_key_hash": ""}, start=10))
    assert (gw.name, gw.confidence) == ("gateway-allow-list", "high")


def test_headless_thread_names():
    def name(t):
        m = mechanism.for_headless(mk(1, 1, None, attrs={"thread.name": t}))
        return m.name, m.confidence
    assert name("ThreadPoolExecutor-12_0") == ("thread-pool", "high")
    assert name("asyncio_3") == ("thread-pool", "high")
    assert name("MainThread") == ("async-task", "low")
    assert name("celery-worker") == ("thread-pool", "medium")


def test_hostile_evidence_is_clipped_and_the_location_bounded():
    huge = "x" * 1_000_000
    attrs = {"thread.name": huge, "code.file.path": huge, "code.line.number": True, "code.function.name": huge}
    m = mechanism.for_headless(mk(1, 1, None, name=huge, attrs=attrs))
    assert len(m.evidence) < 400
    assert m.location == ("x" * 1000, None, "x" * 200)  # a bool is not a line number
    assert mechanism.code_location({"code.file.path": "a.py", "code.line.number": "42"}) == ("a.py", 42, None)
    assert mechanism.code_location({"code.file.path": "a.py", "code.line.number": "9" * 40}) == ("a.py", None, None)
    p = mk(1, 1, None, name=huge, service=huge, attrs={"messaging.system": huge})
    assert len(mechanism.for_hop(p, _k(mk(1, 2, 1, name=huge), 5)).evidence) < 400


# ------------------------------------------------------------------ through the formats


def test_sarif_points_at_the_span_where_the_patch_goes():
    res = check("--format", "sarif", str(MECH / "thread_pool.otlp.json"))
    gold = json.loads((MECH / "thread_pool.expected.json").read_text())["mechanisms"]
    results = json.loads(res.stdout)["runs"][0]["results"]
    leak = next(r for r in results if r["ruleId"] == "ATTR001")
    where = next(m["location"] for m in gold if m["code"] == "ATTR001")
    assert leak["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": where["filepath"], "uriBaseId": "%SRCROOT%"}, "region": {"startLine": where["lineno"]}}
    assert where["function"] == "thread_pool"  # the parent span's code: where submit() is called
    assert leak["properties"]["mechanism"]["name"] == "thread-pool"
    assert leak["properties"]["mechanism"]["patch"] == mechanism.PATCHES["thread-pool"]
    assert "Cause: thread-pool (high confidence)" in leak["message"]["text"]
    assert "contextvars.copy_context()" in leak["message"]["text"]


def test_text_report_names_the_cause_per_boundary_and_per_finding_group():
    out = check(str(MECH / "queue_hop.otlp.json")).stdout.splitlines()
    causes = [line.strip() for line in out if line.strip().startswith("cause:")]
    assert causes[0] == "cause: queue-hop (high confidence, 1 of 1 trace)"  # the leaking boundary
    assert len(causes) == 3  # and each of its two finding groups (one per key), with the evidence
    assert causes[1] == causes[2]
    assert causes[1].startswith("cause: queue-hop (high): a message hop: PRODUCER 'summaries publish' -> CONSUMER")


def test_shards_merge_to_the_whole_with_mechanisms(tmp_path):
    files = [str(p) for p in sorted(MECH.glob("*.otlp.json"))] + [str(ROOT / "sample_traces/core/threadpool.otlp.json")]
    whole = tmp_path / "whole.json"
    check(*files, "--format", "json", "-o", str(whole))
    shards = []
    for i in range(3):
        shards.append(str(tmp_path / f"s{i}.json"))
        check(*files, "--shard", f"{i}/3", "--format", "json", "-o", shards[-1])
    res = CliRunner().invoke(cli, ["merge", *shards, "--format", "json", "-o", str(tmp_path / "merged.json")])
    assert res.exit_code in (0, 1), res.output
    w, m = json.loads(whole.read_text()), json.loads((tmp_path / "merged.json").read_text())
    w.pop("run"), m.pop("run")
    assert m == w
    assert len({f["mechanism"]["name"] for f in w["findings"] if f["mechanism"]}) == len(mechanism.NAMES)


def test_a_malformed_mechanism_in_a_merged_result_is_a_one_line_error(tmp_path):
    part = tmp_path / "p.json"
    check(str(MECH / "unknown.otlp.json"), "--format", "json", "-o", str(part))
    doc = json.loads(part.read_text())
    next(f for f in doc["findings"] if f["mechanism"])["mechanism"] = ["not", "an", "object"]
    part.write_text(json.dumps(doc))
    res = CliRunner().invoke(cli, ["merge", str(part)])
    assert res.exit_code == 2
    assert len(res.output.strip().splitlines()) == 1 and "not a complete auditor JSON result" in res.output


def test_a_jobs_main_thread_call_is_not_called_an_async_task():
    """TRACE006 (the service serves no request): a call on the main thread is the job's own."""
    from builders import LLM, to_json_bytes

    attrs = {**LLM, "thread.name": "MainThread"}
    src = to_json_bytes([mk(1, 1, None, name="chat gpt-4o-mini", service="nightly-job", attrs=attrs)])
    res = CliRunner().invoke(cli, ["check", "--format", "json", "-"], input=src)
    (f,) = [f for f in json.loads(res.stdout)["findings"] if f["code"] == "TRACE006"]
    assert (f["mechanism"]["name"], f["mechanism"]["confidence"]) == ("unknown", "none")
    assert f["mechanism"]["evidence"].startswith("the call ran on the main thread of a service that serves no request")
    doc = json.loads(res.stdout)
    assert doc["headless"][0]["mechanism"]["name"] == "async-task"  # the per-trace fact; judged in finish


def test_a_boundary_counts_the_traces_each_mechanism_explains():
    doc = json.loads(check("--format", "json", str(ROOT / "sample_traces/core/baggage_dropped.otlp.json")).stdout)
    assert [b["mechanisms"] for b in doc["boundaries"]] == [[{"name": "receiver-no-baggage", "confidence": "high", "traces": 3}]]
    doc = json.loads(check("--format", "json", *map(str, sorted(MECH.glob("*.otlp.json")))).stdout)
    got = {(b["parent"]["name"], b["child"]["name"]): [(m["name"], m["traces"]) for m in b["mechanisms"]]
           for b in doc["boundaries"]}
    assert got == {
        ("fan_out", "summarise_section"): [("thread-pool", 1)],
        ("agent.run", "ChatCompletion"): [("closed-scope", 1)],
        ("POST /v1/notes", "ChatCompletion"): [("unknown", 1)],
        ("POST /v1/invoices/summary", "litellm_request"): [("gateway-allow-list", 1)],
        ("POST", "POST /score"): [("receiver-no-baggage", 1)],
        ("summaries publish", "summaries process"): [("queue-hop", 1)],
    }
