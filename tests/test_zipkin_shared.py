"""Zipkin's shared spans and Zipkin v1, on public sample traces (tests/fixtures/zipkin/README.md).

A client span and its server half may share one span id (B3's single-span RPC model); both
halves must stay, the server half a child of the client half, and the server-side children under
the server half, as Zipkin's UI shows them. Zipkin v1 JSON is converted, never read as v2 with
its tags lost.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.assemble import iter_traces
from auditor.cli import cli
from auditor.ingest import decode_bytes
from auditor.ingest.zipkin import derived_id
from auditor.projection import EVERYTHING

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "zipkin"


def _tree(data: bytes):
    spans, rejected = decode_bytes(data, "z.json", EVERYTHING)
    assert rejected == []
    traces = list(iter_traces(spans))
    findings = [d for t in traces for d in t.defects]  # structural defects (TRACE001-003)
    return spans, traces, findings


def _edges(traces) -> set[tuple]:
    """(service, name, kind) -> its parent's (service, name, kind), or None for a root."""
    out = set()
    for t in traces:
        for sid, s in t.spans.items():
            p = t.spans.get(t.parent.get(sid, ""))
            out.add(((s.service, s.name, s.kind), (p.service, p.name, p.kind) if p else None))
    return out


SERVER, CLIENT, INTERNAL = 2, 3, 1


def test_zipkin_skew_sample_keeps_both_halves_server_under_client():
    spans, traces, findings = _tree((FIXTURES / "skew.json").read_bytes())
    assert [d.kind for d in findings] == []  # was TRACE002 and the server half dropped
    assert len(traces[0].spans) == 4
    assert _edges(traces) == {
        (("servicea", "get", SERVER), None),
        (("servicea", "post", CLIENT), ("servicea", "get", SERVER)),
        (("serviceb", "post", SERVER), ("servicea", "post", CLIENT)),
        (("serviceb", "async", INTERNAL), ("serviceb", "post", SERVER)),
    }


def test_zipkin_ascend_sample_reparents_server_side_children_onto_the_server_half():
    _, traces, findings = _tree((FIXTURES / "ascend.json").read_bytes())
    assert findings == []
    assert _edges(traces) == {
        (("mobile-gateway", "get", SERVER), None),
        (("mobile-gateway", "get", CLIENT), ("mobile-gateway", "get", SERVER)),
        (("content-service", "get /content/personal", SERVER), ("mobile-gateway", "get", CLIENT)),
        (("content-service", "get", CLIENT), ("content-service", "get /content/personal", SERVER)),
        (("content-service", "hystrix", INTERNAL), ("content-service", "get /content/personal", SERVER)),
        (("auth-service", "http:/parent/auth-service/v1/authentications/", SERVER), ("mobile-gateway", "get", CLIENT)),
        (("auth-service", "extend-token-life", INTERNAL), ("auth-service", "http:/parent/auth-service/v1/authentications/", SERVER)),
    }
    assert len(traces[0].spans) == 8


def test_zipkin_yelp_sample_keeps_every_service():
    spans, traces, findings = _tree((FIXTURES / "yelp.json").read_bytes())
    assert findings == []
    assert sum(len(t.spans) for t in traces) == 16  # was 13: three server halves dropped
    assert {s.service for s in traces[0].spans.values()} == {
        "routing", "unknown", "yelp_main/api_proxy", "yelp-main", "mobile_api", "spectre",
    }  # spectre and yelp_main/api_proxy vanished before
    edges = _edges(traces)
    assert (("spectre", "get", SERVER), ("mobile_api", "get", CLIENT)) in edges
    # mobile_api's children sit under its server half (same service, the port differs)
    assert (("mobile_api", "set mobile_api_nonce", CLIENT), ("mobile_api", "post /location/update/v4", SERVER)) in edges
    assert (("mobile_api", "post /location/update/v4", SERVER), ("yelp-main", "post", CLIENT)) in edges
    # the root is shared but alone with its id: kept as it is
    assert (("routing", "post /location/update/v4", SERVER), None) in edges


def test_shared_rewrite_does_not_depend_on_span_order_or_clock_skew():
    doc = json.loads((FIXTURES / "ascend.json").read_bytes())
    want = sorted((s.span_id, s.parent_span_id) for s in _tree(json.dumps(doc).encode())[0])
    rng = random.Random(7)
    for _ in range(5):
        rng.shuffle(doc)
        for s in doc:
            if s.get("shared"):
                s["timestamp"] -= 10_000_000  # the server's clock 10 s behind
        got = sorted((s.span_id, s.parent_span_id) for s in _tree(json.dumps(doc).encode())[0])
        assert got == want


def test_several_servers_answering_one_client_id_each_keep_their_subtree():
    # The shape of zipkin-lens/testdata/smartthings-mobile-web-install.json: one Kafka send,
    # consumed by several hosts of one service, each reporting a shared half with the same id.
    def span(**kw):
        base = {"traceId": "14b60fd9ae504820", "timestamp": 1543549826223236, "duration": 10}
        return dict(base, **kw)

    doc = [
        span(id="64c75434bbe02f59", kind="SERVER", name="post", localEndpoint={"serviceName": "bouncer", "ipv4": "10.6.90.57"}),
        span(id="cbab506b53f336fc", parentId="64c75434bbe02f59", kind="CLIENT", name="send iot-events360",
             localEndpoint={"serviceName": "bouncer", "ipv4": "10.6.90.57"}),
    ]
    for host, child in (("10.6.83.20", "017bfc73a014d42c"), ("10.6.88.250", "c1c06fd706fca9cb")):
        ep = {"serviceName": "pusher", "ipv4": host, "port": 8197}
        doc.append(span(id="cbab506b53f336fc", parentId="64c75434bbe02f59", kind="SERVER", name="receive iot-events360",
                        localEndpoint=ep, shared=True))
        doc.append(span(id=child, parentId="cbab506b53f336fc", name="process", localEndpoint=ep))
    spans, traces, findings = _tree(json.dumps(doc).encode())
    assert findings == []
    by_id = {s.span_id: s for s in spans}
    halves = {derived_id("0" * 16 + "14b60fd9ae504820", "cbab506b53f336fc", ("pusher", h, None, 8197)) for h in ("10.6.83.20", "10.6.88.250")}
    assert {by_id[h].parent_span_id for h in halves} == {"cbab506b53f336fc"}
    assert by_id["017bfc73a014d42c"].parent_span_id != by_id["c1c06fd706fca9cb"].parent_span_id
    assert {by_id["017bfc73a014d42c"].parent_span_id, by_id["c1c06fd706fca9cb"].parent_span_id} == halves
    assert by_id["cbab506b53f336fc"].parent_span_id == "64c75434bbe02f59"


def test_zipkin_v1_is_converted_with_its_tags_and_halves():
    spans, traces, findings = _tree((FIXTURES / "zipkin_v1_single_batch.json").read_bytes())
    assert findings == []  # was TRACE002 twice, every span "unknown_service", every tag lost
    assert _edges(traces) == {
        (("front-proxy", "checkAvailability", CLIENT), None),
        (("service1", "checkAvailability", SERVER), ("front-proxy", "checkAvailability", CLIENT)),
        (("service1", "checkStock", CLIENT), ("service1", "checkAvailability", SERVER)),
        (("service2", "checkStock", SERVER), ("service1", "checkStock", CLIENT)),
        (("unknown_service", "checkStock", INTERNAL), ("front-proxy", "checkAvailability", CLIENT)),
    }
    (server2,) = [s for s in spans if s.service == "service2"]
    assert dict(server2.attributes) == {"http.url": "http://localhost:9000/trace/2", "http.status_code": 200, "success": "true"}
    assert (server2.start_ns, server2.end_ns) == (1544805927454487000, 1544805927457320000)  # from sr / ss
    (proxy,) = [s for s in spans if s.service == "front-proxy"]
    assert (proxy.start_ns, proxy.end_ns) == (1544805927446743000, (1544805927446743 + 12956) * 1000)


def test_zipkin_v1_span_with_both_sides_is_split():
    doc = [{"traceId": "4e3c247d68677a1e", "id": "2ce51fa654dd0c2f", "parentId": "f3e648a459e6c685", "name": "get",
            "timestamp": 1509771706434207, "duration": 67805,
            "annotations": [
                {"timestamp": 1509771706434207, "value": "cs", "endpoint": {"serviceName": "frontend", "ipv4": "192.168.1.8"}},
                {"timestamp": 1509771706479391, "value": "sr", "endpoint": {"serviceName": "backend", "ipv4": "192.168.1.8"}},
                {"timestamp": 1509771706495481, "value": "ss", "endpoint": {"serviceName": "backend", "ipv4": "192.168.1.8"}},
                {"timestamp": 1509771706502012, "value": "cr", "endpoint": {"serviceName": "frontend", "ipv4": "192.168.1.8"}}],
            "binaryAnnotations": [
                {"key": "ca", "value": True, "endpoint": {"serviceName": "", "ipv4": "127.0.0.1", "port": 55038}},
                {"key": "http.path", "value": "/api", "endpoint": {"serviceName": "frontend", "ipv4": "192.168.1.8"}},
                {"key": "tenant_id", "value": "acme", "endpoint": {"serviceName": "backend", "ipv4": "192.168.1.8"}}]}]
    spans, _, findings = _tree(json.dumps(doc).encode())
    client, server = spans
    assert (client.service, client.kind, client.span_id, dict(client.attributes)) == ("frontend", CLIENT, "2ce51fa654dd0c2f", {"http.path": "/api"})
    assert (server.service, server.kind, server.parent_span_id, dict(server.attributes)) == ("backend", SERVER, "2ce51fa654dd0c2f", {"tenant_id": "acme"})
    assert (server.start_ns, server.end_ns) == (1509771706479391000, 1509771706495481000)
    assert (client.start_ns, client.end_ns) == (1509771706434207000, 1509771706502012000)
    assert [d.kind for d in findings] == ["orphan"]  # TRACE001: its parent is not in this excerpt: true


def test_a_single_zipkin_span_object_is_accepted():
    doc = {"traceId": "2", "id": "2", "name": "foo", "timestamp": 1, "duration": 10,
           "localEndpoint": {"serviceName": "bar", "ipv4": "10.43.17.42", "port": 8080}}
    (span,), _, _ = _tree(json.dumps(doc).encode())
    assert (span.service, span.name, span.span_id) == ("bar", "foo", "0" * 15 + "2")


@pytest.mark.parametrize("name, spans", [
    ("yelp.json", 16), ("ascend.json", 8), ("skew.json", 4), ("zipkin_v1_single_batch.json", 5),
])
def test_public_zipkin_samples_through_the_cli(name, spans):
    res = CliRunner().invoke(cli, ["check", "--format", "json", str(FIXTURES / name)])
    assert res.exit_code in (0, 1), res.output
    doc = json.loads(res.stdout)
    assert doc["summary"]["spans"] == spans
    assert not [f for f in doc["findings"] if f["code"] == "TRACE002"]
