"""Price LLM calls exactly, offline, from the pinned genai-prices data.

``genai_prices.calc_price`` costs ~50 us a call (model matching, usage validation, unit
decomposition). We resolve each (provider, model, tier, price epoch) ONCE and compile its rates
into one small function (``rates.Leaves``) that does the per-span arithmetic in integers,
exactly as genai-prices does it in Decimal: every priced unit is charged for its *leaf* count
(its count minus the counts of the more specific priced units below it, e.g. input minus cache
read and cache write), and a tiered rate applies to all tokens once the call's total input
crosses the tier. A price epoch is a span of time in which genai-prices answers the same for
that model and tier (between its start dates and off-peak bounds); its rates are looked up at an
instant computed from the epoch, so a cached price never depends on which call filled it.
``tests/test_pricing_property.py`` proves fast path == calc_price.

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
from datetime import datetime
from decimal import Decimal
from typing import Any, Mapping

import genai_prices
from genai_prices import data_snapshot
from genai_prices.types import ModelPrice

from auditor.model import LlmCall, Usage
from auditor.price_epochs import DAY_US, Epochs, epochs_of
from auditor.rates import Builder, Leaf, Leaves, Rates, Terms, priced

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


_MAX_CACHED = 100_000  # distinct (provider, model, tier) kept hot; hostile input cannot grow it further


def _no_model(u: Usage, start_ns: int) -> tuple[None, str]:
    return None, "no model on the span"


@dataclass(frozen=True, slots=True)
class _Model:
    """A (provider, model) as found once: genai objects and how it matched."""

    provider: Any
    info: Any
    how: str
    listed: bool = False  # ``info`` is one of the provider's own models: its price variants apply


class Pricer:
    """Prices calls; one instance per audit (it caches lookups, never per-span work)."""

    def __init__(self, schema=None):
        self._schema = schema
        self._overrides = tuple(Override.from_mapping(p) for p in (getattr(schema, "prices", None) or ()))
        self._models: dict[tuple[str | None, str], _Model] = {}
        self._epochs: dict[tuple[str | None, str, str | None], Epochs] = {}
        self._rates: dict[tuple, Rates | str] = {}
        self._override_for: dict[tuple[str | None, str], Override | None] = {}
        self._built: dict[tuple, Rates] = {}
        self._terms: dict[str, Terms] = {}
        self._builder = Builder()
        self._leaves = Leaves()
        self._leaf: dict[int, tuple[Rates | str, Leaf]] = {}
        self._hot: dict[tuple, Leaf] = {}

    def __reduce__(self):
        """Pickles as its schema (a cluster ships plans): caches and compiled leaves are rebuilt."""
        return (Pricer, (self._schema,))

    # ---------------------------------------------------------------- public

    def price(self, call: LlmCall) -> tuple[Decimal | None, str]:
        """The exact price of a call, or why none.

        The hot path: one dict lookup by (provider, model, tier as written) gives the call's
        compiled price function (``rates.Leaves``); a model whose price changes over time
        answers with a dispatcher that bisects the start time into its price epoch first.
        """
        fn = self._hot.get((call.provider, call.model, call.tier))
        if fn is None:
            fn = self._hot_fn(call.provider, call.model, call.tier)
        return fn(call.usage, call.start_ns)

    def price_usage(self, call: LlmCall, u: Usage) -> tuple[Decimal | None, str]:
        """The price of the call had it reported ``u`` (another reading of its counts)."""
        key = (call.provider, call.model, call.tier)
        return (self._hot.get(key) or self._hot_fn(*key))(u, call.start_ns)

    def rates(self, provider: str | None, model: str, start_ns: int, tier: str | None) -> Rates | str:
        """The rates in force for this call, resolved once per (provider, model, tier, price epoch)."""
        tier = normalize_tier(tier)
        m = self.find_model(provider, model)
        ep = self._epochs_of(m, provider, model, tier)
        return self._epoch_rates(m, ep, provider, model, tier, ep.of(start_ns))

    # ---------------------------------------------------------------- lookups (once each)

    def _hot_fn(self, provider: str | None, model: str | None, raw_tier: str | None) -> Leaf:
        """The price function of a (provider, model, tier as written), built on its first call."""
        if len(self._hot) >= _MAX_CACHED:
            self._hot.clear()
        if not model:
            fn: Leaf = _no_model
        else:
            tier = normalize_tier(raw_tier) if raw_tier else None
            m = self.find_model(provider, model)
            ep = self._epochs_of(m, provider, model, tier)
            if not ep.days and not ep.tods:
                fn = self._leaf_of(self._epoch_rates(m, ep, provider, model, tier, (0, 0)))
            else:
                fn = self._dispatcher(m, ep, provider, model, tier)
        self._hot[(provider, model, raw_tier)] = fn
        return fn

    def _dispatcher(self, m: _Model, ep: Epochs, provider: str | None, model: str, tier: str | None) -> Leaf:
        """Start time -> the leaf of its epoch; each epoch's leaf is resolved on its first call."""
        width = len(ep.tods) + 1
        leaves: list[Leaf] = []

        def pending(i: int) -> Leaf:
            def resolve(u: Usage, t: int):
                leaf = leaves[i] = self._leaf_of(self._epoch_rates(m, ep, provider, model, tier, divmod(i, width)))
                return leaf(u, t)

            return resolve

        leaves.extend(pending(i) for i in range((len(ep.days) + 1) * width))
        days, tods = ep.days, ep.tods
        if not tods:
            def by_day(u: Usage, t: int):
                return leaves[bisect_right(days, t)](u, t)

            return by_day

        def by_day_and_time(u: Usage, t: int):
            return leaves[bisect_right(days, t) * width + bisect_right(tods, t // 1000 % DAY_US)](u, t)

        return by_day_and_time

    def _leaf_of(self, rates: Rates | str) -> Leaf:
        hit = self._leaf.get(id(rates))  # the entry keeps ``rates`` alive: its id is not reused
        if hit is None:
            hit = self._leaf[id(rates)] = (rates, self._leaves.of(rates))
        return hit[1]

    def _epochs_of(self, m: _Model, provider: str | None, model: str, tier: str | None) -> Epochs:
        key = (provider, model, tier)
        ep = self._epochs.get(key)
        if ep is None:
            ctx = TIER_RULES[tier][0] if tier is not None and m.listed else None
            ep = self._epochs[key] = epochs_of(m.info, ctx)
        return ep

    def _epoch_rates(self, m: _Model, ep: Epochs, provider: str | None, model: str, tier: str | None,
                     epoch: tuple[int, int]) -> Rates | str:
        key = (provider, model, tier, epoch)
        r = self._rates.get(key)
        if r is None:
            if len(self._rates) >= _MAX_CACHED:  # hostile names and providers: forget, never grow
                self._rates.clear()
                self._built.clear()
                self._leaf.clear()
            if ep.unsupported:
                r = f"cannot price: {ep.unsupported}"
            else:
                r = self._resolve(m, provider, model, ep.instant(epoch), tier, ep.variants)
            self._rates[key] = r
        return r

    def find_model(self, provider: str | None, model: str) -> _Model:
        """The genai-prices provider and model for a span's names (or why there is none)."""
        key = (provider, model)
        hit = self._models.get(key)
        if hit is not None:
            return hit
        if len(self._models) >= _MAX_CACHED:
            self._models.clear()
            self._override_for.clear()
            self._epochs.clear()
        snap = data_snapshot.get_snapshot()
        pid = provider_id(provider)
        attempts = [(pid, model)]
        if "/" in model:
            head, tail = model.split("/", 1)
            attempts.append((provider_id(head), tail))
            attempts.append((pid, tail))
        attempts.append((None, model))
        found = _Model(None, None, f"no price for model {model!r} (provider {provider or 'unknown'}) in genai-prices {genai_prices.__version__}")
        for p, mref in attempts:
            try:
                prov, info = snap.find_provider_model(mref, None, p, None)
            except LookupError:
                continue
            how = f"genai-prices {genai_prices.__version__} {prov.id}/{info.id}"
            if p is None and pid is not None:
                how += f" (no price under provider {provider!r}; matched by model name)"
            found = _Model(prov, info, how, any(info is x for x in prov.models))
            break
        self._models[key] = found
        return found

    def _override(self, provider: str | None, model: str) -> Override | None:
        key = (provider, model)
        if key not in self._override_for:
            self._override_for[key] = next((o for o in self._overrides if o.matches(provider, model)), None)
        return self._override_for[key]

    def _resolve(self, m: _Model, provider: str | None, model: str, when: datetime, tier: str | None,
                 variants: bool) -> Rates | str:
        info, how = m.info, m.how
        ov = self._override(provider, model)
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
            if variants:
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
        record = repr(prices)  # epochs and tiers often share a price record: its arithmetic is built once
        key = (record, multiplier, note)
        r = self._built.get(key)
        if r is None:
            t = self._terms.get(record)
            if t is None:
                t = self._terms[record] = self._builder.terms(prices)
            r = self._built[key] = priced(t, multiplier, note)
        return r


def _price_items(mp: ModelPrice) -> list[tuple[str, Any]]:
    return [(k, v) for k, v in mp.__dict__.items() if not k.startswith("_") and v is not None]
