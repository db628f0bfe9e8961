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

from bisect import bisect_right
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Mapping

import genai_prices
from genai_prices import data_snapshot
from genai_prices.types import ModelPrice, StartDateConstraint, TimeOfDateConstraint
from genai_prices.types import _utc_timetz

from auditor.model import LlmCall, Usage
from auditor.rates import Rates, build_rates

NS_PER_DAY = 86_400 * 10**9

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
    "fast": "fast",
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
    "fast": ({"service_tier": "fast"}, None),
}


def normalize_tier(tier: str | None) -> str | None:
    if not tier:
        return None
    t = tier.strip().lower()
    return TIER_ALIASES.get(t, t if t in TIER_RULES else None)


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


@dataclass(frozen=True, slots=True)
class _Model:
    """A (provider, model) as found once: genai objects, how it matched, when its price changes."""

    provider: Any
    info: Any
    how: str
    changes: tuple[int, ...]  # ns of every UTC midnight a price or price variant starts
    time_of_day: tuple[int, ...]  # seconds of the UTC day where an off-peak price starts or ends


class Pricer:
    """Prices calls; one instance per audit (it caches lookups, never per-span work)."""

    def __init__(self, schema=None):
        self._schema = schema
        self._overrides = tuple(Override.from_mapping(p) for p in (getattr(schema, "prices", None) or ()))
        self._models: dict[tuple[str | None, str], _Model] = {}
        self._rates: dict[tuple, Rates | str] = {}
        self._override_for: dict[tuple[str | None, str], Override | None] = {}
        self._built: dict[tuple, Rates] = {}
        self._hot: dict[tuple, tuple] = {}

    # ---------------------------------------------------------------- public

    def price(self, call: LlmCall, u: Usage | None = None) -> tuple[Decimal | None, str]:
        """The exact price of a call (of ``u`` instead of its own usage, when given), or why none.

        The hot path: two dict lookups and a short integer dot product per call.
        """
        if u is None:
            u = call.usage
        model = call.model
        if not model:
            return None, "no model on the span"
        if u.convention == "none":
            return None, f"cannot price: {u.basis or 'no token counts'}"
        provider = call.provider
        start_ns = call.start_ns
        hot = self._hot.get((provider, model, call.tier))
        if hot is None:
            hot = self._hot_entry(provider, model, call.tier)
        m, tier, by_epoch = hot
        epoch = self._epoch(m, start_ns) if (m.changes or m.time_of_day) else 0
        rates = by_epoch.get(epoch)
        if rates is None:
            rates = by_epoch[epoch] = self.rates(provider, model, start_ns, tier)
        if rates.__class__ is str:
            return None, rates
        fast = rates.price_usage
        if fast is not None:
            return fast(u), rates.note
        cr, c5, c1 = u.cache_read, u.cache_write_5m, u.cache_write_1h
        cw = u.cache_write + c5 + c1
        vec = (u.input + cr + cw, cr, cw, c5, c1, u.output, u.reasoning, 1)
        simple = rates.simple
        if simple is not None:
            acc = 0
            for i, c in simple:
                acc += vec[i] * c
            return Decimal(acc) * rates.quantum, rates.note
        try:
            return rates.cost(vec), rates.note
        except ValueError as e:
            return None, f"cannot price: {e}"

    def _hot_entry(self, provider: str | None, model: str, raw_tier: str | None) -> tuple:
        """Per (provider, model, tier as written): the model, the tier, rates by price epoch."""
        entry = (self.find_model(provider, model), normalize_tier(raw_tier) if raw_tier else None, {})
        self._hot[(provider, model, raw_tier)] = entry
        return entry

    def price_usage(self, call: LlmCall, u: Usage) -> tuple[Decimal | None, str]:
        return self.price(call, u)

    @staticmethod
    def _epoch(m: "_Model", start_ns: int):
        epoch = bisect_right(m.changes, start_ns) if m.changes else 0
        if m.time_of_day:
            return (epoch, bisect_right(m.time_of_day, (start_ns // 10**9) % 86_400))
        return epoch

    def rates(self, provider: str | None, model: str, start_ns: int, tier: str | None) -> Rates | str:
        """The rates in force for this call, resolved once per (provider, model, tier, price epoch)."""
        m = self._models.get((provider, model)) or self.find_model(provider, model)
        epoch = self._epoch(m, start_ns)
        key = (provider, model, tier, epoch)
        r = self._rates.get(key)
        if r is None:
            r = self._rates[key] = self._resolve(m, provider, model, start_ns, tier)
        return r

    # ---------------------------------------------------------------- lookups (once each)

    def find_model(self, provider: str | None, model: str) -> _Model:
        """The genai-prices provider and model for a span's names (or why there is none)."""
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
        found = _Model(None, None, f"no price for model {model!r} (provider {provider or 'unknown'}) in genai-prices {genai_prices.__version__}", (), ())
        for p, mref in attempts:
            try:
                prov, info = snap.find_provider_model(mref, None, p, None)
            except LookupError:
                continue
            how = f"genai-prices {genai_prices.__version__} {prov.id}/{info.id}"
            if p is None and pid is not None:
                how += f" (no price under provider {provider!r}; matched by model name)"
            found = _Model(prov, info, how, _change_points(info), _has_time_of_day(info))
            break
        self._models[key] = found
        return found

    def _override(self, provider: str | None, model: str) -> Override | None:
        key = (provider, model)
        if key not in self._override_for:
            self._override_for[key] = next((o for o in self._overrides if o.matches(provider, model)), None)
        return self._override_for[key]

    def _resolve(self, m: _Model, provider: str | None, model: str, start_ns: int, tier: str | None) -> Rates | str:
        prov, info, how = m.provider, m.info, m.how
        ov = self._override(provider, model)
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
            if info is not None and any(info is x for x in prov.models):
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
        note = "; ".join(notes)
        key = (repr(prices), multiplier, note)  # epochs often share a price: compile it once
        r = self._built.get(key)
        if r is None:
            r = self._built[key] = build_rates(prices, multiplier, note)
        return r


def _change_points(info) -> tuple[int, ...]:
    dates = set()
    for cp in info.prices if isinstance(info.prices, list) else ():
        if isinstance(cp.constraint, StartDateConstraint):
            dates.add(cp.constraint.start_date)
    for v in info.price_variants or ():
        if isinstance(v.constraint, StartDateConstraint):
            dates.add(v.constraint.start_date)
    return tuple(sorted(int(datetime(d.year, d.month, d.day, tzinfo=timezone.utc).timestamp()) * 10**9 for d in dates))


def _price_items(mp: ModelPrice) -> list[tuple[str, Any]]:
    return [(k, v) for k, v in mp.__dict__.items() if not k.startswith("_") and v is not None]


def _has_time_of_day(info) -> tuple[int, ...]:
    constraints = [cp.constraint for cp in (info.prices if isinstance(info.prices, list) else ())]
    constraints += [v.constraint for v in info.price_variants or ()]
    bounds = set()
    for c in constraints:
        if isinstance(c, TimeOfDateConstraint):
            for t in (c.start_time, c.end_time):
                u = _utc_timetz(t)
                bounds.add(u.hour * 3600 + u.minute * 60 + u.second)
    return tuple(sorted(bounds))
