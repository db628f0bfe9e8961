"""One resolved price compiled to exact integer arithmetic: the per-call hot path of pricing.

genai-prices charges every priced unit for its *leaf* count (its count minus the counts of the
more specific priced units below it) and applies a tiered rate to all tokens once the call's
total input crosses the tier; ``Builder`` turns one of its price records into a dot product
over our count vector, and ``Leaves`` compiles that dot product into one function per rates
that prices a Usage with a few integer multiplications and a single Decimal product, exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, Mapping

from genai_prices.types import TieredPrices
from genai_prices.units import _get_registry

# Our counts, in the order of the count vector (genai usage keys).
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
_REQUESTS = _KEY_INDEX["requests"]

# Leaf = a price function per call: ``leaf(usage, start_ns) -> (Decimal | None, note)``.
Leaf = Callable[[Any, int], "tuple[Decimal | None, str]"]


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
    quantum: Decimal = Decimal(1)  # 10**-scale times the multiplier: one exact Decimal product per call


Terms = tuple  # (segments, checks, scale): a price record's integer arithmetic, whatever its note


def priced(t: Terms, multiplier: Decimal | None, note: str) -> Rates:
    """A record's terms as the rates of one use of it (tier multiplier, discount, note)."""
    segments, checks, scale = t
    quantum = Decimal(1).scaleb(-scale) * (multiplier if multiplier is not None else 1)
    return Rates(segments, checks, scale, multiplier, note, quantum)


class Builder:
    """Turns price records into Terms, remembering what records share.

    What depends only on which keys are priced (units, leaf order, leaf combinations, checks,
    tier thresholds) is a ``_Plan``, built once per set of keys; a price and its unit size give
    one exact per-token rate, computed once per distinct pair (records repeat their numbers).
    Per record, only its numbers are then turned into integer coefficients."""

    def __init__(self) -> None:
        self._plans: dict[tuple, _Plan] = {}
        self._per_token: dict[tuple[Any, int], tuple[Decimal, int]] = {}

    def _rate(self, price: Any, per: int) -> tuple[Decimal, int]:
        """The exact USD per token, and how many decimal places it needs."""
        key = (price, per)
        hit = self._per_token.get(key)
        if hit is None:
            rate = Decimal(price) / per  # per is a power of ten: exact
            hit = self._per_token[key] = (rate, -rate.normalize().as_tuple().exponent if rate else 0)
        return hit

    def terms(self, prices: Mapping[str, Any]) -> Terms:
        items = [(k, v) for k, v in prices.items() if v is not None and not k.startswith("_")]
        shape = tuple((k, tuple(t.start for t in v.tiers) if isinstance(v, TieredPrices) else None) for k, v in items)
        plan = self._plans.get(shape)
        if plan is None:
            plan = self._plans[shape] = _plan(shape)
        rate = self._rate
        # Per priced unit, its rate per token in force in each segment.
        per_segment: list[list[Decimal]] = []
        scale = 0
        n = len(plan.thresholds)
        for pos, per, picks in plan.entries:
            value = items[pos][1]
            if picks is None:
                r, places = rate(value, per)
                per_segment.append([r] * n)
            else:
                known = [rate(value.base, per)] + [rate(t.price, per) for t in value.tiers]
                places = max(p for _, p in known)
                per_segment.append([known[0 if i is None else i + 1][0] for i in picks])
            if places > scale:
                scale = places
        segments = []
        for s, threshold in enumerate(plan.thresholds):
            coefs: dict[int, int] = {}
            for comb, rates in zip(plan.combs, per_segment):
                r = int(rates[s].scaleb(scale))
                for k, c in comb:
                    coefs[k] = coefs.get(k, 0) + r * c
            segments.append((threshold, tuple((k, c) for k, c in sorted(coefs.items()) if c)))
        return (tuple(segments), plan.checks, scale)


@dataclass(frozen=True, slots=True)
class _Plan:
    """How a set of price keys turns into segments, whatever the numbers."""

    entries: tuple[tuple[int, int, tuple[int | None, ...] | None], ...]  # (item position, per, tier index per segment)
    combs: tuple[tuple[tuple[int, int], ...], ...]  # per entry, its leaf over the count vector
    checks: tuple[tuple[int, tuple[int, ...]], ...]
    thresholds: tuple[int, ...]  # highest first, the last -1


def _plan(shape: tuple) -> _Plan:
    registry = _get_registry()
    units = []
    for pos, (price_key, _starts) in enumerate(shape):
        try:
            unit = registry.unit_for_price_key(price_key)
        except KeyError:
            continue
        idx = _KEY_INDEX.get(unit.usage_key)
        if idx is None:
            continue  # a unit we never report (audio, searches, pages): its leaf is always 0
        units.append((unit, idx, pos))
    # genai-prices' leaf order: most specific first; a unit's leaf is its count minus the
    # leaves of every priced unit whose dimensions include its own.
    units.sort(key=lambda u: (-len(u[0].dimensions), u[0].usage_key))
    # Each leaf as a linear combination of the count vector: leaf_u = vec_u - sum(leaf_d).
    leaf_of: list[dict[int, int]] = []
    checks = []
    for n, (unit, idx, _pos) in enumerate(units):
        comb = {idx: 1}
        below = [
            j for j, (other, _, _) in enumerate(units[:n])
            if other is not unit and unit.dimensions.items() <= other.dimensions.items()
        ]
        for j in below:
            for k, c in leaf_of[j].items():
                comb[k] = comb.get(k, 0) - c
        leaf_of.append(comb)
        if any(c < 0 for k, c in comb.items() if k == _REASONING):
            checks.append((idx, tuple(k for k, c in comb.items() if c < 0)))
    thresholds = sorted({t for _, _, pos in units for t in shape[pos][1] or ()}, reverse=True) + [-1]
    entries = []
    for unit, _idx, pos in units:
        starts = shape[pos][1]
        picks = None
        if starts is not None:
            # In force for every input above a threshold: the tier with the highest start <= it.
            picks = tuple(max((i for i, s in enumerate(starts) if s <= th), key=lambda i: starts[i], default=None)
                          for th in thresholds)
        entries.append((pos, unit.per, picks))
    combs = tuple(tuple(c.items()) for c in leaf_of)
    return _Plan(tuple(entries), combs, tuple(checks), tuple(thresholds))


# The count vector over a Usage's fields: input_tokens is the total input, cache writes are all
# three kinds. Per field, the vector entries it adds to; per entry, the fields that add to it.
_SPREAD = {
    "input": (0,),
    "cache_read": (0, 1),
    "cache_write": (0, 2),
    "cache_write_5m": (0, 2, 3),
    "cache_write_1h": (0, 2, 4),
    "output": (5,),
    "reasoning": (6,),
}
_FIELDS_OF = {i: tuple(f for f, idx in _SPREAD.items() if i in idx) for i in range(_REQUESTS)}


def unpriced(u: Any) -> tuple[None, str]:
    return None, f"cannot price: {u.basis or 'no token counts'}"


def _refuse(idx: int, count: int) -> tuple[None, str]:
    return None, f"cannot price: {USAGE_KEYS[idx]} ({count}) is smaller than its more specific counts"


def _count(idx: int) -> str:
    """Vector entry ``idx`` as an expression over a Usage ``u``."""
    return "(" + " + ".join(f"u.{f}" for f in _FIELDS_OF[idx]) + ")"


class Leaves:
    """Compiles a Rates into its leaf: ``leaf(usage, start_ns) -> (cost | None, note)``.

    The leaf is the dot product written out as one expression over the Usage's own fields
    (integer coefficients as closure cells; no vector, no loop), tiers as ``if total > t``,
    then ONE exact Decimal product: ``quantum * int`` (the same value and exponent as
    ``quantum * Decimal(int)``, without the constructor call; with the int on the left, Python
    would first ask int's product, which declines: ~6 ns a call). Code is
    generated from field names only, one code object per shape (which counts are priced, how
    many tiers, which checks), built once per instance: every instance starts cold.
    """

    def __init__(self) -> None:
        self._factories: dict[tuple, Callable[..., Leaf]] = {}
        self._forms: dict[tuple, tuple[Callable[..., Leaf], tuple]] = {}

    def of(self, rates: Rates | str) -> Leaf:
        if isinstance(rates, str):
            return _const_leaf(rates)
        key = (rates.segments, rates.checks)
        form = self._forms.get(key)
        if form is None:
            form = self._forms[key] = self._form(*key)
        make, values = form
        return make(rates.quantum, rates.note, unpriced, _refuse, *values)

    def _form(self, segments: tuple, checks: tuple) -> tuple[Callable[..., Leaf], tuple]:
        """The factory of a dot product's shape, and the numbers it takes."""
        segs = []
        values: list[int] = []
        last = len(segments) - 1
        for n, (threshold, pairs) in enumerate(segments):
            coef = dict(pairs)
            groups: dict[int, list[str]] = {}  # fields sharing a coefficient share one product
            for f, idx in _SPREAD.items():
                if c := sum(coef.get(i, 0) for i in idx):
                    groups.setdefault(c, []).append(f)
            const = coef.get(_REQUESTS, 0)
            segs.append((tuple(tuple(g) for g in groups.values()), bool(const), n < last))
            if n < last:
                values.append(threshold)
            values.extend(groups)
            if const:
                values.append(const)
        shape = (tuple(segs), checks)
        make = self._factories.get(shape)
        if make is None:
            make = self._factories[shape] = _factory(*shape)
        return make, tuple(values)


def _const_leaf(why: str) -> Leaf:
    def leaf(u, t):
        if u.convention == "none":
            return unpriced(u)
        return None, why

    return leaf


def _factory(segs: tuple, checks: tuple) -> Callable[..., Leaf]:
    args = ["_Q", "_note", "_unpriced", "_refuse"]
    body = ["if u.convention == 'none':", "    return _unpriced(u)"]
    for idx, minus in checks:
        body += [f"if {_count(idx)} - {' - '.join(_count(j) for j in minus)} < 0:", f"    return _refuse({idx}, {_count(idx)})"]
    if len(segs) > 1:
        body.append(f"total = {_count(0)}")
    for n, (groups, const, tiered) in enumerate(segs):
        names = [f"c{n}_{g}" for g in range(len(groups))] + ([f"k{n}"] if const else [])
        terms = [f"({' + '.join(f'u.{f}' for f in fields)}) * c{n}_{g}" for g, fields in enumerate(groups)]
        expr = " + ".join(terms + ([f"k{n}"] if const else [])) or "0"
        if tiered:
            args.append(f"t{n}")
            body += [f"if total > t{n}:", f"    return _Q * ({expr}), _note"]
        else:
            body.append(f"return _Q * ({expr}), _note")
        args.extend(names)
    src = f"def make({', '.join(args)}):\n    def leaf(u, t):\n" + "".join(f"        {line}\n" for line in body) + "    return leaf\n"
    ns: dict[str, Any] = {}
    exec(compile(src, "<auditor.rates leaf>", "exec"), ns)
    return ns["make"]
