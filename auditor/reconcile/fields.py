"""Reading export documents with errors that name the file and the JSON path.

An export may be one page, several pages concatenated (``{..}{..}`` or JSON lines, as
``curl`` in a pagination loop leaves them) or a JSON array of pages.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from auditor.reconcile.model import UsageExportError

NS = 10**9


def pages(text: str, where: str) -> list[Any]:
    """Every JSON document in ``text``, in order (a top-level array counts as its items)."""
    dec = json.JSONDecoder()
    docs: list[Any] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in " \t\r\n\ufeff":
            i += 1
        if i >= n:
            break
        try:
            doc, i = dec.raw_decode(text, i)
        except json.JSONDecodeError as e:
            raise UsageExportError(f"{where}: line {e.lineno} column {e.colno}: invalid JSON: {e.msg}") from None
        if isinstance(doc, list) and all(isinstance(x, dict) for x in doc) and doc and "data" in doc[0]:
            docs.extend(doc)
        else:
            docs.append(doc)
    if not docs:
        raise UsageExportError(f"{where}: empty file: expected a usage or cost export")
    return docs


class Reader:
    """Field access for one file: every failure is one line naming the file and path."""

    def __init__(self, where: str):
        self.where = where

    def fail(self, path: str, expected: str, got: Any = ...) -> UsageExportError:
        tail = "" if got is ... else f", got {json.dumps(got)[:60] if _jsonable(got) else type(got).__name__}"
        return UsageExportError(f"{self.where}: {path}: expected {expected}{tail}")

    def obj(self, v: Any, path: str) -> dict:
        if not isinstance(v, dict):
            raise self.fail(path, "an object", v)
        return v

    def array(self, d: dict, key: str, path: str) -> list:
        v = d.get(key)
        if not isinstance(v, list):
            raise self.fail(f"{path}.{key}", "an array", v if key in d else ...)
        return v

    def count(self, d: dict, key: str, path: str, required: bool = False) -> int:
        if key not in d or d[key] is None:
            if required:
                raise self.fail(f"{path}.{key}", "a token count (integer >= 0)")
            return 0
        v = d[key]
        if isinstance(v, str) and v.strip().isdigit():
            v = int(v)
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise self.fail(f"{path}.{key}", "a token count (integer >= 0)", v)
        return v

    def text(self, d: dict, key: str, path: str) -> str | None:
        v = d.get(key)
        if v is None:
            return None
        if not isinstance(v, str):
            raise self.fail(f"{path}.{key}", "a string or null", v)
        return v or None

    def money(self, v: Any, path: str) -> Decimal:
        if isinstance(v, bool) or not isinstance(v, (str, int, float)):
            raise self.fail(path, "a decimal amount", v)
        try:
            d = Decimal(str(v).strip())
        except InvalidOperation:
            raise self.fail(path, "a decimal amount", v) from None
        if not d.is_finite():
            raise self.fail(path, "a finite decimal amount", v)
        return d

    def rfc3339(self, d: dict, key: str, path: str) -> int:
        v = d.get(key)
        if not isinstance(v, str):
            raise self.fail(f"{path}.{key}", "an RFC 3339 timestamp", v if key in d else ...)
        try:
            t = datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            raise self.fail(f"{path}.{key}", "an RFC 3339 timestamp", v) from None
        if t.tzinfo is None:
            t = t.replace(tzinfo=timezone.utc)
        return to_ns(t)

    def unix(self, d: dict, key: str, path: str) -> int:
        v = d.get(key)
        if isinstance(v, str) and v.strip().isdigit():
            v = int(v)
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise self.fail(f"{path}.{key}", "a Unix time in seconds", v if key in d else ...)
        return v * NS


def to_ns(t: datetime) -> int:
    t = t.astimezone(timezone.utc)
    return (int(t.replace(microsecond=0).timestamp()) * 1_000_000 + t.microsecond) * 1000


NS_PER_DAY = 86_400 * NS


def day_of(ns: int) -> date:
    """The UTC day a bucket or a span start belongs to (exact: integer arithmetic)."""
    return _day(ns // NS_PER_DAY)


@lru_cache(maxsize=65536)
def _day(days_since_epoch: int) -> date:
    return date.fromordinal(_EPOCH_ORDINAL + days_since_epoch)


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def _jsonable(v: Any) -> bool:
    try:
        json.dumps(v)
        return True
    except (TypeError, ValueError):
        return False
