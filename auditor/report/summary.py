"""The figures every human-facing report leads with, computed once from an AuditResult.

HTML, Markdown, JUnit and SARIF all say the same things (calls, spend, unattributed share
per key, gate); deriving them here keeps the formats from drifting apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal

from auditor import mechanism
from auditor.model import SHARE_CALLS, AuditResult, BoundaryStats, ExampleTrace, KeyStats
from auditor.result_json import usd
from auditor.rollup import share_text


def money(d: Decimal | None) -> str:
    return "n/a" if d is None else f"${usd(d)}"


def pct_text(p: float | None) -> str:
    return "n/a" if p is None else f"{p:.1f}%"


@dataclass(frozen=True, slots=True)
class KeyLine:
    """A key's figures as every format prints them, read from the result's KeyStats."""

    key: str
    llm_calls: int
    missing: int
    unattributed: str  # money
    share: float | None  # KeyStats.share_pct
    share_basis: str | None  # KeyStats.share_basis: "spend", "calls" (nothing priced) or None
    unpriced_missing: int
    limit: float | None  # the gate's max_unattributed_pct for this key, if any
    share_text: str  # "12.5% of spend", "100.0% of calls (nothing priced)", "n/a"

    @property
    def pct(self) -> str:
        return pct_text(self.share)

    @property
    def by_calls(self) -> bool:
        return self.share_basis == SHARE_CALLS

    @property
    def over_limit(self) -> bool:
        return self.limit is not None and self.share is not None and self.share > self.limit


@dataclass(frozen=True, slots=True)
class Headline:
    traces: int
    spans: int
    llm_calls: int
    duplicate_records: int
    spend: str
    priced_calls: int
    unpriced_calls: int
    keys: tuple[KeyLine, ...]
    gate_passed: bool | None
    gate_reasons: tuple[str, ...]
    fail_on: str


def key_line(k: KeyStats, limit: float | None) -> KeyLine:
    return KeyLine(k.key, k.llm_calls, k.llm_calls_missing, money(k.unattributed_usd), k.share_pct, k.share_basis,
                   k.unattributed_unpriced_calls, limit, share_text(k))


def headline(result: AuditResult) -> Headline:
    gate, policy = result.gate, result.policy
    limits = policy.max_unattributed_pct
    lines = [key_line(k, limits.get(k.key)) for k in result.keys]
    n = len(result.calls)
    return Headline(
        traces=result.counts.traces,
        spans=result.counts.spans,
        llm_calls=n,
        duplicate_records=len(result.duplicates),
        spend=money(result.total_cost_usd),
        priced_calls=n - result.unpriced_calls,
        unpriced_calls=result.unpriced_calls,
        keys=tuple(lines),
        gate_passed=gate.passed,
        gate_reasons=tuple(gate.reasons),
        fail_on=policy.fail_on,
    )


@dataclass(frozen=True, slots=True)
class Cause:
    """A boundary's most evidenced mechanism (``auditor.mechanism``), as every format words it."""

    label: str  # "receiver-no-baggage (high confidence, 3 of 3 traces)"
    patch: str


def cause(b: BoundaryStats) -> Cause | None:
    """The mechanism that explains most of a boundary's traces; None when none is evidenced."""
    named = [(n, c, t) for n, c, t in b.mechanisms if n != mechanism.UNKNOWN]
    if not named:
        return None
    name, confidence, traces = max(named, key=lambda m: (m[2], m[0]))
    return Cause(f"{name} ({confidence} confidence, {traces} of {b.traces} trace{'s' if b.traces != 1 else ''})",
                 mechanism.PATCHES.get(name, b.fix))


def breaks_gate(severity, result: AuditResult) -> bool:
    return result.policy.fails(severity)


def ranked_by_cost(result: AuditResult) -> bool:
    """Boundaries are ranked by unattributed cost when any has cost, else by traces."""
    return any(b.unattributed_cost_usd for b in result.boundaries)


def example_for(result: AuditResult, b: BoundaryStats) -> ExampleTrace | None:
    for ex in result.parts.examples:
        if ex.boundary == b.boundary:
            return ex
    return None


def recorded_at(result: AuditResult) -> str:
    """When the audited calls happened (earliest start), so reports stay reproducible."""
    first = min((c.start_ns for c in result.calls if c.start_ns), default=0)
    ts = first / 1e9 if first else 0.0
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
