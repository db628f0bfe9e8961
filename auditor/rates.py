"""One resolved price compiled to exact integer arithmetic: the per-call hot path of pricing.

genai-prices charges every priced unit for its *leaf* count (its count minus the counts of the
more specific priced units below it) and applies a tiered rate to all tokens once the call's
total input crosses the tier; ``build_rates`` turns one of its price records into a dot product
over our count vector so that each call costs a few integer multiplications, exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable, Mapping

from genai_prices.types import TieredPrices
from genai_prices.units import _get_registry

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
_REASONING = _KEY_INDEX["output_reasoning_tokens"]


@dataclass(frozen=True, slots=True)
class Rates:
    """One resolved price, compiled to integer arithmetic.

    genai-prices charges every priced unit for its *leaf* count: its count minus the leaves
    of the more specific priced units below it (input minus cache read and cache write, cache
    write minus its 5m / 1h parts, output minus reasoning). Leaves are linear in the counts,
    so the whole price is a dot product: ``segments`` holds, per input-size tier (highest
    threshold first), the USD-per-token coefficient of each count scaled by 10**scale. Integer
    arithmetic is exact, so the result equals genai-prices' Decimal arithmetic.

    ``checks`` are the leaves that can come out negative (output minus reasoning, where
    reasoning has its own rate); genai-prices refuses those counts and so do we. Every other
    leaf is a sum of non-negative canonical counts.
    """

    segments: tuple[tuple[int, tuple[tuple[int, int], ...]], ...]  # (input threshold, ((index, coef), ...))
    checks: tuple[tuple[int, tuple[int, ...]], ...]  # (index, indexes subtracted from it)
    scale: int
    multiplier: Decimal | None
    note: str
    # One segment and nothing to check: the hot path inlines this dot product (else None).
    simple: tuple[tuple[int, int], ...] | None = None
    quantum: Decimal = Decimal(1)  # 10**-scale times the multiplier: one exact Decimal product per call
    # ``simple`` compiled over a Usage's own fields (see ``_compile``): the whole hot path.
    price_usage: Callable[[Any], Decimal] | None = field(default=None, compare=False, repr=False)

    def __reduce__(self):
        """Picklable (a cluster ships plans): the compiled function is compiled again."""
        return (_rates, (self.segments, self.checks, self.scale, self.multiplier, self.note, self.simple, self.quantum))

    def cost(self, vec: tuple[int, ...]) -> Decimal:
        """The exact price of one call's counts (see USAGE_KEYS); ValueError on impossible counts."""
        for idx, minus in self.checks:
            leaf = vec[idx]
            for j in minus:
                leaf -= vec[j]
            if leaf < 0:
                raise ValueError(f"{USAGE_KEYS[idx]} ({vec[idx]}) is smaller than its more specific counts")
        total_input = vec[0]
        for threshold, coefs in self.segments:
            if total_input > threshold:
                break
        acc = 0
        for i, c in coefs:
            acc += vec[i] * c
        return Decimal(acc) * self.quantum


def _per_token(price: Decimal, per: int) -> Decimal:
    return price / per  # per is a power of ten: exact


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
    decimals = []
    for unit, _idx, value in units:
        if isinstance(value, TieredPrices):
            decimals.append(_per_token(value.base, unit.per))
            decimals.extend(_per_token(t.price, unit.per) for t in value.tiers)
        else:
            decimals.append(_per_token(Decimal(value), unit.per))
    scale = max([0] + [-d.normalize().as_tuple().exponent for d in decimals if d])

    def scaled(price: Decimal, per: int) -> int:
        return int(_per_token(price, per).scaleb(scale))

    # Each leaf as a linear combination of the count vector: leaf_u = vec_u - sum(leaf_d).
    leaf_of: list[dict[int, int]] = []
    checks = []
    for pos, (unit, idx, value) in enumerate(units):
        comb = {idx: 1}
        below = [
            j for j, (other, _, _) in enumerate(units[:pos])
            if other is not unit and unit.dimensions.items() <= other.dimensions.items()
        ]
        for j in below:
            for k, c in leaf_of[j].items():
                comb[k] = comb.get(k, 0) - c
        leaf_of.append(comb)
        if any(c < 0 for k, c in comb.items() if k == _REASONING):
            checks.append((idx, tuple(k for k, c in comb.items() if c < 0)))
    thresholds = sorted({t.start for _, _, v in units if isinstance(v, TieredPrices) for t in v.tiers}, reverse=True)
    segments = []
    for threshold in thresholds + [-1]:
        coefs: dict[int, int] = {}
        for (unit, idx, value), comb in zip(units, leaf_of):
            if isinstance(value, TieredPrices):
                rate = value.base
                for t in sorted(value.tiers, key=lambda t: -t.start):
                    if t.start <= threshold:  # in force for every input above ``threshold``
                        rate = t.price
                        break
            else:
                rate = Decimal(value)
            r = scaled(rate, unit.per)
            for k, c in comb.items():
                coefs[k] = coefs.get(k, 0) + r * c
        segments.append((threshold, tuple((k, c) for k, c in sorted(coefs.items()) if c)))
    simple = segments[0][1] if len(segments) == 1 and not checks else None
    quantum = Decimal(1).scaleb(-scale) * (multiplier if multiplier is not None else 1)
    return _rates(tuple(segments), tuple(checks), scale, multiplier, note, simple, quantum)


# The count vector (USAGE_KEYS) over a Usage's fields: input_tokens is the total input, cache
# writes are all three kinds. Per field, the vector entries it adds to.
_SPREAD = {
    "input": (0,),
    "cache_read": (0, 1),
    "cache_write": (0, 2),
    "cache_write_5m": (0, 2, 3),
    "cache_write_1h": (0, 2, 4),
    "output": (5,),
    "reasoning": (6,),
}


def _rates(segments, checks, scale, multiplier, note, simple, quantum) -> Rates:
    return Rates(segments, checks, scale, multiplier, note, simple, quantum,
                 None if simple is None else _compile(simple, quantum))


def _compile(simple: tuple[tuple[int, int], ...], quantum: Decimal) -> Callable[[Any], Decimal]:
    """The dot product of ``simple`` as one expression over a Usage's fields, integer
    coefficients inlined (the same exact integer before the one Decimal product): no vector
    built, no loop, per call. Compiled once per rates."""
    coef = dict(simple)
    terms = [f"u.{name} * {c}" for name, idx in _SPREAD.items() if (c := sum(coef.get(i, 0) for i in idx))]
    if coef.get(_KEY_INDEX["requests"]):
        terms.append(str(coef[_KEY_INDEX["requests"]]))
    ns: dict[str, Any] = {"_D": Decimal, "_Q": quantum}
    exec(f"def price_usage(u):\n    return _D({' + '.join(terms) or '0'}) * _Q", ns)
    return ns["price_usage"]
