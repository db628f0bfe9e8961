"""Jaeger, Zipkin and Tempo inputs audit exactly like the OTLP form of the same traces.

The Jaeger and Zipkin forms are written the way the OpenTelemetry Collector's exporters write
them (scope, kind and status as tags; arrays and maps as JSON text; Zipkin tags all strings;
resource attributes as Jaeger process tags / Zipkin span tags); Tempo's download is OTLP JSON
with ``batches``, ``instrumentationLibrarySpans`` and base64 ids.
"""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.cli import cli
from auditor.plan import Plan
from auditor.engine import audit
from auditor.errors import InputError
from auditor.ingest import decode_bytes
from auditor.projection import EVERYTHING
from auditor.schema import compose_refs, load_schema
from auditor import dialects

ROOT = Path(__file__).resolve().parent.parent / "sample_traces"
SAMPLES = sorted(ROOT.glob("core/*.otlp.json")) + sorted(ROOT.glob("dialects/*.otlp.json"))
KINDS = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


def _json_text(v):
    return json.dumps(list(v) if isinstance(v, tuple) else v, separators=(",", ":"), default=str)


def _jaeger_tag(k, v):
    if isinstance(v, bool):
        return {"key": k, "type": "bool", "value": v}
    if isinstance(v, int):
        return {"key": k, "type": "int64", "value": v}
    if isinstance(v, float):
        return {"key": k, "type": "float64", "value": v}
    if isinstance(v, bytes):
        return {"key": k, "type": "binary", "value": base64.b64encode(v).decode()}
    if isinstance(v, (tuple, dict)):
        return {"key": k, "type": "string", "value": _json_text(v)}
    return {"key": k, "type": "string", "value": v}


def to_jaeger(spans) -> dict:
    """The query API's {"data": [trace...]} as the Collector's Jaeger translator builds it."""
    traces: dict[str, dict] = {}
    for s in spans:
        t = traces.setdefault(s.trace_id, {"traceID": s.trace_id, "spans": [], "processes": {}, "warnings": None})
        pkey = json.dumps(sorted((k, repr(v)) for k, v in s.resource.items()))
        pid = t.setdefault("_pids", {}).get(pkey)
        if pid is None:
            pid = f"p{len(t['_pids']) + 1}"
            t["_pids"][pkey] = pid
            t["processes"][pid] = {
                "serviceName": s.service,
                "tags": [_jaeger_tag(k, v) for k, v in s.resource.items() if k != "service.name"],
            }
        tags = [_jaeger_tag(k, v) for k, v in s.attributes.items()]
        tags.append({"key": "otel.scope.name", "type": "string", "value": s.scope})
        if s.kind in KINDS:
            tags.append({"key": "span.kind", "type": "string", "value": KINDS[s.kind]})
        t["spans"].append({
            "traceID": s.trace_id,
            "spanID": s.span_id,
            "operationName": s.name,
            # The Collector's translator: the parent as CHILD_OF, each span link as FOLLOWS_FROM.
            "references": ([{"refType": "CHILD_OF", "traceID": s.trace_id, "spanID": s.parent_span_id}] if s.parent_span_id else [])
            + [{"refType": "FOLLOWS_FROM", "traceID": lt, "spanID": ls} for lt, ls in s.links],
            "flags": 1,
            "startTime": s.start_ns // 1000,
            "duration": s.end_ns // 1000 - s.start_ns // 1000,
            "tags": tags,
            "logs": [],
            "processID": pid,
            "warnings": None,
        })
    for t in traces.values():
        del t["_pids"]
    return {"data": list(traces.values()), "total": 0, "limit": 0, "offset": 0, "errors": None}


def _zipkin_str(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (tuple, dict)):
        return _json_text(v)
    if isinstance(v, bytes):
        return base64.b64encode(v).decode()
    return str(v)


def to_zipkin(spans) -> list:
    out = []
    for s in spans:
        tags = {k: _zipkin_str(v) for k, v in s.resource.items() if k != "service.name"}
        tags.update({k: _zipkin_str(v) for k, v in s.attributes.items()})
        tags["otel.scope.name"] = s.scope
        z = {
            "traceId": s.trace_id,
            "id": s.span_id,
            "name": s.name,
            "timestamp": s.start_ns // 1000,
            "duration": s.end_ns // 1000 - s.start_ns // 1000,
            "localEndpoint": {"serviceName": s.service},
            "tags": tags,
        }
        if s.parent_span_id:
            z["parentId"] = s.parent_span_id
        if s.kind in (2, 3, 4, 5):
            z["kind"] = KINDS[s.kind].upper()
        out.append(z)
    return out


def to_tempo(otlp: dict) -> dict:
    """Tempo's /api/traces download: batches, instrumentationLibrarySpans, base64 ids."""
    def b64(h):
        return base64.b64encode(bytes.fromhex(h)).decode() if h else h

    batches = []
    for rs in otlp["resourceSpans"]:
        ils = []
        for ss in rs["scopeSpans"]:
            spans = []
            for sp in ss["spans"]:
                sp = dict(sp, traceId=b64(sp["traceId"]), spanId=b64(sp["spanId"]))
                if sp.get("parentSpanId"):
                    sp["parentSpanId"] = b64(sp["parentSpanId"])
                sp["kind"] = {1: "SPAN_KIND_INTERNAL", 2: "SPAN_KIND_SERVER", 3: "SPAN_KIND_CLIENT"}.get(sp.get("kind"), sp.get("kind"))
                spans.append(sp)
            ils.append({"instrumentationLibrary": ss.get("scope", {}), "spans": spans})
        batches.append({"resource": rs["resource"], "instrumentationLibrarySpans": ils})
    return {"batches": batches}


def _schema_for(path: Path):
    return compose_refs(dialects.all_refs()) if "dialects" in str(path) else load_schema(None)


def _audit(data: bytes, schema):
    c = Plan.fixed(schema)
    spans, rejected = decode_bytes(data, "t", c.projection)
    assert rejected == []
    return audit(spans, schema, plan=c)


def _micros(calls):
    """Jaeger and Zipkin keep microseconds; some instrumentations (LangChain's) record nanoseconds."""
    return tuple(replace(c, start_ns=c.start_ns // 1000 * 1000, end_ns=c.end_ns // 1000 * 1000) for c in calls)


def _same(a, b) -> None:
    assert a.counts == b.counts
    assert _micros(a.calls) == _micros(b.calls)
    assert a.findings == b.findings
    assert a.boundaries == b.boundaries
    assert a.keys == b.keys
    assert a.total_cost_usd == b.total_cost_usd
    assert dict(a.finding_counts) == dict(b.finding_counts)


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_jaeger_zipkin_and_tempo_forms_audit_like_otlp(sample):
    data = sample.read_bytes()
    schema = _schema_for(sample)
    spans, _ = decode_bytes(data, str(sample), EVERYTHING)
    want = _audit(data, schema)
    assert want.calls, "every sample has LLM calls"
    _same(_audit(json.dumps(to_jaeger(spans)).encode(), schema), want)
    _same(_audit(json.dumps(to_zipkin(spans)).encode(), schema), want)
    _same(_audit(json.dumps(to_tempo(json.loads(data))).encode(), schema), want)


def test_jaeger_ui_download_of_one_trace_and_zipkin_trace_list_through_the_cli(tmp_path):
    sample = ROOT / "dialects" / "litellm.otlp.json"
    spans, _ = decode_bytes(sample.read_bytes(), "s", EVERYTHING)
    one_trace = to_jaeger(spans)["data"][0]  # the UI's download of a single trace
    j = tmp_path / "trace.json"
    j.write_text(json.dumps(one_trace))
    z = tmp_path / "traces.json"
    z.write_text(json.dumps([[x for x in to_zipkin(spans) if x["traceId"] == t] for t in sorted({s.trace_id for s in spans})]))
    for f, traces in ((j, 1), (z, 3)):
        res = CliRunner().invoke(cli, ["check", "--format", "json", str(f)])
        doc = json.loads(res.stdout)
        assert doc["summary"]["traces"] == traces
        assert doc["run"]["schema"] == "default+preset:litellm"
        assert res.stderr.startswith("auditor: dialects detected: litellm")


def test_jaeger_short_ids_are_padded_and_typed_tags_kept():
    doc = {
        "data": [{
            "traceID": "af6e2d2b5b1c4a3f",  # 64-bit trace id, as Jaeger shows it
            "spans": [
                {"traceID": "af6e2d2b5b1c4a3f", "spanID": "1", "operationName": "POST /ask", "references": [],
                 "startTime": 1767225600000000, "duration": 5000, "processID": "p1",
                 "tags": [{"key": "tenant_id", "type": "string", "value": "acme"}, {"key": "span.kind", "type": "string", "value": "server"}]},
                {"traceID": "af6e2d2b5b1c4a3f", "spanID": "2", "operationName": "chat gpt-4o-mini",
                 "references": [{"refType": "CHILD_OF", "traceID": "af6e2d2b5b1c4a3f", "spanID": "1"}],
                 "startTime": 1767225600001000, "duration": 3000, "processID": "p1",
                 "tags": [{"key": "gen_ai.operation.name", "type": "string", "value": "chat"},
                          {"key": "gen_ai.usage.input_tokens", "type": "int64", "value": "1200"},
                          {"key": "gen_ai.request.temperature", "type": "float64", "value": 0.5},
                          {"key": "gen_ai.request.stream", "type": "bool", "value": False},
                          {"key": "otel.scope.name", "type": "string", "value": "opentelemetry.instrumentation.openai_v2"},
                          {"key": "span.kind", "type": "string", "value": "client"}]},
            ],
            "processes": {"p1": {"serviceName": "api", "tags": [{"key": "deployment.environment", "type": "string", "value": "prod"}]}},
        }]
    }
    spans, rejected = decode_bytes(json.dumps(doc).encode(), "j.json", EVERYTHING)
    assert rejected == []
    root, call = spans
    assert (root.trace_id, root.span_id, root.parent_span_id, root.kind) == ("0" * 16 + "af6e2d2b5b1c4a3f", "0" * 15 + "1", "", 2)
    assert (call.parent_span_id, call.kind, call.scope, call.service) == (root.span_id, 3, "opentelemetry.instrumentation.openai_v2", "api")
    assert dict(call.attributes) == {
        "gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": 1200,
        "gen_ai.request.temperature": 0.5, "gen_ai.request.stream": False,
    }
    assert dict(call.resource) == {"deployment.environment": "prod", "service.name": "api"}
    assert (call.start_ns, call.end_ns) == (1767225600001000000, 1767225600004000000)


def test_zipkin_keeps_attribution_values_as_text_and_restores_counts():
    doc = [{"traceId": "5af7183fb1d4cf5f", "id": "352bff9a74ca9ad2", "name": "chat", "kind": "CLIENT",
            "timestamp": 1767225600000000, "duration": 10, "localEndpoint": {"serviceName": "api"},
            "tags": {"tenant_id": "007", "gen_ai.usage.input_tokens": "1200", "llm.token_count.prompt": "90",
                     "gen_ai.request.temperature": "0.2", "tag.tags": "[\"tenant:acme\",\"x\"]", "llm.cost.total": "0.0012"}}]
    (span,), _ = decode_bytes(json.dumps(doc).encode(), "z.json", EVERYTHING)
    assert dict(span.attributes) == {
        "tenant_id": "007", "gen_ai.usage.input_tokens": 1200, "llm.token_count.prompt": 90,
        "gen_ai.request.temperature": 0.2, "tag.tags": ("tenant:acme", "x"), "llm.cost.total": 0.0012,
    }
    assert (span.kind, span.scope, span.parent_span_id) == (3, "", "")


@pytest.mark.parametrize(
    "doc, message",
    [
        ({"data": [{"traceID": "ab", "spans": [{"spanID": "1", "tags": [{"key": "x", "type": "int64", "value": "a"}]}], "processes": {}}]},
         "j.json: line 1: $.data[0].spans[0].tags[0].value: expected an int64 (number or decimal string), got 'a'"),
        ({"data": [{"traceID": "ab", "spans": [{"spanID": "1", "tags": [{"key": "x", "type": "uuid", "value": "a"}]}], "processes": {}}]},
         "j.json: line 1: $.data[0].spans[0].tags[0].type: expected one of string, bool, int64, float64, binary, got 'uuid'"),
        ([{"traceId": "ab", "id": "1", "timestamp": "soon"}], "j.json: line 1: $[0].timestamp: expected an integer (microseconds), got 'soon'"),
        ({"batches": [{"resource": {}, "instrumentationLibrarySpans": 3}]}, "j.json: line 1: $.batches[0].scopeSpans: expected an array, got int"),
    ],
)
def test_bad_foreign_documents_name_the_json_path(doc, message):
    with pytest.raises(InputError) as e:
        decode_bytes(json.dumps(doc).encode(), "j.json", EVERYTHING)
    assert str(e.value) == message


def test_unusable_ids_are_rejected_not_fatal():
    doc = [{"traceId": "zz", "id": "1", "timestamp": 1, "duration": 1, "localEndpoint": {"serviceName": "a"}},
           {"traceId": "1", "id": "2", "timestamp": 1, "duration": 1, "localEndpoint": {"serviceName": "a"}}]
    spans, rejected = decode_bytes(json.dumps(doc).encode(), "z.json", EVERYTHING)
    assert [s.span_id for s in spans] == ["0" * 15 + "2"]
    assert [r.where for r in rejected] == ["z.json: line 1: $[0]"]


@pytest.mark.parametrize("wrap", ["trace", "result"])
def test_tempo_v2_and_jaeger_v3_wrappers(wrap):
    sample = ROOT / "dialects" / "otel.otlp.json"
    otlp = json.loads(sample.read_bytes())
    schema = _schema_for(sample)
    want = _audit(sample.read_bytes(), schema)
    _same(_audit(json.dumps({wrap: otlp}).encode(), schema), want)
    _same(_audit(json.dumps({wrap: to_tempo(otlp)}).encode(), schema), want)
