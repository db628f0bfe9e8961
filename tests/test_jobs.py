"""``check --jobs N``: forked workers, one shard of the traces each, merged exactly.

The whole-result equality (``--jobs N`` == one process == shards merged) is pinned in
``tests/test_shard_merge.py`` (generated traces, both formats, rejected spans) and
``tests/test_one_answer.py`` (every sample). Here: the early shard filter of the protobuf and
JSON decoders, the worker runner's failures, and the command line's choices.
"""

from __future__ import annotations

import gzip
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from auditor import forked, ingest, pipeline
from auditor.cli import cli
from auditor.errors import InputError
from auditor.ingest import otlp_json
from auditor.ingest.otlp_proto import spans_of
from auditor.plan import Plan
from auditor.projection import Projection
from auditor.shard import Shard, shard_of, shard_of_bytes
from builders import mk, to_jsonl_bytes, to_otlp_json, to_pb, to_request

PROJ = Projection.of(["tenant_id", "gen_ai.operation.name"])


@st.composite
def messages(draw):
    """A request of random traces (ids with random high and low bits), some spans with ids no
    span can have (zero, short), so rejections are in the mix: of spans without a usable trace
    id, and of spans of a trace whose own span id is not usable."""
    spans = []
    for t in range(draw(st.integers(1, 12))):
        trace = draw(st.integers(1, 2**128 - 1))
        for i in range(draw(st.integers(1, 4))):
            spans.append(mk(trace, t * 10 + i + 1, None if i == 0 else t * 10 + 1, attrs={"tenant_id": f"t{t}", "x": 1}))
    req = to_request(spans)
    listed = req.resource_spans[0].scope_spans[0].spans
    for s in listed[: draw(st.integers(0, 3))]:
        s.trace_id = draw(st.sampled_from([bytes(16), b"\x01" * 15]))
    for k in draw(st.lists(st.integers(0, len(listed) - 1), max_size=3)):
        listed[k].span_id = draw(st.sampled_from([bytes(8), b"\x02" * 7]))
    return ExportTraceServiceRequest.FromString(req.SerializeToString())


def _kept(bad, shard: Shard) -> list[tuple]:
    return [(r.where, r.reason, r.trace_id, r.order) for r in bad if shard.keeps(r)]


def _each_rejection_kept_by_one_shard(whole_bad, n: int) -> None:
    assert sorted(x for i in range(n) for x in _kept(whole_bad, Shard(i, n))) == sorted(_kept(whole_bad, Shard(0, 1)))


@settings(max_examples=60, deadline=None)
@given(messages(), st.integers(1, 5), st.data())
def test_the_protobuf_decoders_shard_filter_keeps_exactly_the_shards_spans_and_rejections(msg, n, data):
    i = data.draw(st.integers(0, n - 1))
    whole, whole_bad = spans_of(msg, PROJ, "f")
    mine, mine_bad = spans_of(msg, Projection(PROJ.names, PROJ.prefixes, shard=(i, n)), "f")
    assert mine == [s for s in whole if shard_of(s.trace_id, n) == i]
    assert _kept(mine_bad, Shard(i, n)) == _kept(whole_bad, Shard(i, n))
    assert [r.trace_id for r in whole_bad] == [s.trace_id.hex() if len(s.trace_id) == 16 and any(s.trace_id) else None
                                              for s in msg.resource_spans[0].scope_spans[0].spans
                                              if len(s.trace_id) != 16 or not any(s.trace_id) or len(s.span_id) != 8 or not any(s.span_id)]
    _each_rejection_kept_by_one_shard(whole_bad, n)


@settings(max_examples=60, deadline=None)
@given(messages(), st.integers(1, 5), st.data())
def test_the_json_decoders_shard_filter_keeps_exactly_the_shards_spans_and_rejections(msg, n, data):
    """The JSON decoder skips another shard's span as soon as it has read its trace id: the
    span's rejection (a bad span id, name, kind or attribute) is its own shard's to count."""
    doc = to_otlp_json(msg)
    listed = doc["resourceSpans"][0]["scopeSpans"][0]["spans"]
    for k in data.draw(st.lists(st.integers(0, len(listed) - 1), max_size=3)):
        field, value = data.draw(st.sampled_from([("name", 3), ("kind", "SPAN_KIND_NOPE"), ("attributes", [7]),
                                                   ("startTimeUnixNano", "soon"), ("spanId", 12)]))
        listed[k][field] = value
    i = data.draw(st.integers(0, n - 1))
    whole, whole_bad = otlp_json.decode(doc, PROJ, "f")
    mine, mine_bad = otlp_json.decode(doc, Projection(PROJ.names, PROJ.prefixes, shard=(i, n)), "f")
    assert mine == [s for s in whole if shard_of(s.trace_id, n) == i]
    assert _kept(mine_bad, Shard(i, n)) == _kept(whole_bad, Shard(i, n))
    assert [r.order for r in whole_bad] == sorted(r.order for r in whole_bad)  # in the document's order
    _each_rejection_kept_by_one_shard(whole_bad, n)


def test_shard_of_bytes_is_shard_of_the_hex():
    for tid in (bytes(range(16)), b"\xff" * 16, bytes(15) + b"\x07", b"\x80" + bytes(7) + b"\x01" * 8):
        for n in (1, 2, 3, 7, 64):
            assert shard_of_bytes(tid, n) == shard_of(tid.hex(), n)


# ---------------------------------------------------------------- the worker runner


def _square(x, tick):
    tick(x)
    return x * x


def _fail_input(tick):
    raise InputError("f.pb: offset 12: expected a varint")


def _bug(tick):
    return {}["missing"]


def _die(tick):
    os.kill(os.getpid(), signal.SIGKILL)


def _sleep(tick):
    time.sleep(60)


def _unpicklable(tick):
    return lambda: None


def test_results_come_back_in_task_order_and_progress_adds_up():
    from functools import partial

    told = []
    assert forked.run([partial(_square, x) for x in (3, 1, 4, 1, 5)], told.append) == [9, 1, 16, 1, 25]
    assert sum(told) == 14


def test_a_workers_user_error_is_raised_as_it_was():
    with pytest.raises(InputError, match=r"^f\.pb: offset 12: expected a varint$"):
        forked.run([_fail_input, lambda tick: 1])


def test_a_workers_bug_comes_back_with_its_traceback():
    with pytest.raises(forked.WorkerError, match=r"(?s)Traceback.*in _bug.*KeyError: 'missing'"):
        forked.run([_bug, lambda tick: 0])
    with pytest.raises(forked.WorkerError, match=r"(?s)Traceback.*PicklingError|AttributeError"):
        forked.run([_unpicklable, lambda tick: 0])


def test_a_worker_that_dies_is_named_with_its_exit_status():
    with pytest.raises(forked.WorkerError, match=r"^audit worker 1 of 2 ended without a result \(exit status -9; "):
        forked.run([_die, lambda tick: 1])


def test_the_last_task_runs_here_and_its_failure_stops_the_workers():
    t0 = time.monotonic()
    with pytest.raises(InputError, match="^f.pb: offset 12"):
        forked.run([_sleep, _sleep, _fail_input])
    assert time.monotonic() - t0 < 30
    assert multiprocessing.active_children() == []
    pid = os.getpid()
    assert forked.run([lambda tick: os.getpid(), lambda tick: os.getpid()])[1] == pid


def test_workers_end_when_their_parent_is_killed(tmp_path):
    pids = tmp_path / "pids"
    code = (
        "import os, sys, time\n"
        "from auditor import forked\n"
        f"def sleeper(tick):\n    open({str(pids)!r}, 'a').write(f'{{os.getpid()}}\\n')\n    time.sleep(120)\n"
        "forked.run([sleeper, sleeper, sleeper])\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (not pids.exists() or len(pids.read_text().split()) < 3):
            time.sleep(0.05)
        workers = [int(p) for p in pids.read_text().split() if int(p) != parent.pid]
        assert len(workers) == 2
    finally:
        parent.kill()  # SIGKILL: no finally runs in it
        parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(p) for p in workers):
        time.sleep(0.05)
    assert not any(_alive(p) for p in workers)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("text, cpus", [("max 100000\n", 64), ("200000 100000\n", 2), ("50000 100000\n", 1), ("", 64)])
def test_a_cgroup_cpu_quota_caps_the_usable_cpus(text, cpus):
    assert forked.cpus_under_quota(64, text) == cpus


# ---------------------------------------------------------------- the command line


def _big(path, head: bytes):
    with open(path, "wb") as fh:  # only its head and its size are read
        fh.write(head)
        fh.truncate(pipeline.AUTO_JOBS_MIN_BYTES)
    return str(path)


def test_auto_jobs_forks_only_for_large_otlp_files(tmp_path):
    small = tmp_path / "small.pb"
    small.write_bytes(to_pb([mk(1, 1, None)]))
    pb = to_pb([mk(1, 1, None, attrs={"tenant_id": "a"})])
    big = _big(tmp_path / "big.pb", pb)
    records = _big(tmp_path / "records.pb", len(pb).to_bytes(4, "big") + pb)
    zipped = _big(tmp_path / "big.pb.gz", gzip.compress(pb))
    lines = to_jsonl_bytes([[mk(1, 1, None)]])
    json_lines = _big(tmp_path / "big.jsonl", lines)
    bom_lines = _big(tmp_path / "bom.jsonl", b"\xef\xbb\xbf" + lines)
    zipped_lines = _big(tmp_path / "big.jsonl.gz", gzip.compress(lines))
    # A document over many lines is parsed whole by every worker (N copies of its parse), and so
    # is a line too long to be told one by its first SPLIT_LINE_BYTES: one process.
    json_doc = _big(tmp_path / "big.json", json.dumps(json.loads(lines), indent=2).encode())
    long_line = tmp_path / "long.jsonl"
    long_line.write_bytes(lines[:-3] + b" " * ingest.SPLIT_LINE_BYTES + lines[-3:])
    long_record = tmp_path / "long.pb"  # length-prefixed records, the first longer than a line may be
    with open(long_record, "wb") as fh:
        fh.write((ingest.SPLIT_LINE_BYTES + 1).to_bytes(4, "big") + pb)
        fh.truncate(ingest.SPLIT_LINE_BYTES + 64)
    short_records = _big(tmp_path / "short.pb", (pipeline.AUTO_JOBS_MIN_BYTES - 4).to_bytes(4, "big") + pb)
    zipkin = _big(tmp_path / "zipkin.json", b'[{"traceId": "' + b"1" * 32 + b'", "id": "' + b"2" * 16 + b'", "name": "x"}]')
    all_cpus = min(forked.usable_cpus(), forked.MAX_AUTO_JOBS)
    assert [pipeline.auto_jobs((str(p),)) for p in (big, records, zipped, json_lines, bom_lines, zipped_lines)] == [all_cpus] * 6
    assert pipeline.auto_jobs((big, json_lines)) == all_cpus
    assert pipeline.auto_jobs((str(small),)) == 1
    assert pipeline.auto_jobs((json_doc,)) == 1
    assert pipeline.auto_jobs((str(long_line),)) == 1
    assert pipeline.auto_jobs((str(long_record),)) == 1
    assert pipeline.auto_jobs((short_records,)) == all_cpus
    assert pipeline.auto_jobs((zipkin,)) == 1  # its decoder reads every span: every worker would decode all of it
    assert pipeline.auto_jobs((big, zipkin)) == 1
    assert pipeline.auto_jobs(("-",)) == 1
    assert pipeline.auto_jobs((big, "-")) == 1


@pytest.mark.parametrize("extra, message", [
    (["--stream"], "--jobs splits the traces into shards itself: drop --shard / --stream"),
    (["--shard", "0/2"], "--jobs splits the traces into shards itself: drop --shard / --stream"),
    (["--engine", "dask"], "--engine dask partitions the work itself: drop --shard / --stream / --jobs"),
])
def test_jobs_with_another_way_of_splitting_is_a_usage_error(tmp_path, extra, message):
    src = tmp_path / "t.pb"
    src.write_bytes(to_pb([mk(1, 1, None)]))
    res = CliRunner().invoke(cli, ["check", str(src), "--jobs", "2", *extra])
    assert res.exit_code == 2
    assert res.output.strip().splitlines() == [f"auditor: error: {message}"]


def test_jobs_on_stdin_is_a_usage_error(tmp_path):
    res = subprocess.run([sys.executable, "-m", "auditor", "check", "-", "--jobs", "2"], input=to_pb([mk(1, 1, None)]),
                         capture_output=True)
    assert res.returncode == 2
    assert res.stderr.decode().strip().splitlines() == [
        "auditor: error: --jobs reads every input once per worker: stdin can be read only once; use --jobs 1"]


def test_a_bad_file_gives_the_same_one_line_error_with_workers(tmp_path):
    good = tmp_path / "good.pb"
    good.write_bytes(to_pb([mk(1, 1, None, attrs={"tenant_id": "a"})]))
    bad = tmp_path / "bad.json"
    bad.write_text('{"resourceSpans": [{"scopeSpans": [{"spans": 3}]}]}')
    outs = []
    for jobs in ("1", "2"):
        res = subprocess.run([sys.executable, "-m", "auditor", "check", str(good), str(bad), "--jobs", jobs],
                             capture_output=True, text=True)
        assert res.returncode == 2
        outs.append(res.stderr)
    assert outs[0] == outs[1]
    assert outs[0].strip().splitlines() == [f"auditor: error: {bad}: line 1: $.resourceSpans[0].scopeSpans[0].spans: expected an array, got int"]


@pytest.mark.parametrize("fmt", ["pb", "jsonl"])
def test_rejected_spans_are_noted_once_with_workers_naming_the_first_of_all(tmp_path, fmt):
    """Rejections of several shards' traces, and of spans without a trace id (shard 0's): the
    count of all of them and the first in the file (trace 1's: shard 1's of 2, 3 or 5), as one
    process says it."""
    batches = []
    for line in range(3):
        msg = to_request([mk(t, line * 10 + t, None) for t in range(1, 7)])
        listed = msg.resource_spans[0].scope_spans[0].spans
        listed[line].span_id = bytes(8)  # trace line + 1: a usable trace id, its own shard counts it
        listed[5 - line].trace_id = bytes(16)  # no usable trace id: shard 0 counts it
        batches.append(msg)
    if fmt == "pb":
        data = b"".join(len(m.SerializeToString()).to_bytes(4, "big") + m.SerializeToString() for m in batches)
    else:
        data = b"".join(json.dumps(to_otlp_json(m)).encode() + b"\n" for m in batches)
    src = tmp_path / f"t.{fmt}"
    src.write_bytes(data)
    errs = []
    for jobs in ("1", "2", "3", "5"):
        res = subprocess.run([sys.executable, "-m", "auditor", "check", str(src), "--jobs", jobs, "-o", os.devnull],
                             capture_output=True, text=True)
        assert res.returncode in (0, 1), res.stderr
        errs.append(res.stderr)
    assert errs[1:] == errs[:1] * 3
    first = "record at offset 0: resourceSpans[0].scopeSpans[0].spans[0]" if fmt == "pb" else "line 1: $.resourceSpans[0].scopeSpans[0].spans[0]"
    assert [line for line in errs[0].splitlines() if "rejected" in line] == [f"auditor: warning: 6 span(s) rejected; first: {src}: {first}: " + (
        "expected a 16-byte non-zero traceId, an 8-byte non-zero spanId and an empty or 8-byte parentSpanId" if fmt == "pb" else
        "expected a 32-hex-digit non-zero traceId, a 16-hex-digit non-zero spanId and an empty or 16-hex-digit parentSpanId")]


def test_in_an_array_of_documents_the_first_rejection_is_the_first_documents(tmp_path):
    """Rejections are placed by their document in the array first: a late span of the first
    document (trace 1's, shard 1's) comes before the first span of the second (shard 0's)."""
    first, second = to_request([mk(t, t, None) for t in range(1, 7)]), to_request([mk(t, 10 + t, None) for t in range(1, 7)])
    first.resource_spans[0].scope_spans[0].spans[5].trace_id = (1).to_bytes(16, "big")
    first.resource_spans[0].scope_spans[0].spans[5].span_id = bytes(8)
    second.resource_spans[0].scope_spans[0].spans[0].trace_id = bytes(16)
    src = tmp_path / "array.json"
    src.write_text(json.dumps([to_otlp_json(first), to_otlp_json(second)], indent=1))
    said = [CliRunner().invoke(cli, ["check", str(src), "--jobs", jobs, "-o", os.devnull]).stderr for jobs in ("1", "2")]
    assert said[0] == said[1]
    assert f"warning: 2 span(s) rejected; first: {src}: $[0].resourceSpans[0].scopeSpans[0].spans[5]: " in said[0]


def test_a_file_that_changes_while_workers_read_it_is_named_in_a_warning(tmp_path, monkeypatch):
    """Each worker opens the file itself: one appended to meanwhile may be read differently by
    two workers (one process reads it once), so the command says so."""
    src = tmp_path / "t.jsonl"
    src.write_bytes(to_jsonl_bytes([[mk(t, t, None)] for t in range(1, 5)]))
    real_run = forked.run

    def appended_meanwhile(tasks, progress=None):
        done = real_run(tasks, progress)
        with open(src, "ab") as fh:  # as an exporter appending to the file would
            fh.write(to_jsonl_bytes([[mk(9, 9, None)]]))
        return done

    res = CliRunner().invoke(cli, ["check", str(src), "--jobs", "2", "-o", os.devnull])
    assert res.exit_code in (0, 1) and "changed" not in res.stderr
    monkeypatch.setattr(forked, "run", appended_meanwhile)
    res = CliRunner().invoke(cli, ["check", str(src), "--jobs", "2", "-o", os.devnull])
    assert res.exit_code in (0, 1), res.output
    assert res.stderr.splitlines() == [
        f"auditor: warning: {src} changed while 2 workers read it, each on its own: they may have read different versions "
        "of it; audit it once it is complete, or with --jobs 1"]


def test_progress_counts_every_span_once_across_workers(tmp_path):
    spans = [mk(t, t * 10 + i, None if i == 1 else t * 10 + 1, attrs={"tenant_id": "a"}) for t in range(1, 40) for i in range(1, 4)]
    msg = to_request(spans)
    msg.resource_spans[0].scope_spans[0].spans[4].span_id = bytes(8)  # rejected
    src = tmp_path / "t.pb"
    src.write_bytes(msg.SerializeToString())
    for jobs in (1, 2, 3):
        seen: list[int] = []
        result = pipeline.audit_files([str(src)], Plan.of(None), progress=seen.append, jobs=jobs)
        assert (sum(seen), result.counts.spans) == (117, 116)


ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("command", [
    ["cost", "--by", "tenant_id", "--by", "gen_ai.request.model", "-f", "json"],
    ["baseline", "-o", "-"],
])
def test_cost_and_baseline_give_the_same_answer_with_workers(command):
    samples = [str(p) for p in sorted((ROOT / "sample_traces").glob("*/*.otlp.json"))]
    outs = []
    for jobs in ("1", "3"):
        res = CliRunner().invoke(cli, [command[0], *samples, *command[1:], "--jobs", jobs])
        assert res.exit_code == 0, res.output
        doc = json.loads(res.stdout)
        doc.pop("run", None)
        outs.append(doc)
    assert outs[0] == outs[1]
    assert outs[0]  # not an empty answer


def test_jobs_with_a_clickhouse_url_is_a_usage_error():
    res = CliRunner().invoke(cli, ["check", "clickhouse://127.0.0.1:1/otel?table=otel_traces", "--jobs", "2"])
    assert res.exit_code == 2
    assert res.output.strip().splitlines() == [
        "auditor: error: --jobs reads every input once per worker: clickhouse://127.0.0.1:1/otel?table=otel_traces is a URL "
        "(ClickHouse streams its rows once); use --jobs 1"]


def test_jobs_on_a_pipe_names_it_and_a_missing_file_or_directory_errs_as_without_workers(tmp_path):
    good = tmp_path / "good.pb"
    good.write_bytes(to_pb([mk(1, 1, None)]))
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    res = CliRunner().invoke(cli, ["check", str(good), str(fifo), "--jobs", "2"])
    assert res.exit_code == 2
    assert res.output.strip().splitlines() == [
        f"auditor: error: --jobs reads every input once per worker: {fifo} is not a regular file "
        "(a pipe, socket or device is read once); use --jobs 1"]
    for path, why in ((tmp_path / "missing.pb", "No such file or directory"), (tmp_path, "Is a directory")):
        outs = [CliRunner().invoke(cli, ["check", str(good), str(path), "--jobs", jobs]) for jobs in ("1", "2")]
        assert [r.exit_code for r in outs] == [2, 2]
        assert outs[0].output == outs[1].output
        assert outs[1].output.strip().splitlines() == [f"auditor: error: {path}: cannot open: {why}"]
