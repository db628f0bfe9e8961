"""The invoice side at its finest grain: usage rows summed, priced, and cost lines allocated.

Provider cost comes from a cost export when one is given: a cost line (day, workspace,
model, tier, token type, whatever it names) is shared among the usage groups it covers in
proportion to their list price for that token type. Without a cost export, the provider's
tokens are priced with the auditor's own pricing code, at per-token rates probed from it
(so aggregated tokens are priced linearly, as the provider bills each request).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal

from auditor.model import LlmCall, Usage
from auditor.pricing import Pricer
from auditor.reconcile.fields import to_ns
from auditor.reconcile.model import TOKEN_TYPES, CostRow, Tokens, UsageExport
from auditor.reconcile.names import model_key

PROBE = 1000  # tokens; small enough to stay under every long-context price tier
LONG_FILLER = 200_001  # uncached input that puts a probe past the 200k-token price tier

# Full-grain key: (day, provider, model key, api key, workspace, tier, context); None = not known.
Key = tuple


@dataclass
class ProviderGroup:
    key: Key
    models: set = field(default_factory=set)  # the provider's spellings of the model
    tokens: Tokens | None = None
    requests: int | None = None
    priced_usd: Decimal | None = None
    priced_complete: bool = True
    allocated_usd: Decimal | None = None
    rates: dict | None = None
    tools: dict | None = None  # server-side tool requests (tool -> count), when the export counts them

    @property
    def usd(self) -> Decimal | None:
        return self.allocated_usd if self.allocated_usd is not None else self.priced_usd

    @property
    def basis(self) -> str:
        if self.allocated_usd is not None:
            return "cost report" if self.tokens is not None else "cost report only"
        return "priced" if self.priced_usd is not None else "unpriced"


def key_of(day: date, dims) -> Key:
    return (day, dims.provider, model_key(dims.model), dims.api_key_id, dims.workspace_id, dims.tier, dims.context)


class RateBook:
    """Per-token rates for (provider, model, day, tier), probed from the pricing code once."""

    def __init__(self, pricer: Pricer):
        self.pricer = pricer
        self._cache: dict[tuple, dict[str, Decimal | None]] = {}

    def rates(self, provider: str, models: list[str], day: date, tier: str | None, long: bool = False) -> dict[str, Decimal | None]:
        k = (provider, tuple(models), day, tier, long)
        if k not in self._cache:
            self._cache[k] = self._probe(provider, models, day, tier, long)
        return self._cache[k]

    def _probe(self, provider, models, day, tier, long) -> dict[str, Decimal | None]:
        when = to_ns(datetime(day.year, day.month, day.day, tzinfo=timezone.utc))
        for model in models:
            got = {t: self._rate(provider, model, when, tier, t, long) for t in TOKEN_TYPES}
            if got["uncached_input"] is not None:
                return got
        return {t: None for t in TOKEN_TYPES}

    def _rate(self, provider, model, when, tier, token_type, long) -> Decimal | None:
        field_name = "input" if token_type == "uncached_input" else token_type
        prices = []
        for n in (PROBE, 2 * PROBE):
            call = LlmCall("", "", "", "", "", when, when, provider, model, None, Usage(), {}, tier=None if tier in (None, "standard") else tier)
            counts = {field_name: n}
            if long:  # both probes past the tier: their difference is the long-context rate
                counts["input"] = counts.get("input", 0) + LONG_FILLER
            cost, _ = self.pricer.price_usage(call, Usage(**counts, convention="excluding"))
            if cost is None:
                return None
            prices.append(cost)
        # The difference cancels any per-request fee: a pure per-token rate.
        return (prices[1] - prices[0]) / PROBE


def price_tokens(tokens: Tokens, rates: dict[str, Decimal | None]) -> Decimal | None:
    total = Decimal(0)
    for t in TOKEN_TYPES:
        n = tokens.get(t)
        if not n:
            continue
        r = rates.get(t)
        if r is None:
            return None
        total += r * n
    return total


def build(exports: list[UsageExport], book: RateBook) -> tuple[dict[Key, ProviderGroup], list[CostRow]]:
    """Provider groups at full grain, and the non-token cost lines (searches, code execution)."""
    groups: dict[Key, ProviderGroup] = {}
    for ex in exports:
        for row in ex.usage:
            k = key_of(row.day, row.dims)
            g = groups.get(k) or groups.setdefault(k, ProviderGroup(k))
            if row.dims.model:
                g.models.add(row.dims.model)
            g.tokens = row.tokens if g.tokens is None else g.tokens + row.tokens
            if row.requests is not None:
                g.requests = (g.requests or 0) + row.requests
            if row.tools is not None:
                g.tools = g.tools if g.tools is not None else {}
                for tool, n in row.tools:
                    g.tools[tool] = g.tools.get(tool, 0) + n
    for g in groups.values():
        day, provider, mkey, _, _, tier, context = g.key
        names = sorted(g.models) + ([mkey] if mkey and mkey not in g.models else [])
        g.rates = book.rates(provider, names, day, tier, context == "long")
        g.priced_usd = price_tokens(g.tokens, g.rates) if g.tokens is not None else None
    other: list[CostRow] = []
    for ex in exports:
        for c in ex.costs:
            if c.cost_type != "tokens":
                other.append(c)
                continue
            _allocate(c, groups)
    return groups, other


def _matches(c: CostRow, g: ProviderGroup, ckey: Key) -> bool:
    # A dimension one side was not grouped by (None) matches anything on the other.
    return all(a is None or b is None or a == b for a, b in zip(ckey, g.key))


def _allocate(c: CostRow, groups: dict[Key, ProviderGroup]) -> None:
    ckey = key_of(c.day, c.dims)
    weights: dict[Key, Decimal] = {}
    for k, g in groups.items():
        if g.tokens is None or not _matches(c, g, ckey):
            continue
        if c.token_type is not None:
            n = g.tokens.get(c.token_type)
            r = (g.rates or {}).get(c.token_type)
            w = Decimal(n) * r if (r is not None and r > 0) else Decimal(n)
        else:
            w = g.priced_usd if g.priced_usd else Decimal(g.tokens.total)
        if w > 0:
            weights[k] = w
    total = sum(weights.values(), Decimal(0))
    if not weights or total <= 0:
        g = groups.get(ckey) or groups.setdefault(ckey, ProviderGroup(ckey))
        if c.dims.model:
            g.models.add(c.dims.model)
        g.allocated_usd = (g.allocated_usd or Decimal(0)) + c.usd
        return
    for k, w in weights.items():
        g = groups[k]
        g.allocated_usd = (g.allocated_usd or Decimal(0)) + c.usd * w / total


def merged_intervals(exports: list[UsageExport]) -> dict[str, list[tuple[int, int]]]:
    by: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for ex in exports:
        by[ex.provider].extend(ex.intervals)
    out = {}
    for p, ivs in by.items():
        ivs.sort()
        merged: list[list[int]] = []
        for s, e in ivs:
            if merged and s <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], e)
            else:
                merged.append([s, e])
        out[p] = [(s, e) for s, e in merged]
    return out


def in_window(ns: int, intervals: list[tuple[int, int]]) -> bool:
    return any(s <= ns < e for s, e in intervals)
