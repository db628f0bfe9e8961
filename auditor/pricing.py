"""Price LLM calls exactly, offline, from the pinned genai-prices data.

``genai_prices.calc_price`` costs ~150 us a call (model matching, usage validation,
unit decomposition). We look each (provider, model, day, tier) up ONCE, turn the result
into a small table of per-unit rates, and do the per-span arithmetic here in Decimal
exactly as genai-prices does it: every priced unit is charged for its *leaf* count (its
count minus the counts of the more specific priced units below it, e.g. input minus cache
read and cache write), and a tiered rate applies to all tokens once the call's total input
crosses the tier. ``tests/test_pricing_property.py`` proves fast path == calc_price.

Never fetches: ``UpdatePrices`` is never started, so the bundled snapshot is the only data.
Service tiers: genai-prices price variants (``processing=batch``, ``service_tier=flex|
priority``) when the model has them; otherwise batch and flex are half the standard rate
(Anthropic, OpenAI and Google all price them so) and priority is priced at standard rates
with a note. The schema's ``prices:`` entries override or add rates (USD per million tokens)
and may take a discount off the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Mapping

import genai_prices
from genai_prices import data_snapshot
from genai_prices.types import ModelPrice, TieredPrices, TimeOfDateConstraint
from genai_prices.units import _get_registry

from auditor.model import LlmCall, Usage

NS_PER_DAY = 86_400 * 10**9
NS_PER_MINUTE = 60 * 10**9

# Our counts, in the order of the vector the fast path fills per span (genai usage keys).
USAGE_KEYS = (
    "input_tokens",  # TOTAL input, cache included (genai-prices' definition)
    "cache_read_tokens",
    "cache_write_tokens",  # all cache writes (5m + 1h + unspecified)
    "cache_write_5m_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
    "output_reasoning_tokens",
    "requests",
)
_KEY_INDEX = {k: i for i, k in enumerate(USAGE_KEYS)}

# Span provider names (semconv gen_ai.provider.name / gen_ai.system, LiteLLM's
# custom_llm_provider, OpenInference llm.provider) -> genai-prices provider ids.
PROVIDER_IDS = {
    "aws.bedrock": "aws",
    "bedrock": "aws",
    "bedrock_converse": "aws",
    "amazon-bedrock": "aws",
    "az.ai.openai": "azure",
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure",
    "az.ai.inference": "azure",
    "azure_ai": "azure",
    "gcp.gemini": "google",
    "gcp.vertex_ai": "google",
    "gcp.gen_ai": "google",
    "vertex_ai": "google",
    "vertex_ai_beta": "google",
    "gemini": "google",
    "vertexai": "google",
    "google_genai": "google",
    "mistral_ai": "mistral",
    "mistralai": "mistral",
    "x_ai": "x-ai",
    "xai": "x-ai",
    "together_ai": "together",
    "fireworks_ai": "fireworks",
    "cohere_chat": "cohere",
}

TIER_ALIASES = {
    "batch": "batch",
    "flex": "flex",
    "priority": "priority",
    "default": None,
    "auto": None,
    "standard": None,
    "standard_only": None,
    "scale": None,
    "on_demand": None,
}
# tier -> (genai-prices price context, our fallback multiplier when the data has no variant)
TIER_RULES: dict[str, tuple[dict[str, str], Decimal | None]] = {
    "batch": ({"processing": "batch"}, Decimal("0.5")),
    "flex": ({"service_tier": "flex"}, Decimal("0.5")),
    "priority": ({"service_tier": "priority"}, None),
}


def normalize_tier(tier: str | None) -> str | None:
    if not tier:
        return None
    t = tier.strip().lower()
    return TIER_ALIASES.get(t, t if t in TIER_RULES else None)


@dataclass(frozen=True, slots=True)
class Rates:
    """One resolved price: per priced unit (vector index, price, per, descendant positions)."""

    units: tuple[tuple[int, Any, int, tuple[int, ...]], ...]  # in leaf order (most specific first)
    tiered: bool
    multiplier: Decimal | None
    note: str

    def cost(self, vec: tuple[int, ...]) -> Decimal:
        """The exact price of one call's counts (see USAGE_KEYS); ValueError on impossible counts."""
        leaves: list[int] = []
        total = Decimal(0)
        total_input = vec[0]
        for idx, price, per, desc in self.units:
            leaf = vec[idx]
            for j in desc:
                leaf -= leaves[j]
            if leaf < 0:
                raise ValueError(f"{USAGE_KEYS[idx]} ({vec[idx]}) is smaller than its more specific counts")
            leaves.append(leaf)
            if not leaf:
                continue
            if self.tiered and isinstance(price, TieredPrices):
                rate = price.base
                for tier in reversed(price.tiers):
                    if total_input > tier.start:
                        rate = tier.price
                        break
            else:
                rate = price
            total += rate * Decimal(leaf) / per
        if self.multiplier is not None:
            total *= self.multiplier
        return total


def build_rates(prices: Mapping[str, Any], multiplier: Decimal | None = None, note: str = "") -> Rates:
    """Rates from a genai ``ModelPrice`` dict (price key -> Decimal | TieredPrices)."""
    registry = _get_registry()
    units = []
    for price_key, value in prices.items():
        if value is None or price_key.startswith("_"):
            continue
        try:
            unit = registry.unit_for_price_key(price_key)
        except KeyError:
            continue
        idx = _KEY_INDEX.get(unit.usage_key)
        if idx is None:
            continue  # a unit we never report (audio, searches, pages): its leaf is always 0
        units.append((unit, idx, value))
    # genai-prices' leaf order: most specific first; a unit's leaf is its count minus the
    # leaves of every priced unit whose dimensions include its own.
    units.sort(key=lambda u: (-len(u[0].dimensions), u[0].usage_key))
    out = []
    for pos, (unit, idx, value) in enumerate(units):
        desc = tuple(
            j for j, (other, _, _) in enumerate(units[:pos])
            if other is not unit and unit.dimensions.items() <= other.dimensions.items()
        )
        out.append((idx, value, unit.per, desc))
    tiered = any(isinstance(v, TieredPrices) for _, v, _, _ in out)
    return Rates(tuple(out), tiered, multiplier, note)


def usage_vector(u: Usage) -> tuple[int, ...]:
    cw_total = u.cache_write_total
    return (u.input + u.cache_read + cw_total, u.cache_read, cw_total, u.cache_write_5m, u.cache_write_1h, u.output, u.reasoning, 1)


@dataclass(frozen=True, slots=True)
class Override:
    """A schema ``prices:`` entry: rates (USD / MTok) and/or a discount for matching models."""

    model: str
    provider: str | None
    prefix: bool
    rates: Mapping[str, Decimal]
    discount_pct: Decimal | None

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any]) -> "Override":
        rates = {
            k: Decimal(str(d[k]))
            for k in ("input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok", "cache_write_1h_mtok")
            if d.get(k) is not None
        }
        pct = d.get("discount_pct")
        return cls(
            model=str(d["model"]).lower(),
            provider=(str(d["provider"]).lower() if d.get("provider") else None),
            prefix=d.get("match") == "prefix",
            rates=rates,
            discount_pct=None if pct is None else Decimal(str(pct)),
        )

    def matches(self, provider: str | None, model: str) -> bool:
        if self.provider is not None and self.provider not in {(provider or "").lower(), provider_id(provider) or ""}:
            return False
        m = model.lower()
        return m.startswith(self.model) if self.prefix else m == self.model


def provider_id(provider: str | None) -> str | None:
    if not provider:
        return None
    p = provider.strip().lower()
    return PROVIDER_IDS.get(p, p)


def _when(start_ns: int) -> datetime:
    return datetime.fromtimestamp(start_ns / 1e9, tz=timezone.utc)


_BY_TIME = object()  # marker: the model has time-of-day prices; key by the minute as well


class Pricer:
    """Prices calls; one instance per audit (it caches lookups, never per-span work)."""

    def __init__(self, schema=None):
        self._schema = schema
        self._overrides = tuple(Override.from_mapping(p) for p in (getattr(schema, "prices", None) or ()))
        self._models: dict[tuple[str | None, str], tuple[Any, Any, str]] = {}
        self._rates: dict[tuple, Any] = {}
        self._override_for: dict[tuple[str | None, str], Override | None] = {}

    # ---------------------------------------------------------------- public

    def price(self, call: LlmCall) -> tuple[Decimal | None, str]:
        return self.price_usage(call, call.usage)

    def price_usage(self, call: LlmCall, u: Usage) -> tuple[Decimal | None, str]:
        if not call.model:
            return None, "no model on the span"
        if u.convention == "none":
            return None, f"cannot price: {u.basis or 'no token counts'}"
        rates = self.rates(call.provider, call.model, call.start_ns, normalize_tier(call.tier))
        if isinstance(rates, str):
            return None, rates
        try:
            return rates.cost(usage_vector(u)), rates.note
        except ValueError as e:
            return None, f"cannot price: {e}"

    def rates(self, provider: str | None, model: str, start_ns: int, tier: str | None) -> Rates | str:
        """The rates for one (provider, model, day, tier), looked up once; a str says why none."""
        key = (provider, model, start_ns // NS_PER_DAY, tier)
        r = self._rates.get(key)
        if r is None:
            r = self._rates[key] = self._resolve(provider, model, start_ns, tier, by_minute=False)
        if r is _BY_TIME:
            key2 = key + (start_ns // NS_PER_MINUTE,)
            r = self._rates.get(key2)
            if r is None:
                r = self._rates[key2] = self._resolve(provider, model, start_ns, tier, by_minute=True)
        return r

    # ---------------------------------------------------------------- lookups (once each)

    def find_model(self, provider: str | None, model: str) -> tuple[Any, Any, str]:
        """(genai Provider, ModelInfo, how it matched) or (None, None, why not)."""
        key = (provider, model)
        hit = self._models.get(key)
        if hit is not None:
            return hit
        snap = data_snapshot.get_snapshot()
        pid = provider_id(provider)
        attempts = [(pid, model)]
        if "/" in model:
            head, tail = model.split("/", 1)
            attempts.append((provider_id(head), tail))
            attempts.append((pid, tail))
        attempts.append((None, model))
        found: tuple[Any, Any, str] = (None, None, f"no price for model {model!r} (provider {provider or 'unknown'}) in genai-prices {genai_prices.__version__}")
        for p, m in attempts:
            try:
                prov, info = snap.find_provider_model(m, None, p, None)
            except LookupError:
                continue
            how = f"genai-prices {genai_prices.__version__} {prov.id}/{info.id}"
            if p is None and pid is not None:
                how += f" (provider {provider!r} not in the data; matched by model name)"
            found = (prov, info, how)
            break
        self._models[key] = found
        return found

    def _override(self, provider: str | None, model: str) -> Override | None:
        key = (provider, model)
        if key not in self._override_for:
            self._override_for[key] = next((o for o in self._overrides if o.matches(provider, model)), None)
        return self._override_for[key]

    def _resolve(self, provider: str | None, model: str, start_ns: int, tier: str | None, by_minute: bool) -> Any:
        prov, info, how = self.find_model(provider, model)
        ov = self._override(provider, model)
        if info is not None and not by_minute and _has_time_of_day(info):
            return _BY_TIME
        when = _when(start_ns)
        notes = []
        if info is not None:
            standard = info.get_prices(when)
            prices = dict(_price_items(standard))
            notes.append(how)
        else:
            if ov is None or not {"input_mtok", "output_mtok"} <= set(ov.rates):
                if ov is not None and ov.rates:
                    return f"{how}; the schema's prices entry for {ov.model!r} needs input_mtok and output_mtok"
                return how
            standard, prices = None, {}
            notes.append("schema prices")
        multiplier: Decimal | None = None
        if tier is not None:
            ctx, fallback = TIER_RULES[tier]
            variant = None
            if info is not None and any(info is m for m in prov.models):
                v = info.get_prices(when, ctx)
                if v != standard:
                    variant = dict(_price_items(v))
            if variant is not None and not (ov and ov.rates):
                prices = variant
                notes.append(f"{tier} tier rates")
            elif fallback is not None:
                multiplier = fallback
                notes.append(f"{tier} tier: standard rates x{fallback}")
            else:
                notes.append(f"{tier} tier not in the price data: standard rates")
        if ov is not None:
            if ov.rates:
                prices.update(ov.rates)
                if info is not None:
                    notes.append("schema prices override " + ", ".join(sorted(ov.rates)))
            if ov.discount_pct:
                factor = (Decimal(100) - ov.discount_pct) / Decimal(100)
                multiplier = factor if multiplier is None else multiplier * factor
                notes.append(f"schema discount {ov.discount_pct}%")
        return build_rates(prices, multiplier, "; ".join(notes))


def _price_items(mp: ModelPrice) -> list[tuple[str, Any]]:
    return [(k, v) for k, v in mp.__dict__.items() if not k.startswith("_") and v is not None]


def _has_time_of_day(info) -> bool:
    prices = info.prices if isinstance(info.prices, list) else []
    if any(isinstance(cp.constraint, TimeOfDateConstraint) for cp in prices):
        return True
    return any(isinstance(v.constraint, TimeOfDateConstraint) for v in (info.price_variants or ()))
