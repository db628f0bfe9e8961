"""The figures every human-facing report leads with, computed once from an AuditResult.

HTML, Markdown, JUnit and SARIF all say the same things (calls, spend, unattributed share
per key, gate); deriving them here keeps the formats from drifting apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal

from auditor.model import AuditResult, BoundaryStats, ExampleTrace
from auditor.result_json import usd
from auditor.rollup import FAIL_LEVELS


def money(d: Decimal | None) -> str:
    return "n/a" if d is None else f"${usd(d)}"


def pct_text(p: float | None) -> str:
    return "n/a" if p is None else f"{p:.1f}%"


@dataclass(frozen=True, slots=True)
class KeyLine:
    key: str
    llm_calls: int
    missing: int
    unattributed: str  # money
    share: float | None  # percent: of spend when anything is priced, else of calls
    share_basis: str  # "spend" or "calls"
    unpriced_missing: int
    limit: float | None  # the gate's max_unattributed_pct for this key, if any

    @property
    def share_text(self) -> str:
        return pct_text(self.share)

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


def headline(result: AuditResult) -> Headline:
    gate = result.extra.get("gate")
    policy = result.extra.get("policy")
    limits = dict(getattr(policy, "max_unattributed_pct", {}) or {})
    lines = []
    for k in result.keys:
        if k.cost_usd:
            share, basis = float(k.unattributed_usd / k.cost_usd * 100), "spend"
        elif k.llm_calls:
            share, basis = 100.0 * k.llm_calls_missing / k.llm_calls, "calls"
        else:
            share, basis = None, "calls"
        lines.append(
            KeyLine(k.key, k.llm_calls, k.llm_calls_missing, money(k.unattributed_usd), share, basis,
                    k.unattributed_unpriced_calls, limits.get(k.key))
        )
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
        gate_passed=None if gate is None else gate.passed,
        gate_reasons=() if gate is None else tuple(gate.reasons),
        fail_on=getattr(policy, "fail_on", "error"),
    )


def breaks_gate(severity, result: AuditResult) -> bool:
    policy = result.extra.get("policy")
    level = FAIL_LEVELS[getattr(policy, "fail_on", "error")]
    return severity.rank >= level


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
    starts = [c.start_ns for c in result.calls if c.start_ns]
    ts = min(starts) / 1e9 if starts else 0.0
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
