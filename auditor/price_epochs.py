"""Price epochs: the spans of time in which genai-prices prices a model and tier the same.

A model's price changes at the UTC midnight of a start date (``StartDateConstraint``) and, for
off-peak prices, at bounds of the UTC day (``TimeOfDateConstraint``). Between two such instants
every call gets the same price, so the pricer resolves rates once per epoch and caches them by
it; the rates are looked up at an instant computed from the epoch alone, so that what fills the
cache never depends on which call came first. Times are integers throughout (ns, and us of the
day): no float rounding can move a call across a bound, and a start time no ``datetime`` can
hold still falls in an epoch (the first or the last).
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

import genai_prices
from genai_prices.types import StartDateConstraint, TimeOfDateConstraint, _utc_timetz

NS_PER_DAY = 86_400 * 10**9
DAY_US = 86_400 * 10**6
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True, slots=True)
class Epochs:
    """Where a (model, tier)'s price can change: a price epoch is (day index, time-of-day index).

    ``days``: ns of every UTC midnight a price (or a variant this tier uses) starts;
    ``tods``: microseconds of the UTC day where an off-peak price starts or ends. Every
    instant of one epoch gets the same price from genai-prices, so rates are resolved ONCE per
    epoch, at a representative instant computed from the epoch alone (``instant``): the cache
    key decides the price, never the first call that happened to fill it.
    """

    days: tuple[int, ...]
    tods: tuple[int, ...]
    unsupported: str = ""  # a constraint kind this code does not know: refuse to price
    variants: bool = False  # some price variant applies to this tier (else its rates are the standard ones)

    def of(self, start_ns: int) -> tuple[int, int]:
        return (bisect_right(self.days, start_ns), bisect_right(self.tods, start_ns // 1000 % DAY_US) if self.tods else 0)

    def instant(self, epoch: tuple[int, int]) -> datetime:
        d, k = epoch
        days, tods = self.days, self.tods
        ns = days[d - 1] if d else (days[0] - NS_PER_DAY if days else 0)
        return _EPOCH + timedelta(microseconds=ns // 1000 + (tods[k - 1] if k else 0))


def epochs_of(info: Any, ctx: Mapping[str, str] | None) -> Epochs:
    """The epochs of a model's price (``info``: a genai-prices ModelInfo, or None) for one price
    context: the start dates and times of day of its conditional prices, and of the variants
    genai-prices applies in that context (the others never change its price)."""
    if info is None:
        return Epochs((), ())
    constraints = [cp.constraint for cp in info.prices] if isinstance(info.prices, list) else []
    applied = []
    if ctx is not None:
        applied = [v.constraint for v in info.price_variants or () if all(ctx.get(k) == val for k, val in v.when.items())]
    days, tods, unknown = set(), set(), []
    for c in constraints + applied:
        if c is None:
            continue
        if isinstance(c, StartDateConstraint):
            d = c.start_date
            days.add(int(datetime(d.year, d.month, d.day, tzinfo=timezone.utc).timestamp()) * 10**9)
        elif isinstance(c, TimeOfDateConstraint):
            for t in (c.start_time, c.end_time):
                u = _utc_timetz(t)
                tods.add(((u.hour * 60 + u.minute) * 60 + u.second) * 10**6 + u.microsecond)
        else:
            unknown.append(type(c).__name__)
    why = f"price constraint {unknown[0]} of genai-prices {genai_prices.__version__} not supported" if unknown else ""
    return Epochs(tuple(sorted(days)), tuple(sorted(tods)), why, bool(applied))
