"""Exact scale-out: ``check --shard I/N`` on every shard, then ``auditor merge``, equals ``check``;
so does ``check --jobs N`` (the same shards in forked workers, merged in the process).

End to end through the CLI (click's CliRunner) on real files: OTLP protobuf and JSON lines
written from generated traces, including LLM calls recorded twice across traces (folded
only when the shards are merged), leaks, orphans and rejected spans.
"""

from __future__ import annotations

import json
import random

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.bench_check import write_corpus
from auditor.cli import cli
from auditor.shard import Shard, shard_of
from builders import LLM, mk, to_jsonl_bytes, to_otlp_json, to_request

SCHEMA = {
    "version": 1,
    "name": "shard-test",
    "scope": "path",
    "llm_calls": [{"attribute": "gen_ai.operation.name"}],
    "keys": {
        "tenant_id": {"sources": [{"attribute": "tenant_id"}]},
        "workflow_id": {"sources": [{"attribute": "workflow_id"}]},
    },
    "genai": {"enabled": False},
}


def run_cli(args: list[str]) -> dict:
    res = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert res.exit_code in (0, 1), res.output
    return res


def result_json(path) -> dict:
    doc = json.loads(path.read_text())
    doc.pop("run")  # run metadata (inputs, timings) is the only thing allowed to differ
    return doc


@st.composite
def trace(draw, no: int):
    n = draw(st.integers(1, 12))
    parents = [None] + [draw(st.integers(0, i - 1)) for i in range(1, n)]
    # High trace-id bits vary too: the shard hash must use the low 64 bits only.
    trace_no = no + (draw(st.integers(0, 3)) << 70)
    spans = []
    for i in range(n):
        attrs = {}
        if i == 0 or draw(st.booleans()):
            attrs["tenant_id"] = draw(st.sampled_from(["acme", "acme", "globex"]))
        if draw(st.booleans()):
            attrs["workflow_id"] = "wf"
        if draw(st.integers(0, 2)) == 0:  # evidence for the mechanism of a leak or headless call
            attrs["thread.name"] = draw(st.sampled_from(["MainThread", "ThreadPoolExecutor-0_1", "asyncio_0"]))
        if draw(st.integers(0, 2)) == 0:
            attrs.update(LLM)
            attrs["gen_ai.usage.input_tokens"] = draw(st.integers(0, 3000))
            if draw(st.booleans()):  # the same response id in another trace: one call, two records
                attrs["gen_ai.response.id"] = f"resp-{draw(st.integers(0, 4))}"
        p = parents[i]
        orphan = p is not None and draw(st.integers(0, 9)) == 0
        parent_id = None if p is None else (999_999 if orphan else no * 100 + p + 1)
        spans.append(
            mk(trace_no, no * 100 + i + 1, parent_id, f"op{i % 3}", draw(st.sampled_from(["a", "b"])),
               draw(st.sampled_from(["x", "y"])), attrs, start=i * 10, dur=5)
        )
    return spans


@st.composite
def corpus(draw):
    k = draw(st.integers(1, 7))
    return [draw(trace(t + 1)) for t in range(k)]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(corpus(), st.integers(1, 5), st.sampled_from(["pb", "jsonl"]), st.randoms(use_true_random=False))
def test_merging_all_shards_equals_auditing_the_whole(tmp_path_factory, traces, n, fmt, rnd):
    d = tmp_path_factory.mktemp("shards")
    schema = d / "schema.yaml"
    schema.write_text(json.dumps(SCHEMA))
    spans = [s for t in traces for s in t]
    rnd.shuffle(spans)
    batches = [spans[i:i + 7] for i in range(0, len(spans), 7)]
    # Rejected spans: of no trace (zero trace id), counted by shard 0, and of a trace (its span
    # id or name unusable), counted by that trace's shard, anywhere in the file.
    bad_ids = [(f"{t:032x}", "0" * 16) for t in rnd.sample(range(1, 40), 2)] + [("0" * 32, "1" * 16)]
    reqs = [to_request(b) for b in batches]
    for tid, sid in bad_ids:
        req = to_request([mk(1, 1, None)])
        span = req.resource_spans[0].scope_spans[0].spans[0]
        span.trace_id, span.span_id = bytes.fromhex(tid), bytes.fromhex(sid)
        reqs.insert(rnd.randrange(len(reqs) + 1), req)
    if fmt == "pb":
        data = b"".join(len(b).to_bytes(4, "big") + b for b in (r.SerializeToString() for r in reqs))
    else:
        docs = [to_otlp_json(r) for r in reqs]
        for doc in docs:  # one of a trace's rejections in JSON: a name that is not a string
            for sp in doc["resourceSpans"][0]["scopeSpans"][0]["spans"]:
                if sp["spanId"] == "0" * 16 and sp["traceId"] == bad_ids[0][0]:
                    sp["spanId"], sp["name"] = "1" * 16, 3
        data = b"".join(json.dumps(doc).encode() + b"\n" for doc in docs)
    src = d / f"in.{fmt}"
    src.write_bytes(data)

    said = run_cli(["check", str(src), "-s", str(schema), "--format", "json", "-o", str(d / "whole.json")]).stderr
    assert said.count("warning: 3 span(s) rejected; first: ") == 1
    shard_files = []
    for i in range(n):
        out = d / f"shard{i}.json"
        run_cli(["check", str(src), "-s", str(schema), "--shard", f"{i}/{n}", "--format", "json", "-o", str(out)])
        shard_files.append(str(out))
    run_cli(["merge", *shard_files, "--format", "json", "-o", str(d / "merged.json")])

    said_jobs = run_cli(["check", str(src), "-s", str(schema), "--jobs", str(n), "--format", "json", "-o", str(d / "jobs.json")]).stderr
    assert said_jobs == said  # the same warnings: every rejection counted once, the first of all named

    whole, merged = result_json(d / "whole.json"), result_json(d / "merged.json")
    assert merged == whole
    assert result_json(d / "jobs.json") == whole
    # each trace was audited by exactly one shard
    per_shard = [json.loads(open(f).read())["summary"]["traces"] for f in shard_files]
    assert sum(per_shard) == whole["summary"]["traces"]


def test_realistic_corpus_shards_merge_to_the_whole_with_the_default_schema(tmp_path):
    """The benchmark's corpus shape (leaks, cache tokens, three services) and the default schema."""
    src = tmp_path / "corpus.jsonl"
    write_corpus(src, 2000, "jsonl", seed=3, templates=12)
    run_cli(["check", str(src), "--format", "json", "-o", str(tmp_path / "whole.json")])
    files = []
    for i in range(3):
        files.append(str(tmp_path / f"s{i}.json"))
        run_cli(["check", str(src), "--shard", f"{i}/3", "--format", "json", "-o", files[-1]])
    run_cli(["merge", *files, "--format", "json", "-o", str(tmp_path / "merged.json")])
    whole = result_json(tmp_path / "whole.json")
    assert whole["summary"]["spans"] == 2000
    assert whole["summary"]["findings"]["ATTR001"] > 0
    assert result_json(tmp_path / "merged.json") == whole


def test_shard_of_is_the_low_64_bits_of_the_trace_id_mod_n():
    tid = "ffffffffffffffff" + "0000000000000007"
    assert shard_of(tid, 4) == 3
    assert shard_of(tid, 7) == 0
    assert shard_of("00000000000000000000000000000000", 3) == 0
    r = random.Random(1)
    ids = [f"{r.getrandbits(128):032x}" for _ in range(4000)]
    counts = [sum(1 for t in ids if shard_of(t, 4) == i) for i in range(4)]
    assert all(900 < c < 1100 for c in counts), counts  # random ids spread evenly
    assert Shard.parse("2/4").owns("0" * 31 + "6")


@pytest.mark.parametrize("spec", ["4/4", "-1/2", "1", "a/b", "0/0"])
def test_bad_shard_is_a_one_line_usage_error(tmp_path, spec):
    src = tmp_path / "t.jsonl"
    src.write_bytes(to_jsonl_bytes([[mk(1, 1, None, attrs={"tenant_id": "a"})]]))
    res = CliRunner().invoke(cli, ["check", str(src), "--shard", spec])
    assert res.exit_code == 2
    assert res.output.strip().splitlines() == [f"auditor: error: --shard {spec!r}: expected I/N with 0 <= I < N, e.g. 0/4"]
