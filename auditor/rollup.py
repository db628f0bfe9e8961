"""From mergeable parts to everything a report shows: duplicates folded, policy, totals, gate.

Pure and order-independent: ``finish(merge_parts(a, b))`` equals auditing a and b together,
because every aggregate is recomputed from sorted facts (findings, calls), never accumulated.
This is the one place the policy is applied: to the engine's findings and to those derived
here from the whole result (the registry's ``result`` rules), so every door judges alike.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from decimal import Decimal
from typing import Iterable

from auditor.boundary import fix_hint
from auditor.duplicates import duplicate_clusters
from auditor.examples import pick as pick_examples
from auditor.groups import group as group_findings
from auditor.rawpayload import SOURCE as RAW_SOURCE
from auditor.model import (
    SHARE_CALLS,
    SHARE_SPEND,
    AuditResult,
    Boundary,
    BoundaryStats,
    CodeCost,
    Finding,
    Gate,
    KeyStats,
    LlmCall,
    Parts,
    Policy,
    RunInfo,
)
from auditor.rules import LEAK, REGISTRY, Visit, links
from auditor.rules.context import Folded, ResultContext
from auditor.spill import FindingView, Spilled

EXAMPLES = 5


class PartsMismatch(ValueError):
    """Parts audited under different policies or schemas cannot be merged into one answer."""


def merge_parts(a: Parts, b: Parts) -> Parts:
    if a.policy != b.policy:
        raise PartsMismatch("the results were judged by different policies (schema severity: or gate:)")
    if a.key_order != b.key_order:
        raise PartsMismatch("the results were audited with different schemas (their keys differ)")
    order = {k: i for i, k in enumerate(a.key_order)}

    def union(x: tuple[str, ...], y: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(sorted(set(x) | set(y), key=lambda k: (order.get(k, len(order)), k)))

    spoken: dict[str, int] = dict(a.dialects)
    for name, n in b.dialects:
        spoken[name] = spoken.get(name, 0) + n
    return Parts(
        a.counts + b.counts, a.findings + b.findings, a.calls + b.calls,
        union(a.keys, b.keys), union(a.required_keys, b.required_keys),
        pick_examples(a.examples + b.examples), a.policy, tuple(sorted(spoken.items())), a.key_order,
        a.llm_like_unread + b.llm_like_unread,
        min((e for e in (a.llm_like_example, b.llm_like_example) if e is not None), default=None),
        a.headless + b.headless, tuple(sorted(set(a.serving) | set(b.serving))),
        a.claims + b.claims, a.anchors + b.anchors,
    )


def merge_all(parts: list[Parts]) -> Parts:
    """Merge many parts pairwise, level by level: linear-logarithmic, not quadratic."""
    while len(parts) > 1:
        parts = [merge_parts(parts[i], parts[i + 1]) if i + 1 < len(parts) else parts[i] for i in range(0, len(parts), 2)]
    return parts[0]


def _best_record(records: list[LlmCall]) -> LlmCall:
    """The record to count and price: most detailed usage, then unambiguous, then priced, then
    an instrumentation's record over a raw payload's (it carries the metadata and reported cost),
    then the inner span of a wrapper pair (``within``: the model call itself, with its provider)."""
    return min(records, key=lambda c: (-c.usage.detail, c.usage.ambiguous, c.cost_usd is None,
                                       c.usage.source == RAW_SOURCE, c.within is None, c.ref))


def fold_duplicates(calls_sorted: list[LlmCall]) -> tuple[tuple[LlmCall, ...], dict, tuple[Folded, ...]]:
    """Unique calls (a folded call attributed if any of its records carries the key), the
    record -> kept record map, and each fold."""
    dup_of: dict[tuple[str, str], tuple[str, str]] = {}
    merged: dict[tuple[str, str], LlmCall] = {}
    folds: list[Folded] = []
    for cluster in duplicate_clusters(calls_sorted):
        best = _best_record(cluster)
        values = dict(best.values)
        for rec in cluster:
            for k, v in rec.values.items():
                if values.get(k) is None and v is not None:
                    values[k] = v
        # A tool's own reported cost (Claude Code's cost_usd) stays beside our price when its
        # record is folded into a more detailed span of the same call.
        reported = best.reported_cost_usd
        if reported is None:
            reported = next((r.reported_cost_usd for r in cluster if r.reported_cost_usd is not None), None)
        tools = best.server_tools
        if tools is None:  # e.g. the raw payload states the searches its parent's record does not
            tools = next((r.server_tools for r in cluster if r.server_tools is not None), None)
        kept = merged[best.ref] = replace(best, values=values, reported_cost_usd=reported, server_tools=tools)
        others = tuple(rec for rec in cluster if rec.ref != best.ref)
        for rec in others:
            dup_of[rec.ref] = best.ref
        folds.append(Folded(kept, others))
    unique = tuple(merged.get(c.ref, c) for c in calls_sorted if c.ref not in dup_of)
    return unique, dup_of, tuple(folds)


# ---------------------------------------------------------------- finish

_RESULT_CHECKS = REGISTRY.checks_for(Visit.RESULT)
_PER_RECORD = REGISTRY.per_record_codes()


def finish(parts: Parts, run: RunInfo) -> AuditResult:
    policy = parts.policy
    calls_sorted = sorted(parts.calls, key=lambda c: c.ref)
    unique, dup_of, folds = fold_duplicates(calls_sorted)
    off = {code for code, v in policy.severity.items() if v == "off"}
    ctx = ResultContext(unique, folds, parts.keys, parts.required_keys, lambda code: code not in off,
                        parts.llm_like_unread, parts.llm_like_example, parts.dialects,
                        tuple(sorted(parts.headless, key=lambda h: (h.trace_id, h.span_id))), frozenset(parts.serving))
    derived = [f for check in _RESULT_CHECKS for f in check.fn(ctx)]
    derived += links.resolve(parts.claims, parts.anchors)  # span links, followed across traces
    findings = _judged_findings(parts.findings, derived, dup_of, policy)

    counts: dict[str, int] = defaultdict(int)
    for f in findings:
        counts[f.code] += 1

    total = sum((c.cost_usd for c in unique if c.cost_usd is not None), Decimal(0))
    unpriced = sum(1 for c in unique if c.cost_usd is None)
    keys = tuple(key_stats(k, unique) for k in parts.required_keys)
    by_ref = {c.ref: c for c in unique}
    return AuditResult(
        parts=parts,
        run=run,
        findings=findings,
        calls=unique,
        duplicates=dup_of,
        boundaries=_boundaries(findings, by_ref, dup_of),
        keys=keys,
        finding_counts=dict(sorted(counts.items())),
        total_cost_usd=total,
        unpriced_calls=unpriced,
        cost_by_code=cost_by_code(findings, by_ref, dup_of),
        gate=evaluate_gate(findings, keys, policy, parts.counts.spans),
        groups=group_findings(findings, by_ref, dup_of),
    )


def _judged_findings(found, derived: list[Finding], dup_of, policy: Policy):
    """The engine's findings and those derived from the whole result, at their effective
    severity, sorted. A folded record's own pricing findings would speak of a call counted
    elsewhere: they go. Spilled findings (``check --stream``) stay on disk, judged as read."""
    judge = policy_judge(policy)

    def keep(f: Finding) -> Finding | None:
        if f.code in _PER_RECORD and (f.trace_id, f.span_id) in dup_of:
            return None
        return judge(f)

    if isinstance(found, Spilled):
        return FindingView(found, keep, tuple(sorted(apply_policy(derived, policy), key=Finding.sort_key)))
    kept = [g for g in map(keep, found) if g is not None]
    return tuple(sorted(kept + apply_policy(derived, policy), key=Finding.sort_key))


def policy_judge(policy: Policy):
    """A finding -> the finding at its effective severity, or None when its code is off."""
    rules = REGISTRY.rules
    memo: dict[tuple[str, str | None], object] = {}

    def judge(f: Finding) -> Finding | None:
        ck = (f.code, f.key)
        sev = memo.get(ck, memo)
        if sev is memo:
            r = rules.get(f.code)
            sev = memo[ck] = policy.severity_of(f.code, r.severity if r else f.severity, f.key, bool(r and r.keyed))
        if sev is None:
            return None
        return f if f.severity is sev else replace(f, severity=sev)

    return judge


def apply_policy(findings: Iterable[Finding], policy: Policy) -> list[Finding]:
    """Each finding at its effective severity; findings of codes turned off are dropped.
    Idempotent, so results read back from JSON (``merge``) are judged the same again."""
    judge = policy_judge(policy)
    return [g for g in map(judge, findings) if g is not None]


def cost_by_code(findings, by_ref, dup_of) -> dict[str, CodeCost]:
    refs: dict[str, set] = defaultdict(set)
    for f in findings:
        for sid in ((f.span_id,) + tuple(f.llm_calls_affected)):
            ref = dup_of.get((f.trace_id, sid), (f.trace_id, sid))
            if ref in by_ref:
                refs[f.code].add(ref)
    out = {}
    for code in sorted(refs):
        calls = [by_ref[r] for r in refs[code]]
        out[code] = CodeCost(
            calls=len(calls),
            cost_usd=sum((c.cost_usd for c in calls if c.cost_usd is not None), Decimal(0)),
            unpriced_calls=sum(1 for c in calls if c.cost_usd is None),
        )
    return out


def key_stats(key: str, calls: tuple[LlmCall, ...]) -> KeyStats:
    """A key over the calls whose schema asks for it; the share computed here, once."""
    asked = [c for c in calls if key in c.values]
    missing = [c for c in asked if c.values[key] is None]
    priced = [c for c in asked if c.cost_usd is not None]
    spend = sum((c.cost_usd for c in priced), Decimal(0))
    unattributed = sum((c.cost_usd for c in missing if c.cost_usd is not None), Decimal(0))
    if priced:
        share, basis = (float(unattributed * 100 / spend) if spend else 0.0), SHARE_SPEND
    elif asked:
        share, basis = 100.0 * len(missing) / len(asked), SHARE_CALLS
    else:
        share, basis = None, None
    return KeyStats(
        key=key,
        llm_calls=len(asked),
        llm_calls_missing=len(missing),
        cost_usd=spend,
        unattributed_usd=unattributed,
        unattributed_unpriced_calls=sum(1 for c in missing if c.cost_usd is None),
        share_pct=share,
        share_basis=basis,
    )


def share_text(k: KeyStats) -> str:
    """How a share reads in every format: '12.5% of spend', '100.0% of calls (nothing priced)', 'n/a'."""
    if k.share_pct is None:
        return "n/a"
    if k.share_basis == SHARE_CALLS:
        return f"{k.share_pct:.1f}% of calls (nothing priced)"
    return f"{k.share_pct:.1f}% of spend"


def _boundaries(findings, by_ref, dup_of) -> tuple[BoundaryStats, ...]:
    agg: dict[Boundary, dict] = {}
    per_hop: dict[tuple[Boundary, str, str], int] = {}
    for f in findings:
        if f.code != LEAK or f.boundary is None:
            continue
        a = agg.get(f.boundary)
        if a is None:
            a = agg[f.boundary] = {"keys": set(), "traces": set(), "calls": {}, "causes": defaultdict(set)}
        a["keys"].add(f.key)
        a["traces"].add(f.trace_id)
        if f.mechanism is not None:
            a["causes"][(f.mechanism.name, f.mechanism.confidence)].add(f.trace_id)
        hop = (f.boundary, f.trace_id, f.span_id)
        per_hop[hop] = max(per_hop.get(hop, 0), f.spans_affected)
        for sid in f.llm_calls_affected:
            ref = dup_of.get((f.trace_id, sid), (f.trace_id, sid))
            a["calls"].setdefault(ref, set()).add(f.key)
    spans_affected: dict[Boundary, int] = defaultdict(int)
    for (b, _t, _s), n in per_hop.items():
        spans_affected[b] += n
    out = []
    for b, a in agg.items():
        cost = Decimal(0)
        for ref, keys in a["calls"].items():
            call = by_ref.get(ref)
            if call is None or call.cost_usd is None:
                continue
            if any(call.values.get(k) is None for k in keys):
                cost += call.cost_usd
        out.append(
            BoundaryStats(
                boundary=b,
                keys=tuple(sorted(a["keys"])),
                traces=len(a["traces"]),
                spans_affected=spans_affected[b],
                llm_calls_affected=len(a["calls"]),
                unattributed_cost_usd=cost,
                example_trace_ids=tuple(sorted(a["traces"])[:EXAMPLES]),
                fix=fix_hint(b),
                mechanisms=tuple(sorted(((n, c, len(t)) for (n, c), t in a["causes"].items()),
                                        key=lambda m: (-m[2], m[0], m[1]))),
            )
        )
    out.sort(key=lambda s: (-s.unattributed_cost_usd, -s.traces, -s.spans_affected, s.boundary))
    return tuple(out)


def evaluate_gate(findings: tuple[Finding, ...], keys: tuple[KeyStats, ...], policy: Policy, spans: int = 1) -> Gate:
    reasons = []
    if not spans and not policy.allow_empty:
        reasons.append("no spans were read: an empty or broken export proves nothing (--allow-empty if that is expected)")
    over: dict[str, int] = defaultdict(int)
    for f in findings:
        if policy.fails(f.severity):
            over[f.code] += 1
    if over:
        worst = ", ".join(f"{n} {code}" for code, n in sorted(over.items()))
        reasons.append(f"findings at or above {policy.fail_on}: {worst}")
    by_key = {k.key: k for k in keys}
    for key, limit in sorted(policy.max_unattributed_pct.items()):
        k = by_key.get(key)
        if k is not None and k.share_pct is not None and k.share_pct > limit:
            what = "LLM spend" if k.share_basis == SHARE_SPEND else "LLM calls (nothing priced)"
            reasons.append(f"{key}: {k.share_pct:.2f}% of {what} unattributed (limit {limit:g}%)")
    return Gate(not reasons, tuple(reasons))
