"""From mergeable parts to everything a report shows: duplicates folded, totals, boundaries, gate.

Pure and order-independent: ``finish(merge_parts(a, b))`` equals auditing a and b together,
because every aggregate is recomputed from sorted facts (findings, calls), never accumulated.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Iterable, Mapping

from auditor.boundary import fix_hint
from auditor.duplicates import duplicate_clusters
from auditor.examples import pick as pick_examples
from auditor.model import (
    AuditResult,
    Boundary,
    BoundaryStats,
    Finding,
    KeyStats,
    LlmCall,
    Parts,
    RunInfo,
    Severity,
)
from auditor.rules import agents
from auditor.rules.catalog import rule

EXAMPLES = 5
FAIL_LEVELS = {"error": 3, "warning": 2, "note": 1, "never": 99}


@dataclass(frozen=True, slots=True)
class GatePolicy:
    fail_on: str = "error"
    max_unattributed_pct: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def from_schema(cls, schema, fail_on: str | None = None, max_pct: Mapping[str, float] | None = None) -> "GatePolicy":
        pct = dict(schema.max_unattributed_pct)
        pct.update(max_pct or {})
        return cls(fail_on or schema.fail_on or "error", pct)


@dataclass(frozen=True, slots=True)
class GateResult:
    passed: bool
    reasons: tuple[str, ...]
    policy: GatePolicy


def merge_parts(a: Parts, b: Parts) -> Parts:
    keys = a.keys + tuple(k for k in b.keys if k not in a.keys)
    req = a.required_keys + tuple(k for k in b.required_keys if k not in a.required_keys)
    return Parts(a.counts + b.counts, a.findings + b.findings, a.calls + b.calls, keys, req, pick_examples(a.examples + b.examples))


def _best_record(records: list[LlmCall]) -> LlmCall:
    """The record to count and price: most detailed usage, then unambiguous, then priced."""
    return min(records, key=lambda c: (-c.usage.detail, c.usage.ambiguous, c.cost_usd is None, c.ref))


# ---------------------------------------------------------------- finish


def finish(parts: Parts, run: RunInfo, policy: GatePolicy | None = None) -> AuditResult:
    policy = policy or GatePolicy()
    calls_sorted = sorted(parts.calls, key=lambda c: c.ref)
    dup_of: dict[tuple[str, str], tuple[str, str]] = {}
    merged: dict[tuple[str, str], LlmCall] = {}
    derived: list[Finding] = []
    sev5 = rule("TRACE005").severity
    for cluster in duplicate_clusters(calls_sorted):
        best = _best_record(cluster)
        values = dict(best.values)
        for rec in cluster:
            for k, v in rec.values.items():
                if values.get(k) is None and v is not None:
                    values[k] = v
        merged[best.ref] = replace(best, values=values)
        for rec in cluster:
            if rec.ref == best.ref:
                continue
            dup_of[rec.ref] = best.ref
            derived.append(
                Finding(
                    "TRACE005", sev5, rec.trace_id, rec.span_id,
                    f"LLM call {rec.name!r} ({rec.scope or '-'}) is also recorded by span {best.span_id} in trace "
                    f"{best.trace_id} ({best.scope or '-'}); counted and priced once, from that record "
                    f"(its usage is the most detailed: {_usage_summary(best)}).",
                )
            )
    unique = tuple(merged.get(c.ref, c) for c in calls_sorted if c.ref not in dup_of)
    derived.extend(agents.derived(unique, parts.keys, parts.required_keys))
    # A folded record's own pricing findings would speak of a call counted elsewhere: drop them.
    kept = tuple(f for f in parts.findings if not (f.code in _PER_RECORD and (f.trace_id, f.span_id) in dup_of))
    findings = tuple(sorted(kept + tuple(derived), key=Finding.sort_key))

    counts: dict[str, int] = defaultdict(int)
    for f in findings:
        counts[f.code] += 1

    total = sum((c.cost_usd for c in unique if c.cost_usd is not None), Decimal(0))
    unpriced = sum(1 for c in unique if c.cost_usd is None)
    keys = tuple(_key_stats(k, unique, total) for k in parts.required_keys)
    by_ref = {c.ref: c for c in unique}
    boundaries = _boundaries(findings, by_ref, dup_of)
    result = AuditResult(
        parts=parts,
        run=run,
        findings=findings,
        calls=unique,
        duplicates=dup_of,
        boundaries=boundaries,
        keys=keys,
        finding_counts=dict(sorted(counts.items())),
        total_cost_usd=total,
        unpriced_calls=unpriced,
        extra={"policy": policy},
    )
    gate = evaluate_gate(result, policy)
    return replace(result, extra={"policy": policy, "gate": gate, "cost_by_code": cost_by_code(findings, by_ref, dup_of)})


_PER_RECORD = ("COST001", "COST002")


def _usage_summary(c: LlmCall) -> str:
    u = c.usage
    parts = [f"{u.source or 'usage'} {u.convention}", f"input {u.input}", f"output {u.output}"]
    if u.cache_read:
        parts.append(f"cache read {u.cache_read}")
    if u.cache_write_total:
        parts.append(f"cache write {u.cache_write_total}")
    if u.reasoning:
        parts.append(f"reasoning {u.reasoning}")
    return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class CodeCost:
    """The LLM spend that findings of one code concern (each call counted once per code)."""

    calls: int
    cost_usd: Decimal
    unpriced_calls: int


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


def _key_stats(key: str, calls: tuple[LlmCall, ...], total: Decimal) -> KeyStats:
    missing = [c for c in calls if c.values.get(key) is None]
    return KeyStats(
        key=key,
        llm_calls=len(calls),
        llm_calls_missing=len(missing),
        cost_usd=total,
        unattributed_usd=sum((c.cost_usd for c in missing if c.cost_usd is not None), Decimal(0)),
        unattributed_unpriced_calls=sum(1 for c in missing if c.cost_usd is None),
    )


def _boundaries(findings, by_ref, dup_of) -> tuple[BoundaryStats, ...]:
    agg: dict[Boundary, dict] = {}
    per_hop: dict[tuple[Boundary, str, str], int] = {}
    for f in findings:
        if f.code != "ATTR001" or f.boundary is None:
            continue
        a = agg.get(f.boundary)
        if a is None:
            a = agg[f.boundary] = {"keys": set(), "traces": set(), "calls": {}}
        a["keys"].add(f.key)
        a["traces"].add(f.trace_id)
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
            )
        )
    out.sort(key=lambda s: (-s.unattributed_cost_usd, -s.traces, -s.spans_affected, s.boundary))
    return tuple(out)


def evaluate_gate(result: AuditResult, policy: GatePolicy) -> GateResult:
    reasons = []
    level = FAIL_LEVELS[policy.fail_on]
    over = defaultdict(int)
    for f in result.findings:
        if f.severity.rank >= level:
            over[f.code] += 1
    if over:
        worst = ", ".join(f"{n} {code}" for code, n in sorted(over.items()))
        reasons.append(f"findings at or above {policy.fail_on}: {worst}")
    for key, limit in sorted(policy.max_unattributed_pct.items()):
        pct = unattributed_pct(result, key)
        if pct is not None and pct > limit:
            reasons.append(f"{key}: {pct:.2f}% of LLM spend unattributed (limit {limit:g}%)")
    return GateResult(not reasons, tuple(reasons), policy)


def unattributed_pct(result: AuditResult, key: str) -> float | None:
    for k in result.keys:
        if k.key == key:
            if k.cost_usd:
                return float(k.unattributed_usd / k.cost_usd * 100)
            if k.llm_calls:
                return 100.0 * k.llm_calls_missing / k.llm_calls
            return 0.0
    return None


def severity_at_least(sev: Severity, level: str) -> bool:
    return sev.rank >= FAIL_LEVELS[level]
