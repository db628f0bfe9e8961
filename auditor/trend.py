"""The unattributed share per key over trace time: per-minute or per-hour buckets.

Derived from a finished AuditResult's unique calls (each bucketed by its span's start time),
with ``rollup.key_stats`` per bucket, so a bucket says exactly what the headline says of the
same calls (spend basis, or calls when nothing is priced), and the buckets' spend adds up to
the headline. The sidecar's live result is rebuilt from the per-trace parts it stores, so the
trend stays exact when a late span re-opens a trace (its calls are replaced, not added), when a
call is recorded twice across traces (folded once), and under retention (evicted traces leave
every bucket they were in). Nothing is accumulated that could drift.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Mapping

from auditor.model import AuditResult, KeyStats, LlmCall
from auditor.rollup import key_stats

BUCKETS = {"minute": 60, "hour": 3600}
MAX_BUCKETS = 1440  # a day of minutes: the newest ones are kept


@dataclass(frozen=True, slots=True)
class Trend:
    bucket: str  # "minute" | "hour"
    seconds: int
    starts: tuple[int, ...]  # unix seconds of each bucket with calls, oldest first
    keys: tuple[str, ...]
    cells: Mapping[tuple[int, str], KeyStats]  # (bucket start, key) -> the key over that bucket's calls
    undated_calls: int = 0  # calls without a start time (not in any bucket)
    dropped_buckets: int = 0  # older buckets beyond MAX_BUCKETS

    def to_json(self, usd) -> dict:
        return {
            "bucket": self.bucket,
            "bucket_seconds": self.seconds,
            "undated_calls": self.undated_calls,
            "dropped_buckets": self.dropped_buckets,
            "buckets": [
                {
                    "start": s,
                    "keys": {
                        k: {
                            "llm_calls": c.llm_calls,
                            "llm_calls_missing": c.llm_calls_missing,
                            "cost_usd": usd(c.cost_usd),
                            "unattributed_usd": usd(c.unattributed_usd),
                            "share_pct": None if c.share_pct is None else round(c.share_pct, 4),
                            "share_basis": c.share_basis,
                        }
                        for k in self.keys
                        if (c := self.cells.get((s, k))) is not None
                    },
                }
                for s in self.starts
            ],
        }


def auto_bucket(result: AuditResult) -> str:
    """Minutes while the calls span at most three hours of trace time, else hours."""
    starts = [c.start_ns for c in result.calls if c.start_ns > 0]
    if starts and (max(starts) - min(starts)) > 3 * 3600 * 10**9:
        return "hour"
    return "minute"


def trend(result: AuditResult, bucket: str = "minute") -> Trend:
    seconds = BUCKETS[bucket]
    width = seconds * 10**9
    by_bucket: dict[int, list[LlmCall]] = defaultdict(list)
    undated = 0
    for c in result.calls:
        if c.start_ns <= 0:
            undated += 1
            continue
        by_bucket[(c.start_ns // width) * seconds].append(c)
    starts = sorted(by_bucket)
    dropped = max(0, len(starts) - MAX_BUCKETS)
    starts = starts[dropped:]
    keys = tuple(k.key for k in result.keys)
    cells = {}
    for s in starts:
        calls = tuple(by_bucket[s])
        for k in keys:
            st = key_stats(k, calls)
            if st.llm_calls:
                cells[(s, k)] = st
    return Trend(bucket, seconds, tuple(starts), keys, cells, undated, dropped)
