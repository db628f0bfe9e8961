"""Spend concentration: what share of spend the top 10% of developers (or users) drive.

Finance sees one invoice; the useful first question is whether a few people drive most of it.
Derived from the unique calls of a result, so every reporter shows the same figure.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Iterable

from auditor.model import LlmCall

# The key that names a person, in order of preference (preset key first, then --by dimensions).
PERSON_KEYS = ("developer", "user.email", "user.account_uuid", "user_id", "user.id", "enduser.id")
TOP_FRACTION = Decimal("0.10")


@dataclass(frozen=True, slots=True)
class Concentration:
    key: str
    people: int  # distinct values with priced spend
    top: int  # ceil(10% of people), at least 1
    top_usd: Decimal
    total_usd: Decimal  # all priced spend, attributed to a person or not

    @property
    def pct(self) -> float:
        return float(self.top_usd / self.total_usd * 100) if self.total_usd else 0.0


def person_key(keys: Iterable[str]) -> str | None:
    have = set(keys)
    return next((k for k in PERSON_KEYS if k in have), None)


def ranked(calls: Iterable[LlmCall], key: str) -> tuple[list[Decimal], Decimal]:
    """Each person's priced spend, largest first, and all priced spend (with or without a person):
    the points of the concentration curve."""
    by_person: dict[str, Decimal] = defaultdict(Decimal)
    total = Decimal(0)
    for c in calls:
        if c.cost_usd is None:
            continue
        total += c.cost_usd
        v = c.values.get(key)
        if v is not None:
            by_person[str(v)] += c.cost_usd
    return sorted(by_person.values(), reverse=True), total


def compute(calls: Iterable[LlmCall], keys: Iterable[str]) -> Concentration | None:
    """None when the result has no person key or no priced spend by any person."""
    key = person_key(keys)
    if key is None:
        return None
    spend, total = ranked(calls, key)
    if not spend:
        return None
    top = max(1, math.ceil(len(spend) * TOP_FRACTION))
    return Concentration(key, len(spend), top, sum(spend[:top], Decimal(0)), total)


def line(c: Concentration) -> str:
    return f"top 10% of {_plural(c.key)} ({c.top} of {c.people}): {c.pct:.1f}% of spend"


def to_json(c: Concentration | None, usd) -> dict | None:
    if c is None:
        return None
    return {
        "key": c.key,
        "people": c.people,
        "top": c.top,
        "top_usd": usd(c.top_usd),
        "total_usd": usd(c.total_usd),
        "top_pct": round(c.pct, 2),
    }


def _plural(key: str) -> str:
    return "developers" if key == "developer" else f"{key} values"
