"""Attribution across span links and queues (issue 15, item 2).

Real Celery and RabbitMQ samples give exactly their expected findings, from OTLP JSON and
protobuf; a PRODUCER -> CONSUMER hop is a ``messaging`` boundary whether the consumer is a
child or a linked new trace; links to spans outside the input are unresolved (ATTR006, a note)
and never guessed; hostile link values are dropped and counted; and the answer is the same
whole, as shards merged through their JSON (producer and consumer apart), and through the
sidecar fed by the real SDK exporter in separate requests.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor import ingest
from auditor.boundary import classify, fix_hint
from auditor.cli import cli
from auditor.engine import audit
from auditor.model import BoundaryClass, Boundary, Endpoint, RunInfo
from auditor.projection import EVERYTHING
from auditor.result_json import parts_from_json, to_json
from auditor.rollup import finish, merge_all
from builders import LLM, mk, sid, tid, to_json_bytes, to_pb
from conftest import simple_schema
from expected import essentials

LINKS = Path(__file__).resolve().parent.parent / "sample_traces" / "links"
SAMPLES = ["celery-parent", "celery-links", "rabbitmq"]
PRODUCER, CONSUMER, SERVER = 4, 5, 2
KEYS = {"tenant_id": "acme", "workflow_id": "weekly-report"}


def _check(*args: str) -> tuple[int, dict]:
    res = CliRunner().invoke(cli, ["check", "--format", "json", *args])
    assert res.exit_code in (0, 1), res.output
    return res.exit_code, json.loads(res.stdout)


def _without_run(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k != "run"}


# ---------------------------------------------------------------- the real samples


@pytest.mark.parametrize("name", SAMPLES)
@pytest.mark.parametrize("form", ["otlp.json", "pb.gz"])
def test_link_sample_matches_its_expected_findings(name, form):
    rc, doc = _check(str(LINKS / f"{name}.{form}"))
    assert rc == 1
    assert essentials(doc) == json.loads((LINKS / f"{name}.expected.json").read_text())
    assert doc["summary"]["rejected_links"] == 0


@pytest.mark.parametrize("name", SAMPLES)
def test_jaeger_and_tempo_forms_keep_the_links_and_audit_like_otlp(name):
    """Jaeger writes span links as FOLLOWS_FROM references (one into another trace is never a
    parent); Tempo's download is OTLP JSON with links as they are. Zipkin has no links."""
    from test_jaeger_zipkin_tempo import _audit, _same, _schema_for, to_jaeger, to_tempo

    sample = LINKS / f"{name}.otlp.json"
    data = sample.read_bytes()
    schema = _schema_for(sample)
    spans = ingest.load([str(sample)], EVERYTHING).spans
    want = _audit(data, schema)
    _same(_audit(json.dumps(to_jaeger(spans)).encode(), schema), want)
    _same(_audit(json.dumps(to_tempo(json.loads(data))).encode(), schema), want)


def test_celery_parents_by_default_and_links_with_use_span_links():
    """What the installed opentelemetry-instrumentation-celery does: the worker's run span is the
    child of the apply_async span by default, a new trace's root with one link when asked."""
    by_name = {}
    for name in ("celery-parent", "celery-links"):
        spans = ingest.load([str(LINKS / f"{name}.otlp.json")], EVERYTHING).spans
        by_name[name] = {s.span_id: s for s in spans}
    parent = by_name["celery-parent"]
    runs = [s for s in parent.values() if s.name.startswith("run/")]
    assert runs and all(s.kind == CONSUMER and not s.links and parent[s.parent_span_id].kind == PRODUCER for s in runs)
    linked = by_name["celery-links"]
    runs = [s for s in linked.values() if s.name.startswith("run/")]
    assert len(runs) == 3 and all(s.kind == CONSUMER and s.parent_span_id == "" and len(s.links) == 1 for s in runs)


def test_celery_links_sample_names_the_hop_the_attributed_consumer_and_the_unresolved_link():
    _, doc = _check(str(LINKS / "celery-links.otlp.json"))
    f = {(x["code"], x["key"], x["trace_id"]): x for x in doc["findings"] if x["code"].startswith("ATTR")}
    leak = f[("ATTR001", "tenant_id", "87a036cc55b32f872f5fa6b966ba3138")]
    assert leak["boundary"]["class"] == "messaging"
    assert (leak["parent_span_id"], leak["values"]["parent"]) == ("7778cc361be8aa88", "acme")
    assert leak["llm_calls_affected"] == ["b8c586787659ed66"]
    assert "a span link to producer span 7778cc361be8aa88 in trace 8bc85a0b9136a5c0af7503633152ccf4" in leak["message"]
    # The consumer that sets the keys from its task arguments: nothing about attribution.
    assert not [x for x in doc["findings"] if x["trace_id"].endswith("2506b3") and x["code"].startswith("ATTR")]
    # The scheduler's producer span is not in the file: unresolved, a note, and ATTR002 stands.
    note = f[("ATTR006", "tenant_id", "fcab08235a6f6b1e0a0b0739fb25b2db")]
    assert note["severity"] == "note" and note["llm_calls_affected"] == ["3609642f705ae5b4"]
    assert "trace fdec65fe721297377222d7283ab5a383 span 93548b905e5c7474" in note["message"]
    assert f[("ATTR002", "tenant_id", "fcab08235a6f6b1e0a0b0739fb25b2db")]["severity"] == "error"
    text = CliRunner().invoke(cli, ["check", str(LINKS / "celery-links.otlp.json")]).stdout.splitlines()
    assert "  1. [messaging] web / opentelemetry.instrumentation.celery : apply_async/reports.summarise" in text
    assert "       -> report-worker / opentelemetry.instrumentation.celery : run/reports.summarise" in text


def test_rabbitmq_parent_hop_is_messaging_and_the_consumer_that_copies_baggage_is_clean():
    _, doc = _check(str(LINKS / "rabbitmq.otlp.json"))
    [b] = doc["boundaries"]
    assert (b["parent"]["name"], b["child"]["name"], b["class"]) == ("reports send", "reports receive", "messaging")
    assert b["child"]["service"] == "report-worker"
    assert "message headers" in b["fix"] and "Celery task headers" in b["fix"]
    assert not [x for x in doc["findings"] if x["code"].startswith("ATTR") and x["trace_id"].endswith("e6d968")]


def test_classify_producer_to_consumer_is_messaging_with_its_own_fix():
    p = mk(1, 1, None, "send", "api", kind=PRODUCER)
    c = mk(1, 2, 1, "receive", "worker", kind=CONSUMER)
    assert classify(p, c) is BoundaryClass.MESSAGING
    assert classify(p, mk(1, 3, 1, "x", "worker", kind=1)) is BoundaryClass.NETWORK
    assert classify(mk(1, 4, None, "x", "api", kind=3), c) is BoundaryClass.NETWORK
    e = Endpoint("a", "b", "c")
    assert "propagate the context into the message headers" in fix_hint(Boundary(e, e, BoundaryClass.MESSAGING))


# ---------------------------------------------------------------- judging, exactly


def _pair(consumer_attrs: dict | None = None, producer_attrs: dict | None = None, link=None):
    """A request that publishes (trace 1) and a consumer trace that links to its producer span (trace 2)."""
    producer_attrs = KEYS if producer_attrs is None else producer_attrs
    return [
        mk(1, 1, None, "POST /jobs", "web", attrs=KEYS, kind=SERVER),
        mk(1, 2, 1, "publish jobs", "web", "mq", attrs=producer_attrs, kind=PRODUCER),
        mk(2, 3, None, "process jobs", "worker", "mq", attrs=consumer_attrs or {}, kind=CONSUMER,
           links=(link or (tid(1), sid(2)),)),
        mk(2, 4, 3, "chat", "worker", "llm", attrs={**LLM, **(consumer_attrs or {})}),
    ]


def _attr(result):
    return sorted((f.code, f.key, f.trace_id[-1:], f.span_id[-1:], f.parent_span_id and f.parent_span_id[-1:],
                   f.boundary.cls.value if f.boundary else None, f.severity.value)
                  for f in result.findings if f.code.startswith("ATTR"))


def test_a_linked_consumer_that_lacks_the_key_is_a_messaging_leak_not_never_minted():
    r = audit(_pair(), simple_schema(keys=("tenant_id",)))
    assert _attr(r) == [("ATTR001", "tenant_id", "2", "3", "2", "messaging", "error")]
    [b] = r.boundaries
    assert (str(b.boundary), b.llm_calls_affected, b.spans_affected) == (
        "web / mq : publish jobs -> worker / mq : process jobs", 1, 2)
    assert r.key("tenant_id").llm_calls_missing == 1  # the share still counts the call


def test_a_consumer_that_carries_the_key_reports_nothing():
    assert _attr(audit(_pair({"tenant_id": "acme"}), simple_schema())) == []


def test_a_producer_without_the_key_leaves_never_minted():
    r = audit(_pair(producer_attrs={}), simple_schema())  # no LLM call below the producer: no leak there
    assert _attr(r) == [("ATTR002", "tenant_id", "2", "4", "3", None, "error")]


def test_a_link_outside_the_input_is_unresolved_and_never_guessed():
    r = audit(_pair(link=(tid(9), sid(9))), simple_schema())
    assert _attr(r) == [("ATTR002", "tenant_id", "2", "4", "3", None, "error"),
                        ("ATTR006", "tenant_id", "2", "3", None, None, "note")]
    # A link to a span that is in the input but not a PRODUCER span reads as unresolved too.
    r = audit(_pair(link=(tid(1), sid(1))), simple_schema())
    assert [x[0] for x in _attr(r)] == ["ATTR002", "ATTR006"]


def test_an_internal_span_with_links_below_the_root_claims_nothing():
    spans = _pair()
    spans.insert(3, mk(2, 5, 3, "batch", "worker", "mq", kind=1, links=((tid(1), sid(2)),)))
    spans[-1] = mk(2, 4, 5, "chat", "worker", "llm", attrs=LLM)
    r = audit(spans, simple_schema())
    assert _attr(r) == [("ATTR001", "tenant_id", "2", "3", "2", "messaging", "error")]


def test_turning_codes_off_applies_to_link_findings():
    doc = {"version": 1, "name": "t", "scope": "path", "llm_calls": [{"attribute": "gen_ai.operation.name"}],
           "keys": {"tenant_id": {"sources": [{"attribute": "tenant_id"}]}}, "genai": {"enabled": False},
           "severity": {"ATTR001": "off", "ATTR006": "off"}}
    from auditor.schema import compile_schema

    schema = compile_schema(doc, origin="t")
    assert _attr(audit(_pair(), schema)) == []
    assert _attr(audit(_pair(link=(tid(9), sid(9))), schema)) == [("ATTR002", "tenant_id", "2", "4", "3", None, "error")]


# ---------------------------------------------------------------- hostile links


def _json_with_links(links) -> bytes:
    doc = json.loads(to_json_bytes(_pair()))
    for rs in doc["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for s in ss["spans"]:
                if s["name"] == "process jobs":
                    s["links"] = links
    return json.dumps(doc).encode()


@pytest.mark.parametrize("links, kept, dropped", [
    ("not a list", 0, 1),
    ([1, None, "x", []], 0, 4),
    ([{"traceId": 7, "spanId": {}}, {"traceId": "zz" * 16, "spanId": "00" * 8}, {"traceId": "0" * 32, "spanId": "1" * 16}], 0, 3),
    ([{"traceId": "ab" * 15, "spanId": "01" * 8}, {"spanId": "01" * 8}, {"traceId": "ab" * 16}], 0, 3),
    ([{"traceId": f"{1:032x}", "spanId": f"{2:016x}"}, {"traceId": "x" * 10_000_000, "spanId": "y"}], 1, 1),
    ([{"traceId": f"{1:032x}", "spanId": f"{i:016x}"} for i in range(1, 301)], 128, 172),
    ([{"traceId": f"{1:032x}", "spanId": f"{2:016x}"}] * 5, 1, 0),  # repeats are one link
])
def test_hostile_links_are_dropped_and_counted_never_the_span(tmp_path, links, kept, dropped):
    path = tmp_path / "t.otlp.json"
    path.write_bytes(_json_with_links(links))
    spans = ingest.load([str(path)], EVERYTHING).spans
    [consumer] = [s for s in spans if s.name == "process jobs"]
    assert (len(consumer.links), consumer.links_dropped) == (kept, dropped)
    rc, doc = _check(str(path))
    assert (doc["summary"]["spans"], doc["summary"]["rejected_spans"], doc["summary"]["rejected_links"]) == (4, 0, dropped)


@pytest.mark.parametrize("form", ["json", "pb"])
def test_links_are_read_on_roots_and_consumer_spans_only_in_every_format(tmp_path, form):
    """The audit judges links of roots and CONSUMER spans; decoders read only those (hot path)."""
    spans = _pair()
    spans[3] = mk(2, 4, 3, "chat", "worker", "llm", attrs=LLM, links=((tid(1), sid(2)),))  # a child, not a consumer
    path = tmp_path / f"t.{form}"
    path.write_bytes(to_json_bytes(spans) if form == "json" else to_pb(spans))
    got = {s.name: s.links for s in ingest.load([str(path)], EVERYTHING).spans}
    assert got == {"POST /jobs": (), "publish jobs": (), "process jobs": ((tid(1), sid(2)),), "chat": ()}


def test_hostile_protobuf_links_are_dropped_and_counted(tmp_path):
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    req = ExportTraceServiceRequest.FromString(to_pb(_pair()))
    for rs in req.resource_spans:
        for ss in rs.scope_spans:
            for s in ss.spans:
                if s.name == "process jobs":
                    for t, sp in ((b"\x01" * 15, b"\x02" * 8), (b"\x00" * 16, b"\x02" * 8), (b"\x01" * 16, b""), (b"\x01" * 16, b"\x00" * 8)):
                        ln = s.links.add()
                        ln.trace_id, ln.span_id = t, sp
    path = tmp_path / "t.pb.gz"
    path.write_bytes(gzip.compress(req.SerializeToString()))
    rc, doc = _check(str(path))
    assert doc["summary"]["rejected_links"] == 4
    assert [(f["code"], f["boundary"]["class"]) for f in doc["findings"] if f["code"] == "ATTR001"] == [
        ("ATTR001", "messaging"), ("ATTR001", "messaging")]


# ---------------------------------------------------------------- exact merge, producer and consumer apart


@st.composite
def linked_corpus(draw):
    """Producer traces (some PRODUCER spans carry the keys) and consumer traces linking to them,
    to spans outside the input, or to several producers (a batch)."""
    n_prod = draw(st.integers(1, 4))
    spans, producers = [], []
    for p in range(1, n_prod + 1):
        keys = {k: v for k, v in KEYS.items() if draw(st.booleans())}
        spans.append(mk(p, p * 10, None, "POST /jobs", "web", attrs=keys, kind=SERVER))
        carried = keys if draw(st.booleans()) else {}
        spans.append(mk(p, p * 10 + 1, p * 10, f"publish q{p % 2}", "web", "mq", attrs=carried, kind=PRODUCER))
        producers.append((tid(p), sid(p * 10 + 1)))
    for c in range(100, 100 + draw(st.integers(1, 5))):
        targets = draw(st.lists(st.sampled_from(producers + [(tid(999), sid(999))]), min_size=1, max_size=3))
        own = {k: v for k, v in KEYS.items() if draw(st.integers(0, 3)) == 0}
        root_kind = draw(st.sampled_from([CONSUMER, 1]))
        spans.append(mk(c, c * 10, None, "process", "worker", "mq", attrs=own, kind=root_kind, links=tuple(targets)))
        spans.append(mk(c, c * 10 + 1, c * 10, "chat", "worker", "llm", attrs={**LLM, **own}))
        if draw(st.booleans()):
            spans.append(mk(c, c * 10 + 2, c * 10, "step", "worker", "app"))
            spans.append(mk(c, c * 10 + 3, c * 10 + 2, "chat", "worker", "llm", attrs=LLM))
    return spans


def _shard_json(spans, schema) -> dict:
    return json.loads(json.dumps(to_json(audit(spans, schema))))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(linked_corpus(), st.integers(1, 4), st.randoms(use_true_random=False))
def test_producer_and_consumer_in_different_shards_merge_to_the_whole(spans, n, rnd):
    schema = simple_schema(keys=("tenant_id", "workflow_id"))
    whole = to_json(audit(spans, schema))
    traces = sorted({s.trace_id for s in spans})
    home = {t: rnd.randrange(n) for t in traces}
    parts = []
    for i in range(n):
        doc = _shard_json([s for s in spans if home[s.trace_id] == i], schema)
        parts.append(parts_from_json(doc, f"shard{i}")[0])
    merged = to_json(finish(merge_all(parts), RunInfo()))
    assert _without_run(merged) == _without_run(whole)


def test_the_samples_shards_merge_to_the_whole_through_the_cli(tmp_path):
    src = LINKS / "celery-links.otlp.json"
    _, whole = _check(str(src))
    for n in (2, 3, 5):
        files = []
        for i in range(n):
            out = tmp_path / f"s{n}-{i}.json"
            res = CliRunner().invoke(cli, ["check", "--shard", f"{i}/{n}", "--format", "json", "-o", str(out), str(src)])
            assert res.exit_code in (0, 1), res.output
            files.append(str(out))
        res = CliRunner().invoke(cli, ["merge", "--format", "json", *files])
        assert _without_run(json.loads(res.stdout)) == _without_run(whole)


def test_stream_resolves_links_like_the_whole_file(tmp_path):
    """``--stream`` audits traces as they complete (one resourceSpans per line here, window 1):
    a consumer audited before its producer arrives still resolves, in finish."""
    doc = json.loads((LINKS / "celery-links.otlp.json").read_text())
    lines = tmp_path / "t.jsonl"
    rs = sorted(doc["resourceSpans"], key=lambda r: '"report-worker"' not in json.dumps(r["resource"]))  # consumers first
    lines.write_text("".join(json.dumps({"resourceSpans": [r]}) + "\n" for r in rs))
    _, whole = _check(str(LINKS / "celery-links.otlp.json"))
    _, streamed = _check("--stream", "--window", "1", str(lines))
    assert _without_run(streamed) == _without_run(whole)


# ---------------------------------------------------------------- the sidecar, fed apart


@pytest.mark.slow
def test_sidecar_given_producer_and_consumer_in_separate_requests_answers_as_check(tmp_path):
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import SpanExportResult

    from test_one_answer import sdk_spans
    from test_server_support import Sidecar, without_run

    src = LINKS / "celery-links.otlp.json"
    _, whole = _check(str(src))
    spans = sdk_spans(src)
    consumers = {s.context.trace_id for s in spans if s.links}
    sidecar = Sidecar(tmp_path / "data", trace_idle=0.2, workers=2).start()
    try:
        exporter = OTLPSpanExporter(endpoint=sidecar.http + "/v1/traces", timeout=10)
        # The consumers first: their producers arrive in a later request.
        assert exporter.export([s for s in spans if s.context.trace_id in consumers]) is SpanExportResult.SUCCESS
        sidecar.wait_audited()
        early = sidecar.report()
        assert early["summary"]["findings"].get("ATTR006") == 4 and "ATTR001" not in early["summary"]["findings"]
        assert exporter.export([s for s in spans if s.context.trace_id not in consumers]) is SpanExportResult.SUCCESS
        exporter.shutdown()
        sidecar.wait_audited()
        assert without_run(sidecar.report()) == without_run(whole)
    finally:
        sidecar.stop()
