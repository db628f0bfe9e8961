"""``check --stream``: traces audited as the window closes equal the whole-file audit, in
bounded memory, and spans arriving after their trace was audited are reported."""

from __future__ import annotations

import json
import re
from unittest import mock

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.bench_check import write_corpus
from auditor import spill, stream
from auditor.cli import cli
from auditor.plan import Plan
from auditor.schema import compile_schema
from auditor.stream import TraceWindow
from builders import LLM, mk, to_jsonl_bytes, to_length_prefixed

SCHEMA = {
    "version": 1,
    "name": "stream-test",
    "scope": "path",
    "llm_calls": [{"attribute": "gen_ai.operation.name"}],
    "keys": {"tenant_id": {"sources": [{"attribute": "tenant_id"}]}},
    "genai": {"enabled": False},
}


def invoke(args):
    res = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert res.exit_code in (0, 1), res.output + res.stderr
    return res


def without_run(path) -> dict:
    doc = json.loads(path.read_text())
    doc.pop("run")
    return doc


@st.composite
def spread_traces(draw):
    """Traces whose spans are spread over at most ``window`` consecutive records."""
    window = draw(st.integers(1, 4))
    n_traces = draw(st.integers(1, 8))
    records: dict[int, list] = {}
    for t in range(1, n_traces + 1):
        n = draw(st.integers(1, 8))
        parents = [None] + [draw(st.integers(0, i - 1)) for i in range(1, n)]
        first = draw(st.integers(0, 12))
        for i in range(n):
            attrs = {"tenant_id": "acme"} if i == 0 or draw(st.booleans()) else {}
            if draw(st.integers(0, 2)) == 0:
                attrs.update(LLM)
                attrs["gen_ai.response.id"] = f"r{draw(st.integers(0, 3))}"  # duplicates across traces
            p = parents[i]
            span = mk(t, t * 100 + i + 1, None if p is None else t * 100 + p + 1, f"op{i % 3}",
                      draw(st.sampled_from(["a", "b"])), "x", attrs, start=i * 10, dur=5)
            records.setdefault(first + draw(st.integers(0, window - 1)), []).append(span)
    # empty records in between count towards the window too
    batches = [records.get(r, []) for r in range(max(records) + 1)]
    return window, batches


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(spread_traces(), st.sampled_from(["jsonl", "pb"]), st.sampled_from([1, 4, 20_000]))
def test_stream_equals_whole_when_traces_complete_within_the_window(tmp_path_factory, case, fmt, batch_spans):
    """Also with tiny audit batches and spill chunks: findings then go to disk in many sorted
    runs of many chunks, and folded duplicates span batches."""
    window, batches = case
    d = tmp_path_factory.mktemp("stream")
    schema = d / "schema.json"
    schema.write_text(json.dumps(SCHEMA))
    nonempty = [b for b in batches if b]
    if fmt == "jsonl":
        src = d / "in.jsonl"
        # an empty record is an OTLP document with no spans
        src.write_bytes(b"".join(to_jsonl_bytes([b]) if b else b'{"resourceSpans": []}\n' for b in batches))
    else:
        src = d / "in.pb"
        assert nonempty
        src.write_bytes(to_length_prefixed(nonempty))  # fewer records: still within the window
    invoke(["check", str(src), "-s", str(schema), "--format", "json", "-o", str(d / "whole.json")])
    with mock.patch.object(stream, "AUDIT_BATCH_SPANS", batch_spans), mock.patch.object(spill, "CHUNK", 2):
        res = invoke(["check", str(src), "-s", str(schema), "--stream", "--window", str(window),
                      "--format", "json", "-o", str(d / "stream.json")])
    assert res.stderr == ""
    assert without_run(d / "stream.json") == without_run(d / "whole.json")


def test_stream_equals_whole_on_the_benchmark_corpus(tmp_path):
    src = tmp_path / "c.jsonl"
    write_corpus(src, 3000, "jsonl", seed=5, templates=10)
    invoke(["check", str(src), "--format", "json", "-o", str(tmp_path / "whole.json")])
    invoke(["check", str(src), "--stream", "--window", "1", "--format", "json", "-o", str(tmp_path / "s.json")])
    whole = without_run(tmp_path / "whole.json")
    assert whole["summary"]["traces"] == 150
    assert without_run(tmp_path / "s.json") == whole


@pytest.mark.parametrize("fmt", ["json", "sarif", "junit", "markdown", "text", "html"])
def test_stream_reports_equal_whole_in_every_format_with_findings_spilled(tmp_path, fmt):
    """The reporters read the spilled findings back (several passes, SARIF's worst-first cut
    included) and write the same report as from findings in memory."""
    src = tmp_path / "c.jsonl"
    write_corpus(src, 3000, "jsonl", seed=11, templates=10)
    common = ["--format", fmt, "--no-color"] if fmt == "text" else ["--format", fmt]
    invoke(["check", str(src), *common, "-o", str(tmp_path / "whole")])
    with mock.patch.object(stream, "AUDIT_BATCH_SPANS", 200), mock.patch.object(spill, "CHUNK", 7):
        invoke(["check", str(src), "--stream", "--window", "1", *common, "-o", str(tmp_path / "stream")])
    whole, streamed = (tmp_path / "whole").read_text(), (tmp_path / "stream").read_text()
    if fmt in ("json", "sarif", "html", "text", "markdown", "junit"):  # timed figures differ between runs
        whole, streamed = (re.sub(r"\d+\.\d+ ?s\b|\"seconds\": [0-9.e-]+|time=\"[0-9.]+\"", "T", t) for t in (whole, streamed))
    assert streamed == whole


def test_late_spans_are_counted_and_reported(tmp_path):
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(SCHEMA))
    root = mk(1, 1, None, "root", attrs={"tenant_id": "acme"})
    child = mk(1, 2, 1, "llm", attrs={**LLM})
    other = [mk(t, t * 10, None, "x", attrs={"tenant_id": "acme"}) for t in (2, 3, 4)]
    src = tmp_path / "late.jsonl"
    src.write_bytes(to_jsonl_bytes([[root], [other[0]], [other[1]], [other[2]], [child]]))
    res = invoke(["check", str(src), "-s", str(schema), "--stream", "--window", "2", "--format", "json",
                  "-o", str(tmp_path / "late.json")])
    assert res.stderr.strip() == (
        "auditor: warning: 1 span(s) arrived more than --window 2 records after their trace was last seen "
        "and were audited apart from it; raise --window"
    )
    doc = json.loads((tmp_path / "late.json").read_text())
    # the trace was audited twice: the child is then an orphan (TRACE001) and its own never-minted call
    assert doc["summary"]["traces"] == 5
    assert sorted((f["code"], f["span_id"]) for f in doc["findings"]) == [
        ("ATTR002", f"{2:016x}"), ("TRACE001", f"{2:016x}")
    ]
    # with a window that covers it, nothing is late and the leak is found on the hop
    res = invoke(["check", str(src), "-s", str(schema), "--stream", "--window", "4", "--format", "json",
                  "-o", str(tmp_path / "ok.json")])
    assert res.stderr == ""
    doc = json.loads((tmp_path / "ok.json").read_text())
    assert doc["summary"]["traces"] == 4
    assert [(f["code"], f["parent_span_id"], f["span_id"]) for f in doc["findings"]] == [
        ("ATTR001", f"{1:016x}", f"{2:016x}")
    ]


def test_window_holds_only_open_traces():
    """Memory is bounded by the window: 5000 records of short traces never keep more than
    ``window`` records' traces open."""
    tw = TraceWindow(Plan.fixed(compile_schema(SCHEMA, origin="t")), window=3)
    peak = 0
    for t in range(1, 5001):
        tw.add([mk(t, 1, None, "r", attrs={"tenant_id": "a"}), mk(t, 2, 1, "c", attrs={**LLM})])
        peak = max(peak, tw.pending_traces)
    assert peak == 3
    parts = tw.finish()
    assert (parts.counts.traces, parts.counts.spans) == (5000, 10000)
    assert len(parts.calls) == 5000
    assert {f.code for f in parts.findings} == {"ATTR001"}


def test_a_full_disk_under_the_spill_file_is_one_line_and_exit_2(tmp_path):
    """The findings' temporary file on a device that is always full (/dev/full: every write
    fails with ENOSPC, as a full TMPDIR does)."""
    src = tmp_path / "c.jsonl"
    write_corpus(src, 400, "jsonl", seed=3, templates=4)
    with mock.patch.object(spill.tempfile, "TemporaryFile", lambda **kw: open("/dev/full", "wb", buffering=0)):
        res = CliRunner().invoke(cli, ["check", str(src), "--stream", "--format", "json", "-o", str(tmp_path / "o.json")])
    assert res.exit_code == 2, res.output
    assert res.stderr == (f"auditor: error: cannot write --stream's findings and call records to a temporary file in {spill.tempfile.gettempdir()}: "
                          "No space left on device (free space there, or point TMPDIR at a larger disk)\n")
    assert not (tmp_path / "o.json").exists()
