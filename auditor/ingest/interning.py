"""Shared string objects for what decoders keep: a million spans, not a million copies.

Attribute names are mapped to the projection's own string objects (one dict lookup that is
also the projection test), and short string values (models, tenants, code paths, span
names) are kept once each in a bounded table.
"""

from __future__ import annotations

from functools import lru_cache

_SHORT = 64  # short string values (models, tenants, code paths) repeat: keep one copy each
_strings: dict[str, str] = {}
# For decoders' hot loops: a hit in TABLE is what ``share`` returns (a miss goes through ``share``).
SHORT = _SHORT
TABLE = _strings


def share(s: str) -> str:
    """One object per distinct short string, so a million spans don't hold a million copies."""
    if len(s) > _SHORT:
        return s
    got = _strings.get(s)
    if got is None:
        if len(_strings) >= 500_000:
            _strings.clear()
        got = _strings[s] = s
    return got


@lru_cache(maxsize=32)
def canonical(names: frozenset[str]) -> dict[str, str]:
    """name -> the projection's own string: a membership test that also shares the key object."""
    return {n: n for n in names}
