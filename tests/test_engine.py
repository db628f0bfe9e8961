"""The attribution semantics of DESIGN.md, one behaviour per test, asserted exactly."""

from dataclasses import replace

from auditor.model import BoundaryClass
from builders import LLM, Tree, mk, sid, tid
from conftest import codes, run, simple_schema

T = {"tenant_id": "acme"}


def test_clean_trace_has_no_findings():
    spans = Tree("root", T, [Tree("agent", T, [Tree("chat", {**T, **LLM})])]).spans()
    r = run(spans)
    assert r.findings == ()
    assert r.keys[0].llm_calls == 1 and r.keys[0].llm_calls_missing == 0


def test_leak_reported_once_at_first_hop_and_below_counted_as_affected():
    # root(T) -> agent(T) -> tool() -> step() -> chat(LLM)
    spans = Tree("root", T, [Tree("agent", T, [Tree("tool", {}, [Tree("step", {}, [Tree("chat", LLM)])])])]).spans()
    r = run(spans)
    assert codes(r) == [("ATTR001", "tenant_id", sid(2), sid(3))]
    f = r.findings[0]
    assert f.spans_affected == 3
    assert f.llm_calls_affected == (sid(5),)
    assert f.parent_value == "acme" and f.child_value is None
    assert f.boundary.cls is BoundaryClass.IN_PROCESS
    assert str(f.boundary) == "svc / app : agent -> svc / app : tool"
    assert r.keys[0].llm_calls_missing == 1
    (b,) = r.boundaries
    assert (b.traces, b.spans_affected, b.llm_calls_affected, b.keys) == (1, 3, 1, ("tenant_id",))


def test_branch_without_llm_is_not_on_the_attribution_path():
    spans = Tree("root", T, [Tree("audit-log", {}), Tree("chat", {**T, **LLM})]).spans()
    assert run(spans).findings == ()
    # ...but scope "all" requires the key everywhere below the mint.
    r = run(spans, simple_schema(scope="all"))
    assert codes(r) == [("ATTR001", "tenant_id", sid(1), sid(2))]


def test_scope_llm_reports_at_the_hop_below_the_carrier_but_not_gaps():
    # root(T) -> a() -> b(T) -> chat(LLM, no key); a() lost it, b re-minted it, chat lost it again.
    spans = Tree("root", T, [Tree("a", {}, [Tree("b", T, [Tree("chat", LLM)])])]).spans()
    path = run(spans)
    assert sorted(codes(path)) == sorted([
        ("ATTR001", "tenant_id", sid(1), sid(2)),
        ("ATTR004", "tenant_id", sid(2), sid(3)),
        ("ATTR001", "tenant_id", sid(3), sid(4)),
    ])
    llm = run(spans, simple_schema(scope="llm"))
    assert codes(llm) == [("ATTR001", "tenant_id", sid(3), sid(4))]


def test_never_minted_llm_call():
    spans = Tree("root", {}, [Tree("chat", LLM)]).spans()
    r = run(spans)
    assert codes(r) == [("ATTR002", "tenant_id", sid(1), sid(2))]


def test_gap_after_leak_is_attr004_and_llm_below_regap_is_attributed():
    spans = Tree("root", T, [Tree("worker", {}, [Tree("handler", T, [Tree("chat", {**T, **LLM})])])]).spans()
    r = run(spans)
    assert sorted(codes(r)) == [("ATTR001", "tenant_id", sid(1), sid(2)), ("ATTR004", "tenant_id", sid(2), sid(3))]
    leak = next(f for f in r.findings if f.code == "ATTR001")
    assert leak.spans_affected == 1 and leak.llm_calls_affected == ()
    assert r.keys[0].llm_calls_missing == 0


def test_mismatch_is_cross_tenant_bleed_unless_allowed():
    spans = Tree("root", T, [Tree("chat", {"tenant_id": "globex", **LLM})]).spans()
    r = run(spans)
    assert codes(r) == [("ATTR003", "tenant_id", sid(1), sid(2))]
    assert (r.findings[0].parent_value, r.findings[0].child_value) == ("acme", "globex")
    assert run(spans, simple_schema(may_change=True)).findings == ()


def test_same_value_with_different_types_is_not_a_mismatch():
    spans = Tree("root", {"tenant_id": 42}, [Tree("chat", {"tenant_id": "42", **LLM})]).spans()
    assert run(spans).findings == ()


def test_bad_value_reported_where_minted_not_on_every_span():
    value = {"type": "string", "pattern": "^[a-z]+$"}
    bad = {"tenant_id": "ACME!"}
    spans = Tree("root", bad, [Tree("agent", bad, [Tree("chat", {**bad, **LLM})])]).spans()
    r = run(spans, simple_schema(value=value))
    assert codes(r) == [("ATTR005", "tenant_id", None, sid(1))]


def test_empty_string_counts_as_absent():
    spans = Tree("root", T, [Tree("chat", {"tenant_id": "", **LLM})]).spans()
    assert codes(run(spans)) == [("ATTR001", "tenant_id", sid(1), sid(2))]


def test_headless_llm_call_is_trace004_and_never_minted():
    """The service serves requests (a SERVER span elsewhere): a root LLM call lost its context."""
    spans = [replace(mk(1, 1, None, "request", attrs=T), kind=2), mk(2, 2, None, "chat gpt-4o-mini", attrs=LLM)]
    r = run(spans)
    assert sorted((f.code, f.severity.value, f.trace_id, f.span_id) for f in r.findings) == [
        ("ATTR002", "error", tid(2), sid(2)),
        ("TRACE004", "error", tid(2), sid(2)),
    ]


def test_a_jobs_root_llm_call_is_trace006_a_note_not_a_lost_context():
    """No span of the service serves a request or consumes a message: a nightly job's calls."""
    spans = [mk(1, 1, None, "chat gpt-4o-mini", attrs=LLM), mk(2, 2, None, "chat gpt-4o-mini", attrs=LLM, start=10)]
    r = run(spans)
    assert sorted((f.code, f.severity.value, f.span_id) for f in r.findings) == [
        ("ATTR002", "error", sid(1)), ("ATTR002", "error", sid(2)),
        ("TRACE006", "note", sid(1)), ("TRACE006", "note", sid(2)),
    ]
    assert "serves no request and consumes no message in this input" in r.findings[-1].message
    # a consumer span of the same service anywhere in the input makes them lost contexts again
    consumer = replace(mk(3, 3, None, "process job", attrs=T), kind=5)
    assert {f.code for f in run(spans + [consumer]).findings} == {"ATTR002", "TRACE004"}


def test_network_and_library_boundaries():
    spans = [
        mk(1, 1, None, "POST /leads/123", service="front", scope="web", attrs=T),
        mk(1, 2, 1, "POST /score", service="scorer", scope="web", flags=0x300),
        mk(1, 3, 2, "chat", service="scorer", scope="openai", attrs=LLM),
    ]
    r = run(spans)
    (b,) = r.boundaries
    assert b.boundary.cls is BoundaryClass.NETWORK
    assert str(b.boundary) == "front / web : POST /leads/{n} -> scorer / web : POST /score"
    lib = [
        mk(1, 1, None, "agent", scope="langchain", attrs=T),
        mk(1, 2, 1, "chat", scope="openai", attrs=LLM),
    ]
    assert run(lib).boundaries[0].boundary.cls is BoundaryClass.LIBRARY
    remote_only = [
        mk(1, 1, None, "a", attrs=T),
        mk(1, 2, 1, "b", flags=0x300, attrs=LLM),
    ]
    assert run(remote_only).boundaries[0].boundary.cls is BoundaryClass.NETWORK


def test_boundaries_aggregate_across_traces_with_smallest_example_ids():
    spans = []
    for t in (9, 3, 7, 1, 5, 8, 2):
        spans += Tree("root", T, [Tree(f"job {t}", {}, [Tree("chat", LLM)])]).spans(trace=t, first_id=t * 10)
    r = run(spans)
    (b,) = r.boundaries
    assert b.traces == 7
    assert b.example_trace_ids == tuple(tid(t) for t in (1, 2, 3, 5, 7))
    assert b.boundary.child.name == "job {n}"


def test_orphan_duplicate_self_parent_and_cycle_never_crash():
    spans = [
        mk(1, 1, None, "root", attrs=T),
        mk(1, 2, 99, "orphan", attrs=LLM),  # parent 99 absent
        mk(1, 3, 3, "self", attrs=T),  # self-parent
        mk(1, 4, 5, "c1"), mk(1, 5, 6, "c2"), mk(1, 6, 4, "c3", attrs=LLM),  # 4 -> 5 -> 6 -> 4
        mk(1, 7, 1, "dup-a", attrs=T, start=5), mk(1, 7, 1, "dup-b", attrs=T, start=1),
        mk(1, 7, 1, "dup-b", attrs=T, start=1),  # exact re-delivery: folded silently
    ]
    r = run(spans)
    got = sorted((f.code, f.span_id) for f in r.findings if f.code.startswith("TRACE"))
    assert got == [("TRACE001", sid(2)), ("TRACE002", sid(7)), ("TRACE003", sid(3)), ("TRACE003", sid(4))]
    assert r.counts.spans == 7
    # the cycle is cut at its smallest id (4): c1 becomes a root with c3 (an LLM call) below it
    assert ("ATTR002", "tenant_id", sid(4), sid(6)) in codes(r)
    assert r.parts.counts.traces == 1


def test_deep_chain_does_not_recurse():
    n = 20_000
    spans = [mk(1, 1, None, "root", attrs=T)] + [mk(1, i, i - 1, "hop") for i in range(2, n)] + [mk(1, n, n - 1, "chat", attrs=LLM)]
    r = run(spans)
    assert codes(r) == [("ATTR001", "tenant_id", sid(1), sid(2))]
    assert r.findings[0].spans_affected == n - 1


def test_duplicate_llm_call_by_response_id_is_counted_once_and_attributed_by_either():
    framework = {**LLM, "gen_ai.response.id": "resp-1"}
    client = {**LLM, "gen_ai.response.id": "resp-1", "gen_ai.usage.cache_read.input_tokens": 200}
    spans = [
        mk(1, 1, None, "request", attrs=T),
        mk(1, 2, 1, "ChatOpenAI", scope="langchain", attrs={**framework, **T}),
        mk(2, 3, None, "chat gpt-4o-mini", scope="openai", attrs=client),  # other trace, headless
    ]
    r = run(spans)
    assert len(r.calls) == 1
    assert r.calls[0].ref == (tid(2), sid(3))  # the more detailed usage wins
    assert r.calls[0].values["tenant_id"] == "acme"
    assert r.keys[0].llm_calls_missing == 0
    assert [(f.code, f.trace_id, f.span_id) for f in r.findings if f.code == "TRACE005"] == [("TRACE005", tid(1), sid(2))]


def test_duplicate_by_shape_needs_different_scopes_and_overlap():
    a = mk(1, 2, 1, "ChatOpenAI", scope="langchain", attrs=LLM, start=100, dur=500)
    b = mk(1, 3, 2, "chat", scope="openai", attrs=LLM, start=120, dur=400)
    root = mk(1, 1, None, "root", attrs=T)
    assert len(run([root, a, b]).calls) == 1
    same_scope = mk(1, 3, 1, "chat", scope="langchain", attrs=LLM, start=120, dur=400)
    assert len(run([root, a, same_scope]).calls) == 2
    later = mk(1, 3, 2, "chat", scope="openai", attrs=LLM, start=700, dur=400)
    assert len(run([root, a, later]).calls) == 2


def test_severity_override_off_and_key_severity():
    spans = Tree("root", {}, [Tree("chat", LLM)]).spans()
    s = simple_schema()
    from dataclasses import replace

    off = replace(s, severity={"ATTR002": "off"})
    assert run(spans, off).findings == ()
    warn = replace(s, severity={"ATTR002": "warning"})
    assert [f.severity.value for f in run(spans, warn).findings] == ["warning"]


def test_app_span_and_gateway_span_of_one_call_in_one_trace_count_once():
    app = mk(1, 2, 1, "ChatOpenAI", service="ask-app", scope="openinference.instrumentation.langchain",
             attrs={**LLM, **T}, start=100, dur=900)
    gateway = mk(1, 3, 2, "litellm_request", service="litellm-proxy", scope="litellm",
                 attrs={**LLM, "gen_ai.request.model": "openai/gpt-4o-mini"}, start=200, dur=600)
    root = mk(1, 1, None, "POST /ask", service="ask-app", attrs=T)
    r = run([root, app, gateway])
    assert len(r.calls) == 1 and len(r.duplicates) == 1
    assert r.calls[0].values["tenant_id"] == "acme"
    # two services in *different* traces with the same shape stay two calls
    other = mk(2, 4, None, "litellm_request", service="litellm-proxy", scope="litellm", attrs=LLM, start=200, dur=600)
    assert len(run([root, app, other]).calls) == 2
