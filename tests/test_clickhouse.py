"""ClickHouse ``otel_traces`` (the Collector clickhouseexporter's schema) as an input.

Every trace sample goes into a real ClickHouse table (chdb) created from the exporter's DDL,
is exported by ClickHouse SQL as Parquet and as JSONEachRow, and each export audits exactly
like the OTLP original: the whole JSON result (findings, boundaries, cost), run metadata aside.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.cli import cli
from auditor.ingest import decode_bytes
from auditor.ingest import clickhouse as ch
from auditor.projection import EVERYTHING
from builders import to_json_bytes
from clickhouse_support import exporter_row, older_exporter_row, shared

pytest.importorskip("chdb")
pytest.importorskip("pyarrow")

ROOT = Path(__file__).resolve().parent.parent / "sample_traces"
SAMPLES = sorted(p for p in ROOT.glob("*/*.otlp.json") if "logs" not in p.name)


@pytest.fixture(scope="module")
def clickhouse():
    return shared()


def check_json(path: Path) -> dict:
    res = CliRunner().invoke(cli, ["check", "--format", "json", str(path)], catch_exceptions=False)
    assert res.exit_code in (0, 1), res.output
    doc = json.loads(res.stdout)
    doc.pop("run")
    return doc


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_parquet_and_jsoneachrow_exports_audit_like_the_otlp_original(sample, clickhouse, tmp_path):
    spans, rejected = decode_bytes(sample.read_bytes(), str(sample), EVERYTHING)
    assert spans and not rejected
    clickhouse.truncate()
    clickhouse.insert(exporter_row(s) for s in spans)
    parquet = tmp_path / "export.bin"  # recognised by content, not by name
    parquet.write_bytes(clickhouse.export("Parquet"))
    assert parquet.read_bytes()[:4] == b"PAR1"
    rows = tmp_path / "export.txt"
    rows.write_bytes(clickhouse.export("JSONEachRow"))
    want = check_json(_as_clickhouse_reads_it(spans, tmp_path) or sample)
    assert want["summary"]["spans"] == len(spans)
    assert check_json(parquet) == want
    assert check_json(rows) == want


def _as_clickhouse_reads_it(spans, tmp_path: Path) -> Path | None:
    """The one thing the table loses: Map(String, String) stringifies every value, so a string
    that spells a typed value is read back as that type. Agent Framework writes
    gen_ai.response.finish_reasons as the JSON text '["stop"]' (GENAI003 in OTLP), exactly what
    the exporter writes for the array ["stop"]. The original with such strings typed (None when
    it has none) is what the export must audit like."""
    types = ch.typed_attributes()
    changed = False
    out = []
    for s in spans:
        attrs = dict(s.attributes)
        for k, v in s.attributes.items():
            if isinstance(v, str) and k in types:
                typed = ch.retype(types[k], v)
                if typed != v:
                    attrs[k], changed = typed, True
        out.append(replace(s, attributes=attrs))
    if not changed:
        return None
    path = tmp_path / "typed.json"
    path.write_bytes(to_json_bytes(out))
    return path


def test_numbers_stringified_by_the_exporter_are_typed_again_and_wrong_ones_stay_wrong():
    types = ch.typed_attributes()
    assert types["gen_ai.usage.input_tokens"] == "int"
    assert types["gen_ai.request.temperature"] == "double"
    # old names are typed like their new ones (Strands writes both): else '1500' next to 1500
    # "differs" in GENAI002's redundancy note, which the OTLP original never says
    assert types["gen_ai.usage.prompt_tokens"] == types["gen_ai.usage.cache_read_input_tokens"] == "int"
    assert ch.retype("int", "1200") == 1200
    assert ch.retype("int", "12.5") == 12.5  # a double where an int belongs: GENAI003 says double
    assert ch.retype("int", "many") == "many"  # not a number at all: GENAI003 says string
    assert ch.retype("boolean", "true") is True
    assert ch.retype("string[]", '["stop"]') == ("stop",)
    row = {"Timestamp": "2024-05-01 12:00:00.5", "TraceId": "0af7651916cd43dd8448eb211c80319c",
           "SpanId": "b7ad6b7169203331", "ParentSpanId": "", "SpanName": "chat m", "SpanKind": "Client",
           "ServiceName": "svc", "ResourceAttributes": {"service.name": "svc"}, "ScopeName": "s",
           "SpanAttributes": {"gen_ai.usage.input_tokens": "12", "gen_ai.request.max_tokens": "lots",
                              "tenant_id": "007"},
           "Duration": "1000", "Events.Name": ["e"], "Events.Timestamp": ["2024-05-01 12:00:00.6"]}
    s = ch.decode_row(row, EVERYTHING, "t")
    assert s.start_ns == 1714564800_500000000 and s.end_ns == s.start_ns + 1000 and s.kind == 3
    assert s.attributes == {"gen_ai.usage.input_tokens": 12, "gen_ai.request.max_tokens": "lots", "tenant_id": "007"}


def test_genai003_on_clickhouse_rows_only_for_values_that_were_wrong(clickhouse, tmp_path):
    sample = ROOT / "dialects" / "otel.otlp.json"
    spans, _ = decode_bytes(sample.read_bytes(), str(sample), EVERYTHING)
    rows = [exporter_row(s) for s in spans]
    llm = next(r for r in rows if "gen_ai.request.model" in r["SpanAttributes"])
    llm["SpanAttributes"]["gen_ai.request.max_tokens"] = "lots"
    clickhouse.truncate()
    clickhouse.insert(rows)
    f = tmp_path / "t.parquet"
    f.write_bytes(clickhouse.export("Parquet"))
    doc = check_json(f)
    msgs = [x["message"] for x in doc["findings"] if x["code"] == "GENAI003"]
    assert len(msgs) == 1 and "gen_ai.request.max_tokens" in msgs[0] and "'lots'" in msgs[0]


def test_bad_rows_and_files_are_one_line_errors(tmp_path):
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1" + b"\0" * 64)
    res = CliRunner().invoke(cli, ["check", str(bad)])
    assert res.exit_code == 2
    assert str(bad) in res.output and "expected a Parquet file" in res.output and "Traceback" not in res.output
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"TraceId": "zz", "SpanId": "b7ad6b7169203331", "SpanName": "x", "Timestamp": 0}) + "\n")
    spans, rejected = decode_bytes(rows.read_bytes(), str(rows), EVERYTHING)
    assert spans == [] and "line 1" in rejected[0].where and "TraceId" in rejected[0].reason


def test_gzipped_parquet_on_stdin(clickhouse, tmp_path):
    import gzip

    sample = ROOT / "core" / "threadpool.otlp.json"
    spans, _ = decode_bytes(sample.read_bytes(), str(sample), EVERYTHING)
    clickhouse.truncate()
    clickhouse.insert(exporter_row(s) for s in spans)
    data = gzip.compress(clickhouse.export("Parquet"))
    res = CliRunner().invoke(cli, ["check", "--format", "json", "-"], input=data, catch_exceptions=False)
    doc = json.loads(res.stdout)
    doc.pop("run")
    assert doc == check_json(sample)


def test_clickhouse_url_is_parsed_into_one_bounded_query():
    from auditor.ingest import clickhouse_server as srv

    p = srv.parse("clickhouse://bob:s3cret@ch.internal:9000/otel?table=otel_traces&since=2026-05-01&until=2026-05-02&part=1/4")
    assert (p["host"], p["port"], p["username"], p["password"], p["database"]) == ("ch.internal", 9000, "bob", "s3cret", "otel")
    sql, params = srv.query(p)
    assert sql.startswith("SELECT Timestamp, TraceId, SpanId") and "FROM otel.otel_traces WHERE" in sql
    assert "cityHash64(TraceId) % 4 = 1" in sql and sql.endswith("ORDER BY TraceId")
    assert params == {"since": "2026-05-01", "until": "2026-05-02"}
    assert srv._safe("clickhouse://bob:s3cret@h/otel") == "clickhouse://bob:***@h/otel"
    with pytest.raises(Exception, match="plain ClickHouse identifier"):
        srv.parse("clickhouse://h/otel?table=x;DROP")


def test_unreachable_clickhouse_server_is_a_one_line_error_without_the_password():
    import socket

    pytest.importorskip("clickhouse_connect")
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res = CliRunner().invoke(cli, ["check", f"clickhouse://u:pw@127.0.0.1:{port}/otel?table=otel_traces"])
    assert res.exit_code == 2, res.output
    assert "127.0.0.1" in res.output and "pw@" not in res.output and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_an_older_exporters_table_with_the_scope_in_span_attributes(clickhouse, tmp_path):
    sample = ROOT / "dialects" / "openllmetry.otlp.json"
    spans, _ = decode_bytes(sample.read_bytes(), str(sample), EVERYTHING)
    clickhouse.truncate("otel_old")
    clickhouse.insert((older_exporter_row(s) for s in spans), db="otel_old")
    f = tmp_path / "older.parquet"
    f.write_bytes(clickhouse.export("Parquet", db="otel_old"))
    assert check_json(f) == check_json(sample)
