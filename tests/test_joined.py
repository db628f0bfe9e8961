"""The per-trace tallies of ``rollup.finish`` (boundaries, spend per code, finding groups)
equal the whole-result computations they replaced (kept below as the reference: a map of
every call by ref, a set of every ref), on random traces with leaks, headless calls and
duplicate records folded within and across traces; and equally when the findings and calls
are read back from disk (``check --stream``'s spill, tiny chunks and batches)."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor import spill
from auditor.boundary import fix_hint
from auditor.engine import audit_spans
from auditor.groups import EXAMPLES as GROUP_EXAMPLES, ident
from auditor.model import BoundaryStats, CodeCost, FindingGroup, RunInfo
from auditor.plan import Plan
from auditor.rollup import EXAMPLES, finish
from auditor.rules import LEAK
from auditor.schema import compile_schema
from auditor.stream import TraceWindow
from builders import LLM, mk

SCHEMA = {
    "version": 1,
    "name": "joined-test",
    "scope": "path",
    "llm_calls": [{"attribute": "gen_ai.operation.name"}],
    "keys": {"tenant_id": {"sources": [{"attribute": "tenant_id"}]},
             "user_id": {"sources": [{"attribute": "user_id"}]}},
    "genai": {"enabled": False},
}


def ref_cost_by_code(findings, by_ref, dup_of):
    refs = defaultdict(set)
    for f in findings:
        for sid in ((f.span_id,) + tuple(f.llm_calls_affected)):
            ref = dup_of.get((f.trace_id, sid), (f.trace_id, sid))
            if ref in by_ref:
                refs[f.code].add(ref)
    out = {}
    for code in sorted(refs):
        calls = [by_ref[r] for r in refs[code]]
        out[code] = CodeCost(calls=len(calls), cost_usd=sum((c.cost_usd for c in calls if c.cost_usd is not None), Decimal(0)),
                             unpriced_calls=sum(1 for c in calls if c.cost_usd is None))
    return out


def ref_boundaries(findings, by_ref, dup_of):
    agg, per_hop = {}, {}
    for f in findings:
        if f.code != LEAK or f.boundary is None:
            continue
        a = agg.setdefault(f.boundary, {"keys": set(), "traces": set(), "calls": {}, "causes": defaultdict(set)})
        a["keys"].add(f.key)
        a["traces"].add(f.trace_id)
        if f.mechanism is not None:
            a["causes"][(f.mechanism.name, f.mechanism.confidence)].add(f.trace_id)
        hop = (f.boundary, f.trace_id, f.span_id)
        per_hop[hop] = max(per_hop.get(hop, 0), f.spans_affected)
        for sid in f.llm_calls_affected:
            ref = dup_of.get((f.trace_id, sid), (f.trace_id, sid))
            a["calls"].setdefault(ref, set()).add(f.key)
    spans = defaultdict(int)
    for (b, _t, _s), n in per_hop.items():
        spans[b] += n
    out = []
    for b, a in agg.items():
        cost = Decimal(0)
        for ref, keys in a["calls"].items():
            call = by_ref.get(ref)
            if call is not None and call.cost_usd is not None and any(call.values.get(k) is None for k in keys):
                cost += call.cost_usd
        out.append(BoundaryStats(b, tuple(sorted(a["keys"])), len(a["traces"]), spans[b], len(a["calls"]), cost,
                                 tuple(sorted(a["traces"])[:EXAMPLES]), fix_hint(b),
                                 tuple(sorted(((n, c, len(t)) for (n, c), t in a["causes"].items()), key=lambda m: (-m[2], m[0], m[1])))))
    out.sort(key=lambda s: (-s.unattributed_cost_usd, -s.traces, -s.spans_affected, s.boundary))
    return tuple(out)


def ref_groups(findings, by_ref, dup_of):
    acc = {}
    for f in findings:
        gid = ident(f)
        a = acc.get(gid)
        if a is None:
            a = acc[gid] = [f, f, 0, set(), set()]
        elif f.severity.rank > a[1].severity.rank:
            a[1] = f
        a[2] += 1
        a[3].add(f.trace_id)
        for sid in (f.span_id, *f.llm_calls_affected):
            ref = dup_of.get((f.trace_id, sid), (f.trace_id, sid))
            if ref in by_ref:
                a[4].add(ref)
    out = []
    for gid, (first, worst, n, traces, refs) in acc.items():
        calls = [by_ref[r] for r in refs]
        out.append(FindingGroup(gid, first.code, worst.severity, first.key, first.boundary, first.endpoint, n, len(traces),
                                len(calls), sum((c.cost_usd for c in calls if c.cost_usd is not None), Decimal(0)),
                                sum(1 for c in calls if c.cost_usd is None), tuple(sorted(traces)[:GROUP_EXAMPLES]), first))
    out.sort(key=lambda g: (-g.severity.rank, -g.cost_usd, -g.findings, g.ident))
    return tuple(out)


@st.composite
def traces(draw):
    spans = []
    for t in range(1, draw(st.integers(1, 7)) + 1):
        n = draw(st.integers(1, 7))
        parents = [None] + [draw(st.integers(0, i - 1)) for i in range(1, n)]
        for i in range(n):
            attrs = {}
            if i == 0 or draw(st.booleans()):
                attrs["tenant_id"] = draw(st.sampled_from(["acme", "globex"]))
            if draw(st.booleans()):
                attrs["user_id"] = "u1"
            if draw(st.integers(0, 2)) == 0:
                attrs.update(LLM)
                attrs["gen_ai.request.model"] = draw(st.sampled_from(["gpt-4o-mini", "no-such-model"]))  # some unpriced
                if draw(st.booleans()):
                    attrs["gen_ai.response.id"] = f"r{draw(st.integers(0, 3))}"  # folded within and across traces
            p = parents[i]
            spans.append(mk(t, t * 100 + i + 1, None if p is None else t * 100 + p + 1, f"op{i % 3}",
                            draw(st.sampled_from(["a", "b", "c"])), "x", attrs, start=i * 10, dur=5))
    return spans


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(traces(), st.integers(1, 6))
def test_per_trace_tallies_equal_the_whole_result_computations(spans, batch):
    plan = Plan.fixed(compile_schema(SCHEMA))
    result = finish(audit_spans(spans, plan), RunInfo())
    by_ref = {c.ref: c for c in result.calls}
    assert result.cost_by_code == ref_cost_by_code(result.findings, by_ref, result.duplicates)
    assert result.boundaries == ref_boundaries(result.findings, by_ref, result.duplicates)
    assert result.groups == ref_groups(result.findings, by_ref, result.duplicates)

    # the same spans streamed, a trace or a few at a time, findings and calls spilled
    with mock.patch("auditor.stream.AUDIT_BATCH_SPANS", batch), mock.patch.object(spill, "CHUNK", 2):
        tw = TraceWindow(plan, 1)
        for s in spans:
            tw.add([s])
        streamed = finish(tw.finish(), RunInfo())
    assert isinstance(streamed.parts.calls, spill.Spilled) or not result.calls
    for name in ("findings", "calls", "duplicates", "boundaries", "keys", "finding_counts", "total_cost_usd",
                 "unpriced_calls", "cost_by_code", "gate", "groups"):
        assert getattr(streamed, name) == getattr(result, name), name
