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
from typing import Iterable, Mapping, Sequence

from auditor.boundary import fix_hint
from auditor.duplicates import duplicate_clusters
from auditor.examples import pick as pick_examples
from auditor.groups import GroupTally
from auditor.joined import Naming, TraceBlock, blocks
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
from auditor.spill import Lazy, Spilled, finding_view, in_ref_order

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


def fold_duplicates(calls_sorted: Sequence[LlmCall]) -> tuple[Sequence[LlmCall], dict, tuple[Folded, ...]]:
    """Unique calls (a folded call attributed if any of its records carries the key), the
    record -> kept record map, and each fold. Spilled records give spilled unique calls."""
    dup_of: dict[tuple[str, str], tuple[str, str]] = {}
    merged: dict[tuple[str, str], LlmCall] = {}
    folds: list[Folded] = []
    for cluster in duplicate_clusters(calls_sorted, ordered=True, spill=isinstance(calls_sorted, Spilled)):
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
    if isinstance(calls_sorted, Spilled):
        unique = Lazy(lambda: (merged.get(c.ref, c) for c in calls_sorted if c.ref not in dup_of))
    else:
        unique = tuple(merged.get(c.ref, c) for c in calls_sorted if c.ref not in dup_of)
    return unique, dup_of, tuple(folds)


# ---------------------------------------------------------------- finish

_RESULT_CHECKS = REGISTRY.checks_for(Visit.RESULT)
_PER_RECORD = REGISTRY.per_record_codes()


def finish(parts: Parts, run: RunInfo) -> AuditResult:
    policy = parts.policy
    calls_sorted = in_ref_order(parts.calls)  # check --stream's spilled records already are, on disk
    unique, dup_of, folds = fold_duplicates(calls_sorted)
    off = {code for code, v in policy.severity.items() if v == "off"}
    ctx = ResultContext(unique, folds, parts.keys, parts.required_keys, lambda code: code not in off,
                        parts.llm_like_unread, parts.llm_like_example, parts.dialects,
                        tuple(sorted(parts.headless, key=lambda h: (h.trace_id, h.span_id))), frozenset(parts.serving))
    derived = [f for check in _RESULT_CHECKS for f in check.fn(ctx)]
    derived += links.resolve(parts.claims, parts.anchors)  # span links, followed across traces
    findings = _judged_findings(parts.findings, derived, dup_of, policy)

    n_calls, total, unpriced, keys = _spend(unique, parts.required_keys)
    naming = Naming(dup_of, {f.kept.ref: f.kept for f in folds})
    tallies = (_BoundaryTally(naming), _CodeTally(naming), GroupTally(naming))
    counts: dict[str, int] = defaultdict(int)
    over: dict[str, int] = defaultdict(int)  # findings at or above the gate's severity, by code
    for block in blocks(findings, unique):  # one pass over the findings (check --stream reads them from disk)
        for f in block.findings:
            counts[f.code] += 1
            if policy.fails(f.severity):
                over[f.code] += 1
        for t in tallies:
            t.trace(block)
    boundaries, by_code, groups = (t.done() for t in tallies)
    if isinstance(findings, Lazy):
        findings.know_length(sum(counts.values()))
    if isinstance(unique, Lazy):
        unique.know_length(n_calls)
    return AuditResult(
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
        cost_by_code=by_code,
        gate=evaluate_gate(over, keys, policy, parts.counts.spans),
        groups=groups,
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
        return finding_view(found, keep, tuple(sorted(apply_policy(derived, policy), key=Finding.sort_key)))
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


class _CodeTally:
    """The spend that findings of each code concern, each call counted once per code."""

    def __init__(self, naming: Naming) -> None:
        self.naming = naming
        self.tally: dict[str, list] = {}  # code -> [calls, Decimal spend, unpriced calls]
        self.shared: dict[str, set] = defaultdict(set)  # code -> kept records of folds it names

    def trace(self, block: TraceBlock) -> None:
        naming = self.naming
        local: dict[str, set[str]] = defaultdict(set)
        for f in block.findings:
            for ref in naming.refs(f):
                if naming.call(ref, block) is None:
                    continue
                if naming.shared(ref):
                    self.shared[f.code].add(ref)
                else:
                    local[f.code].add(ref[1])
        for code, sids in local.items():
            self._count(code, (block.calls[sid] for sid in sids))

    def _count(self, code: str, calls: Iterable[LlmCall]) -> None:
        t = self.tally.get(code)
        if t is None:
            t = self.tally[code] = [0, Decimal(0), 0]
        for c in calls:
            t[0] += 1
            if c.cost_usd is None:
                t[2] += 1
            else:
                t[1] += c.cost_usd

    def done(self) -> dict[str, CodeCost]:
        kept = self.naming.kept
        for code, refs in self.shared.items():
            self._count(code, (kept[r] for r in refs))
        return {code: CodeCost(*self.tally[code]) for code in sorted(self.tally)}


def _spend(calls: Iterable[LlmCall], required: tuple[str, ...]) -> tuple[int, Decimal, int, tuple[KeyStats, ...]]:
    """Calls, total spend, unpriced calls and each required key's stats, in one pass."""
    n, total, unpriced = 0, Decimal(0), 0
    tallies = [_KeyTally(k) for k in required]
    for c in calls:
        n += 1
        if c.cost_usd is None:
            unpriced += 1
        else:
            total += c.cost_usd
        for t in tallies:
            t.add(c)
    return n, total, unpriced, tuple(t.stats() for t in tallies)


class _KeyTally:
    __slots__ = ("key", "asked", "missing", "priced", "spend", "unattributed", "missing_unpriced")

    def __init__(self, key: str) -> None:
        self.key = key
        self.asked = self.missing = self.priced = self.missing_unpriced = 0
        self.spend = self.unattributed = Decimal(0)

    def add(self, c: LlmCall) -> None:
        values = c.values
        if self.key not in values:
            return
        self.asked += 1
        cost = c.cost_usd
        if cost is not None:
            self.priced += 1
            self.spend += cost
        if values[self.key] is None:
            self.missing += 1
            if cost is None:
                self.missing_unpriced += 1
            else:
                self.unattributed += cost

    def stats(self) -> KeyStats:
        """The share computed here, once."""
        if self.priced:
            share, basis = (float(self.unattributed * 100 / self.spend) if self.spend else 0.0), SHARE_SPEND
        elif self.asked:
            share, basis = 100.0 * self.missing / self.asked, SHARE_CALLS
        else:
            share, basis = None, None
        return KeyStats(
            key=self.key,
            llm_calls=self.asked,
            llm_calls_missing=self.missing,
            cost_usd=self.spend,
            unattributed_usd=self.unattributed,
            unattributed_unpriced_calls=self.missing_unpriced,
            share_pct=share,
            share_basis=basis,
        )


def key_stats(key: str, calls: Iterable[LlmCall]) -> KeyStats:
    """A key over the calls whose schema asks for it."""
    t = _KeyTally(key)
    for c in calls:
        t.add(c)
    return t.stats()


def share_text(k: KeyStats) -> str:
    """How a share reads in every format: '12.5% of spend', '100.0% of calls (nothing priced)', 'n/a'."""
    if k.share_pct is None:
        return "n/a"
    if k.share_basis == SHARE_CALLS:
        return f"{k.share_pct:.1f}% of calls (nothing priced)"
    return f"{k.share_pct:.1f}% of spend"


class _Leaks:
    """One boundary's leak findings, summed a trace at a time."""

    __slots__ = ("keys", "traces", "last", "examples", "causes", "spans", "calls", "cost", "shared")

    def __init__(self) -> None:
        self.keys: set = set()
        self.traces, self.last, self.examples = 0, None, []
        self.causes: dict[tuple[str, str], list] = {}  # (mechanism, confidence) -> [traces, last trace]
        self.spans = self.calls = 0
        self.cost = Decimal(0)
        self.shared: dict[tuple[str, str], set] = {}  # kept record of a fold -> keys it lacks here

    def count_call(self, call: LlmCall | None, keys: set) -> None:
        self.calls += 1
        if call is not None and call.cost_usd is not None and any(call.values.get(k) is None for k in keys):
            self.cost += call.cost_usd


class _BoundaryTally:
    """Per leaking boundary: keys, traces, spans and calls affected, the spend left unattributed
    (a call counted once, when it lacks a key the leak drops), examples and causes. Traces
    arrive in order, so the distinct traces and the smallest few need no set."""

    def __init__(self, naming: Naming) -> None:
        self.naming = naming
        self.acc: dict[Boundary, _Leaks] = {}

    def trace(self, block: TraceBlock) -> None:
        dup, shared = self.naming.duplicates, self.naming.shared
        tid = block.trace_id
        hops: dict[tuple[Boundary, str], int] = {}
        local: dict[tuple[Boundary, str], set] = {}
        for f in block.findings:
            if f.code != LEAK or f.boundary is None:
                continue
            b = f.boundary
            a = self.acc.get(b)
            if a is None:
                a = self.acc[b] = _Leaks()
            a.keys.add(f.key)
            if a.last != tid:
                a.last = tid
                a.traces += 1
                if len(a.examples) < EXAMPLES:
                    a.examples.append(tid)
            if f.mechanism is not None:
                c = a.causes.setdefault((f.mechanism.name, f.mechanism.confidence), [0, None])
                if c[1] != tid:
                    c[0] += 1
                    c[1] = tid
            hop = (b, f.span_id)
            hops[hop] = max(hops.get(hop, 0), f.spans_affected)
            for sid in f.llm_calls_affected:
                ref = dup.get((tid, sid), (tid, sid))
                if shared(ref):
                    a.shared.setdefault(ref, set()).add(f.key)
                else:
                    local.setdefault((b, ref[1]), set()).add(f.key)
        for (b, _span), n in hops.items():
            self.acc[b].spans += n
        for (b, sid), keys in local.items():
            self.acc[b].count_call(block.calls.get(sid), keys)

    def done(self) -> tuple[BoundaryStats, ...]:
        kept = self.naming.kept
        out = []
        for b, a in self.acc.items():
            for ref, keys in a.shared.items():
                a.count_call(kept.get(ref), keys)
            out.append(
                BoundaryStats(
                    boundary=b,
                    keys=tuple(sorted(a.keys)),
                    traces=a.traces,
                    spans_affected=a.spans,
                    llm_calls_affected=a.calls,
                    unattributed_cost_usd=a.cost,
                    example_trace_ids=tuple(a.examples),
                    fix=fix_hint(b),
                    mechanisms=tuple(sorted(((n, c, t[0]) for (n, c), t in a.causes.items()),
                                            key=lambda m: (-m[2], m[0], m[1]))),
                )
            )
        out.sort(key=lambda s: (-s.unattributed_cost_usd, -s.traces, -s.spans_affected, s.boundary))
        return tuple(out)


def evaluate_gate(over: Mapping[str, int], keys: tuple[KeyStats, ...], policy: Policy, spans: int = 1) -> Gate:
    """``over``: the findings at or above the policy's fail_on, by code (counted in ``finish``)."""
    reasons = []
    if not spans and not policy.allow_empty:
        reasons.append("no spans were read: an empty or broken export proves nothing (--allow-empty if that is expected)")
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
