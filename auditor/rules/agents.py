"""Coding-agent findings (Claude Code and the like): who and what their spend cannot be charged to.

A coding agent reports every model call with the developer's identity (``developer``) and
session (``session``) on the record, and the administrator's team / cost center / repository
on the resource of each developer's machine. What goes wrong is per machine, not per hop:
one laptop without the managed settings sends no team for all its calls. So these findings
are aggregates over the unique calls of a whole result (derived in ``rollup.finish``, hence
exact under merge), plus one per-call check:

- AGENT001: a developer whose calls lack a required key (team, cost_center, repository, ...),
  with the calls and spend affected;
- AGENT002: a session whose calls carry no developer (API-key or unauthenticated use);
- AGENT003: a call whose self-reported cost disagrees with our price beyond a tolerance.

The keys are found by name: ``developer`` and ``session`` (as the claude-code preset names them).
AGENT001/002 span many traces, so they name their first call and carry the counts and spend in
the message (``llm_calls_affected`` is trace-local by contract and left empty).
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal, InvalidOperation
from typing import Any, Iterable, Mapping

from auditor.calls import TOOL_COST
from auditor.model import Finding, LlmCall, Severity
from auditor.rules.context import ResultContext, TraceContext, lacks
from auditor.rules.registry import Check, Rule, Visit

AGENT001 = Rule(
    "AGENT001", "developer-missing-key", "agents", Severity.ERROR,
    "a developer's model calls lack a required key (team, cost center, repository)",
    "Every call from this developer's machine misses the key, so their spend cannot be charged to a team, "
    "cost center or repository. The administrator's OTEL_RESOURCE_ATTRIBUTES did not reach that machine: "
    "distribute them through managed settings. The finding gives the calls and spend affected.",
    Visit.RESULT)
AGENT002 = Rule(
    "AGENT002", "session-without-user", "agents", Severity.ERROR,
    "a session's model calls carry no user",
    "The session's calls have no user.email or account id: API-key or unauthenticated use that no developer "
    "can be charged for. Require sign-in (managed settings) or attribute the key to its owner.",
    Visit.RESULT)
AGENT003 = Rule(
    "AGENT003", "reported-cost-mismatch", "agents", Severity.WARNING,
    "the cost the tool reports disagrees with our price",
    "The record's own cost (e.g. Claude Code's cost_usd, an estimate at list price) differs from the price "
    "computed from its token counts by more than the tolerance (dialects.reported_cost_tolerance_pct, "
    "default 5%). Usually cache tokens counted at the wrong rate, or a model billed under another name.",
    Visit.CALL)

DEVELOPER, SESSION = "developer", "session"
DEFAULT_TOLERANCE_PCT = Decimal(5)
Q6 = Decimal("0.000001")


def _usd(d: Decimal) -> str:
    return f"${d.quantize(Q6)}"


def _spend(calls: Iterable[LlmCall]) -> tuple[Decimal, int]:
    total, unpriced = Decimal(0), 0
    for c in calls:
        if c.cost_usd is None:
            unpriced += 1
        else:
            total += c.cost_usd
    return total, unpriced


def _cost_text(calls: list[LlmCall]) -> str:
    total, unpriced = _spend(calls)
    return _usd(total) + (f" + {unpriced} unpriced" if unpriced else "")


def developers_missing(ctx: ResultContext) -> list[Finding]:
    """AGENT001 over the unique calls of a result (sorted by ref)."""
    if DEVELOPER not in ctx.keys:
        return []
    return _developers_missing(ctx.calls, [k for k in ctx.required_keys if k not in (DEVELOPER, SESSION)])


def sessions_without_user(ctx: ResultContext) -> list[Finding]:
    """AGENT002 over the unique calls of a result (sorted by ref)."""
    if DEVELOPER not in ctx.keys or SESSION not in ctx.keys:
        return []
    return _sessions_without_user(ctx.calls)


def _developers_missing(calls: tuple[LlmCall, ...], keys: list[str]) -> list[Finding]:
    by_dev: dict[Any, list[LlmCall]] = defaultdict(list)
    for c in calls:
        dev = c.values.get(DEVELOPER)
        if dev is not None:
            by_dev[dev].append(c)
    out = []
    for dev in sorted(by_dev, key=str):
        mine = by_dev[dev]
        for key in keys:
            missing = [c for c in mine if lacks(c, key)]
            if not missing:
                continue
            first = missing[0]
            out.append(
                AGENT001.finding(
                    first.trace_id, first.span_id,
                    f"developer {dev}: {len(missing)} of {len(mine)} model calls ({_cost_text(missing)} of "
                    f"{_cost_text(mine)}) carry no {key}. Their machine does not send it: set it in "
                    "OTEL_RESOURCE_ATTRIBUTES through managed settings so every machine reports it.",
                    key=key,
                    child_value=dev,
                )
            )
    return out


def _sessions_without_user(calls: tuple[LlmCall, ...]) -> list[Finding]:
    by_session: dict[Any, list[LlmCall]] = defaultdict(list)
    for c in calls:
        s = c.values.get(SESSION)
        if s is not None:
            by_session[s].append(c)
    out = []
    for s in sorted(by_session, key=str):
        mine = by_session[s]
        missing = [c for c in mine if lacks(c, DEVELOPER)]
        if not missing:
            continue
        first = missing[0]
        out.append(
            AGENT002.finding(
                first.trace_id, first.span_id,
                f"session {s}: {len(missing)} of {len(mine)} model calls ({_cost_text(missing)}) carry no user "
                "(no user.email or account): API-key or unauthenticated use, which no developer can be charged "
                "for. Require sign-in (forceLoginMethod in managed settings) or tag the key's owner.",
                key=DEVELOPER,
                child_value=s,
            )
        )
    return out


def tolerance_pct(dialects: Mapping[str, Any]) -> Decimal:
    v = dialects.get("reported_cost_tolerance_pct") if dialects else None
    if isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0:
        return Decimal(str(v))
    return DEFAULT_TOLERANCE_PCT


def tool_charges(attrs: Mapping[str, Any]) -> Decimal:
    v = attrs.get(TOOL_COST)
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        return Decimal(0)
    try:
        d = Decimal(str(v))
    except InvalidOperation:
        return Decimal(0)
    return d if d.is_finite() and d > 0 else Decimal(0)


def reported_cost(ctx: TraceContext, call: LlmCall, span) -> list[Finding]:
    """AGENT003: the source's own cost differs from our price by more than the tolerance."""
    reported, ours = call.reported_cost_usd, call.cost_usd
    if reported is None or ours is None or not ctx.enabled("AGENT003"):
        return []
    # Our price is the tokens'; a source that says which part of its figure is server-side tool
    # charges (LiteLLM's gen_ai.cost.tool_usage_cost: web searches) is compared without them.
    tools = tool_charges(span.attributes)
    if tools:
        reported -= tools
    tolerance = ctx.compiled.reported_cost_tolerance
    diff = abs(reported - ours)
    if diff <= Q6 or diff * 100 <= tolerance * max(abs(reported), abs(ours)):
        return []
    pct = (diff * 100 / ours) if ours else None
    rel = f" ({'+' if reported > ours else '-'}{pct.quantize(Decimal('0.1'))}%)" if pct is not None else ""
    return [
        AGENT003.finding(
            call.trace_id, call.span_id,
            f"call {call.name!r} ({call.model or 'no model'}) reports {_usd(reported)}"
            + (f" for its tokens (its {_usd(tools)} of tool charges aside)" if tools else "")
            + f", we price it at {_usd(ours)}"
            f"{rel}, beyond the {tolerance}% tolerance. The tool's figure is an estimate: check its token "
            "accounting (cache reads and writes are priced differently) and which model it was billed as.",
            parent_value=str(reported.quantize(Q6)),
            child_value=str(ours.quantize(Q6)),
        )
    ]


RULES = (AGENT001, AGENT002, AGENT003)
CHECKS = (
    Check(Visit.RESULT, ("AGENT001",), developers_missing),
    Check(Visit.RESULT, ("AGENT002",), sessions_without_user),
    Check(Visit.CALL, ("AGENT003",), reported_cost),
)
