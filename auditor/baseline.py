"""Judging a run against an earlier report: fail only on what is new or worse.

A team adopting the auditor on a codebase with known leaks cannot gate on "no findings"; it
gates on "no new ones". Groups (``auditor.groups``) match by code, key and normalised place,
never by trace or span ids, so the same leak found in other traces is known. The gate then
fails on exactly three things: a group that is new and at or above ``fail_on`` (a new leaking
boundary is one), a key whose unattributed share rose by more than the tolerance, and, as
always, input without spans. A known group whose severity changed is ``updated``: shown, not
failed (the schema changed, not the code). The baseline report is judged under its own stored
policy, as it was when it was written.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from auditor.model import (
    NEW,
    SHARE_CALLS,
    UNCHANGED,
    UPDATED,
    AuditResult,
    BaselineDiff,
    Gate,
    KeyDelta,
    KeyStats,
)

SHOWN = 5  # groups named in a gate reason


@dataclass(frozen=True, slots=True)
class BaselineRef:
    """An earlier report, read and judged, with the tolerance the share may rise by."""

    source: str
    result: AuditResult
    tolerance_pct: float = 0.0


def compare(before: AuditResult, after: AuditResult, source: str, tolerance_pct: float) -> BaselineDiff:
    old = {g.ident: g for g in before.groups}
    states = {}
    for g in after.groups:
        prev = old.get(g.ident)
        states[g.ident] = NEW if prev is None else UNCHANGED if prev.severity is g.severity else UPDATED
    old_leaks = {b.boundary for b in before.boundaries}
    new_leaks = {b.boundary for b in after.boundaries}
    return BaselineDiff(
        source=source,
        tolerance_pct=tolerance_pct,
        states=states,
        absent=tuple(g for g in before.groups if g.ident not in states),
        keys=tuple(_key_delta(before.key(k.key), k) for k in after.keys),
        new_leaks=tuple(b for b in after.boundaries if b.boundary not in old_leaks),
        fixed_leaks=tuple(b for b in before.boundaries if b.boundary not in new_leaks),
        cost_before=before.total_cost_usd,
        cost_after=after.total_cost_usd,
    )


def _key_delta(before: KeyStats | None, after: KeyStats) -> KeyDelta:
    b_pct = None if before is None else before.share_pct
    rise = None
    if after.share_pct is not None and before is not None:
        if b_pct is None:  # the baseline had no call asking for the key: from nothing
            rise = after.share_pct
        elif before.share_basis == after.share_basis:
            rise = round(after.share_pct - b_pct, 9)  # equal inputs give exactly 0, not float noise
    return KeyDelta(after.key, b_pct, after.share_pct, after.share_basis,
                    None if before is None else before.unattributed_usd, after.unattributed_usd, rise)


def evaluate(after: AuditResult, diff: BaselineDiff) -> Gate:
    """The gate against the baseline; it replaces the absolute one (``rollup.evaluate_gate``)."""
    policy = after.policy
    reasons = []
    if not after.counts.spans and not policy.allow_empty:
        reasons.append("no spans were read: an empty or broken export proves nothing (--allow-empty if that is expected)")
    new = [g for g in after.groups if diff.states.get(g.ident) == NEW and policy.fails(g.severity)]
    if new:
        named = "; ".join(f"{g.code}{' ' + g.key if g.key else ''}{' at ' + g.where if g.where else ''}" for g in new[:SHOWN])
        more = f"; and {len(new) - SHOWN} more" if len(new) > SHOWN else ""
        reasons.append(f"{len(new)} new finding group(s) at or above {policy.fail_on} since {diff.source}: {named}{more}")
    for k in diff.keys:
        if k.rise is not None and k.rise > diff.tolerance_pct:
            reasons.append(f"{k.key}: unattributed share rose {delta_text(k)} (tolerance {diff.tolerance_pct:g} points)")
    return Gate(not reasons, tuple(reasons))


def apply(after: AuditResult, ref: BaselineRef) -> AuditResult:
    diff = compare(ref.result, after, ref.source, ref.tolerance_pct)
    return replace(after, baseline=diff, gate=evaluate(after, diff))


def delta_text(k: KeyDelta) -> str:
    """'10.0% -> 25.0% of spend (+15.0 points)', the same words in every format."""
    what = "calls" if k.basis == SHARE_CALLS else "spend"

    def pct(p: float | None) -> str:
        return "n/a" if p is None else f"{p:.1f}%"

    change = "not comparable" if k.rise is None else f"{k.rise:+.1f} points"
    return f"{pct(k.before_pct)} -> {pct(k.after_pct)} of {what} ({change})"
