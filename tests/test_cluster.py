"""``check --engine dask`` on a real local Dask cluster (2 worker processes) equals ``check``.

Spans of each trace are scattered over several files (and Parquet row groups), so only the
cluster's groupby by trace id brings a trace together; the JSON result must equal the single
process's exactly (run metadata aside).
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.bench_check import write_corpus
from auditor.cli import cli
from auditor.cluster import audit_on_dask, units
from auditor.errors import InputError
from auditor.ingest import decode_bytes
from auditor.pipeline import audit_files
from auditor.plan import Plan
from auditor.projection import EVERYTHING
from auditor.result_json import to_json
from builders import to_jsonl_bytes, to_length_prefixed
from test_shard_merge import SCHEMA, corpus

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def scheduler():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address="127.0.0.1:0",
                                  silence_logs=40) as cluster:
        yield cluster.scheduler_address


def same(a, b) -> None:
    da, db_ = to_json(a), to_json(b)
    da.pop("run"), db_.pop("run")
    assert da == db_


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(corpus(), st.integers(1, 4), st.sampled_from(["pb", "jsonl"]), st.randoms(use_true_random=False))
def test_cluster_equals_one_process_over_random_splits(scheduler, tmp_path_factory, traces, k, fmt, rnd):
    d = tmp_path_factory.mktemp("split")
    schema = d / "schema.yaml"
    schema.write_text(json.dumps(SCHEMA))
    spans = [s for t in traces for s in t]
    rnd.shuffle(spans)
    files = []
    for i in range(k):  # span j goes to a random file: traces are split across files and workers
        mine = [s for j, s in enumerate(spans) if rnd.randrange(k) == i] if i < k - 1 else None
        files.append(mine)
    taken = {id(s) for f in files if f for s in f}
    files[-1] = [s for s in spans if id(s) not in taken]
    paths = []
    for i, chunk in enumerate(files):
        if not chunk:
            continue
        batches = [chunk[j:j + 5] for j in range(0, len(chunk), 5)]
        p = d / f"part{i}.{fmt}"
        p.write_bytes(to_length_prefixed(batches) if fmt == "pb" else to_jsonl_bytes(batches))
        paths.append(str(p))
    plan = Plan.of(str(schema))
    want = audit_files(paths, plan)
    got = audit_on_dask(paths, plan, scheduler=scheduler)
    same(got, want)


def test_corpus_split_over_files_and_the_default_schema_with_detection(scheduler, tmp_path):
    src = tmp_path / "corpus.jsonl"
    write_corpus(src, 3000, "jsonl", seed=5, templates=12)
    lines = src.read_bytes().splitlines(keepends=True)
    for i in range(3):  # every third batch: each trace's spans end up in different files
        (tmp_path / f"c{i}.jsonl").write_bytes(b"".join(lines[i::3]))
    paths = [str(tmp_path / f"c{i}.jsonl") for i in range(3)]
    plan = Plan.of(None)
    want = audit_files([str(src)], plan)
    assert want.counts.spans == 3000
    same(audit_on_dask(paths, plan, scheduler=scheduler), want)


def test_parquet_dataset_split_by_row_group(scheduler, tmp_path):
    chdb = pytest.importorskip("chdb")
    del chdb
    from clickhouse_support import exporter_row, shared
    from pathlib import Path

    src = Path(__file__).resolve().parent.parent / "sample_traces" / "dialects" / "mixed-openinference-litellm.otlp.json"
    spans, _ = decode_bytes(src.read_bytes(), str(src), EVERYTHING)
    ch = shared()
    ch.truncate()
    ch.insert(exporter_row(s) for s in spans)
    ds = tmp_path / "dataset"
    ds.mkdir()
    # small row groups and two files: a trace's rows lie in several units of work
    for i in range(2):
        (ds / f"part-{i}.parquet").write_bytes(ch.export(
            "Parquet", where=f"WHERE cityHash64(SpanId) % 2 = {i}", settings="output_format_parquet_row_group_size=3"))
    todo, names = units([str(ds)], 4)
    assert len(names) == 2 and len(todo) > 2  # row groups are units
    plan = Plan.of(None)
    same(audit_on_dask([str(ds)], plan, scheduler=scheduler), audit_files([str(src)], plan))


def test_engine_dask_through_the_cli_starts_its_own_local_cluster(tmp_path):
    src = tmp_path / "c.jsonl"
    write_corpus(src, 400, "jsonl", seed=2, templates=4)
    one = CliRunner().invoke(cli, ["check", "--format", "json", str(src)], catch_exceptions=False)
    two = CliRunner().invoke(cli, ["check", "--engine", "dask", "--workers", "2", "--format", "json", str(src)],
                             catch_exceptions=False)
    assert one.exit_code == two.exit_code
    a, b = json.loads(one.stdout), json.loads(two.stdout)
    a.pop("run"), b.pop("run")
    assert a == b


def test_unreadable_input_on_a_worker_is_the_same_one_line_error(scheduler, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": 5}]}]}], }')
    with pytest.raises(InputError, match="bad.json: line 1 column"):
        audit_on_dask([str(bad)], Plan.of(None), scheduler=scheduler)
    res = CliRunner().invoke(cli, ["check", "--engine", "dask", "--scheduler", scheduler, "--shard", "0/2", str(bad)])
    assert res.exit_code == 2 and "--engine dask" in res.output


def test_cluster_progress_bar_on_a_terminal_stderr(scheduler, tmp_path, monkeypatch):
    import io
    import sys

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    src = tmp_path / "c.jsonl"
    write_corpus(src, 200, "jsonl", seed=4, templates=3)
    err = Tty()
    monkeypatch.setattr(sys, "stderr", err)
    result = audit_on_dask([str(src)], Plan.of(None), scheduler=scheduler, progress=True)
    assert result.counts.spans == 200
    assert "auditing on the cluster" in err.getvalue()
