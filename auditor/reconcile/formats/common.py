"""What the JSON export readers share: walking buckets, de-duplicating pages, grouping."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Callable, Iterator

from auditor.reconcile.fields import Reader
from auditor.reconcile.model import DEFAULT, Dims

DIMS = ("model", "api_key_id", "workspace_id", "tier")


def first_result(docs: list[Any]) -> dict | None:
    """The first result object of the first non-empty bucket (what sniffing looks at)."""
    for doc in docs:
        if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
            continue
        for bucket in doc["data"]:
            if isinstance(bucket, dict):
                results = bucket.get("results", bucket.get("result"))
                if isinstance(results, list) and results and isinstance(results[0], dict):
                    return results[0]
    return None


def unique_pages(docs: list[Any], r: Reader) -> tuple[list[tuple[int, dict, str]], int]:
    """Pages in order, exact repeats dropped (the same page fetched twice): (index, page, digest)."""
    seen: set[str] = set()
    out, dups = [], 0
    for i, doc in enumerate(docs):
        page = r.obj(doc, f"$[{i}]" if len(docs) > 1 else "$")
        key = hashlib.sha256(json.dumps(page, sort_keys=True).encode()).hexdigest()
        if key in seen:
            dups += 1
            continue
        seen.add(key)
        out.append((i, page, key))
    return out, dups


def buckets(docs: list[Any], r: Reader, ranges: list) -> tuple[Iterator[tuple[str, dict, list]], int]:
    """(json path, bucket, results) for every bucket of every unique page. ``ranges`` gets
    (page digest, rows before it) per page, so pages repeated across files count once."""
    pages, dups = unique_pages(docs, r)

    def walk():
        for i, page, digest in pages:
            ranges.append(digest)
            base = f"$[{i}]" if len(docs) > 1 else "$"
            for j, b in enumerate(r.array(page, "data", base)):
                path = f"{base}.data[{j}]"
                b = r.obj(b, path)
                key = "results" if "results" in b or "result" not in b else "result"
                yield path, b, r.array(b, key, path)

    return walk(), dups


class _Marks:
    """Records (page digest, rows read so far) as each page starts."""

    def __init__(self, marks: list, count: Callable[[], int]):
        self.marks, self.count = marks, count

    def append(self, digest: str) -> None:
        self.marks.append((digest, self.count()))


def grouped(dims_rows: list[Dims]) -> frozenset[str]:
    """The dimensions an export was grouped by: those any row fills."""
    return frozenset(d for d in DIMS if any(getattr(x, d) is not None for x in dims_rows))


def fill_defaults(rows: list, grouped_by: frozenset[str], with_dims: Callable) -> list:
    """In a dimension the export was grouped by, an empty value is a value (the default one)."""
    out = []
    for row in rows:
        d = row.dims
        changes = {k: DEFAULT for k in ("api_key_id", "workspace_id") if k in grouped_by and getattr(d, k) is None}
        out.append(with_dims(row, changes) if changes else row)
    return out


def page_spans(marks: list[tuple[str, int]], total: int) -> tuple[tuple[str, int, int], ...]:
    """(digest, first row, end row) per page from the row counts seen at each page start."""
    out = []
    for k, (digest, start) in enumerate(marks):
        end = marks[k + 1][1] if k + 1 < len(marks) else total
        out.append((digest, start, end))
    return tuple(out)
