"""The reconciliation's result: groups, summary, untraced sources, findings. Reporters read
only this, never the exports or the traces."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Mapping

from auditor.model import Severity
from auditor.reconcile.model import Tokens


@dataclass(frozen=True, slots=True)
class Group:
    day: date
    provider: str
    model: str | None  # model key (date snapshot and spelling normalised); None: not compared
    api_key_id: str | None
    workspace_id: str | None
    tier: str | None
    provider_usd: Decimal
    traced_usd: Decimal
    ungated_usd: Decimal  # provider - traced; negative when the traces show more than the invoice
    provider_tokens: Tokens | None  # None: the provider gave only costs for this group
    traced_tokens: Tokens | None  # None: no traced call
    traced_calls: int
    provider_requests: int | None
    provider_cost_basis: str  # cost report | priced | cost report only | unpriced (joined by +)
    provider_unpriced: int = 0
    traced_unpriced_calls: int = 0
    # Traced calls with no price: kept apart (never $0). Their tokens, and how much of this
    # group's gap they could explain (their share of the invoiced tokens, at most the gap).
    traced_unpriced_tokens: Tokens | None = None
    unpriced_could_explain_usd: Decimal = Decimal(0)
    # Server-side tool requests (tool -> count) where both sides count them (``ToolGap``); None
    # when the tool is not compared for this provider.
    provider_tools: Mapping[str, int] | None = None
    traced_tools: Mapping[str, int] | None = None

    @property
    def unexplained_usd(self) -> Decimal:
        """The gap no traced call can explain: the ungated spend this group adds."""
        return self.ungated_usd - self.unpriced_could_explain_usd if self.ungated_usd > 0 else self.ungated_usd

    def label(self) -> str:
        parts = [self.day.isoformat(), self.provider, self.model or "*"]
        if self.api_key_id is not None:
            parts.append(f"key {self.api_key_id}")
        if self.workspace_id is not None:
            parts.append(f"workspace {self.workspace_id}")
        if self.tier is not None:
            parts.append(self.tier)
        return " / ".join(parts)


@dataclass(frozen=True, slots=True)
class ToolGap:
    """One server-side tool of one provider compared over the window, like the token gaps:
    requests the invoice counts vs requests the traced calls state, and the tool's own charges
    on the cost export (when given) with the share of them the untraced requests make up."""

    provider: str
    tool: str
    provider_requests: int
    traced_requests: int
    groups_with_gap: tuple[tuple[str, int, int], ...]  # (group label, provider, traced), gap != 0
    provider_usd: Decimal | None = None  # the tool's cost lines on the invoice, when given
    untraced_usd: Decimal | None = None  # provider_usd x untraced requests / provider requests

    @property
    def gap(self) -> int:
        return self.provider_requests - self.traced_requests

    def describe(self) -> str:
        """One line every format shows: '... invoiced 12 request(s), traced 9: 3 untraced ...'."""
        head = f"{self.provider} {self.tool}: invoiced {self.provider_requests} request(s), traced {self.traced_requests}"
        if self.gap > 0:
            head += f": {self.gap} untraced"
        elif self.gap < 0:
            head += f": {-self.gap} more traced than invoiced (calls outside these exports, or counted twice)"
        else:
            head += ": no gap"
        if self.provider_usd is not None:
            head += f"; {money(self.provider_usd)} of {self.tool} charges on the invoice"
            if self.untraced_usd:
                head += f", {money(self.untraced_usd)} of them for the untraced requests"
        return head


@dataclass(frozen=True, slots=True)
class ReconFinding:
    code: str
    severity: Severity
    message: str
    provider: str
    subject: tuple[str, Any] | None = None  # (dimension, value) the finding is about
    usd: Decimal | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


def finding(code: str, message: str, g: Group) -> ReconFinding:
    from auditor.rules import rule

    return ReconFinding(code, rule(code).severity, message, g.provider, ("group", g.label()), g.ungated_usd)


@dataclass(frozen=True, slots=True)
class Source:
    path: str
    kind: str
    provider: str
    usage_rows: int
    cost_rows: int
    duplicate_pages: int


@dataclass(frozen=True, slots=True)
class Summary:
    provider_usd: Decimal
    traced_usd: Decimal
    ungated_usd: Decimal  # sum of the positive group deltas, less what unpriced traced calls could explain
    overtraced_usd: Decimal  # sum of the negative ones, as a positive number
    ungated_pct: float
    traced_calls: int
    unpriced_traced_calls: int
    top_keys: tuple[tuple[str, str, Decimal], ...]  # (provider, api key, ungated usd), largest first
    top_models: tuple[tuple[str, str, Decimal], ...]
    max_ungated_pct: float | None
    passed: bool
    unpriced_traced_tokens: int = 0
    unpriced_could_explain_usd: Decimal = Decimal(0)  # kept out of ungated_usd


@dataclass(frozen=True, slots=True)
class Reconciliation:
    sources: tuple[Source, ...]
    windows: Mapping[str, tuple[tuple[int, int], ...]]
    dimensions: Mapping[str, tuple[str, ...]]  # per provider: the dimensions compared
    groups: tuple[Group, ...]
    summary: Summary
    untraced: Mapping[str, list]
    findings: tuple[ReconFinding, ...]
    notes: tuple[str, ...]
    traced_calls_outside: int = 0
    traced_calls_other: int = 0
    inputs: tuple[str, ...] = ()
    tools: tuple[ToolGap, ...] = ()

    def headline(self) -> str:
        s = self.summary
        out = (
            f"traced ${usd(s.traced_usd)} of invoiced ${usd(s.provider_usd)}: "
            f"${usd(s.ungated_usd)} ({s.ungated_pct:.1f}%) ungated"
        )
        tops = []
        if s.top_keys:
            _, k, v = s.top_keys[0]
            tops.append(f"key {k} (${usd(v)})")
        if s.top_models:
            _, m, v = s.top_models[0]
            tops.append(f"model {m} (${usd(v)})")
        if tops and s.ungated_usd > 0:
            out += "; top sources: " + ", ".join(tops)
        if s.unpriced_traced_calls:
            out += (
                f"; {s.unpriced_traced_calls} traced call(s) without a price ({s.unpriced_traced_tokens} tokens) "
                f"could explain up to ${usd(s.unpriced_could_explain_usd)} more of the gap"
            )
        return out


Q6 = Decimal("0.000001")


def usd(d: Decimal | None) -> str | None:
    """USD to 6 places, as a string (the core reports' convention)."""
    return None if d is None else str(d.quantize(Q6))


def money(d: Decimal | None) -> str:
    """``$1.230000`` / ``-$0.005850`` for reports people read."""
    if d is None:
        return "n/a"
    return f"-${usd(-d)}" if d < 0 else f"${usd(d)}"
