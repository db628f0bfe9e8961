"""The read side: the AuditResult over everything stored, rebuilt exactly with rollup.finish.

Built from the stored per-trace Parts (like ``auditor merge`` over shards), so /api/report
equals ``auditor check`` over the same spans. The per-trace Parts are kept in memory and
refreshed incrementally: each worker commit stamps its rows with a new store version, and
only rows newer than the last one seen are read again (a re-audited trace replaces its entry).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from auditor.model import AuditResult, Parts, RunInfo
from auditor.pipeline import judge_traces
from auditor.plan import Plan
from auditor.result_json import to_json
from auditor.server import store
from auditor.trend import Trend, trend


class Reporter:
    def __init__(self, db: Path, plan: Plan, inputs: tuple[str, ...]):
        self.db = db
        self.plan = plan
        self.inputs = inputs
        self._lock = threading.Lock()
        self._conn = None
        self._result: tuple[int, AuditResult] | None = None
        self._parts: dict = {}  # trace id -> Parts
        self._seen = 0
        self._rejected = 0
        self._json: tuple[int, str] | None = None
        self._stats: tuple[int, dict] | None = None
        self._trends: dict[str, tuple[int, Trend]] = {}

    def _c(self):
        if self._conn is None:
            self._conn = store.connect(self.db, readonly=True)
        return self._conn

    def result(self) -> AuditResult:
        with self._lock:
            return self._current()[1]

    def _current(self) -> tuple[int, AuditResult]:
        """(store version, result) as of now; called with the lock held."""
        v = self._refresh()
        if self._result is None or self._result[0] != v:
            t0 = time.perf_counter()
            empty = self.plan.empty_parts(self._rejected)
            run = RunInfo(inputs=self.inputs, schema=self.plan.describe(_dialects(self._parts.values(), empty)),
                          seconds=time.perf_counter() - t0)
            result, encoded = judge_traces(self._parts, empty, run, _encode)
            self._result = (v, result)
            self._json = (v, encoded)
        return self._result

    def _refresh(self) -> int:
        """Read what changed since the last look, in one snapshot."""
        c = self._c()
        c.execute("BEGIN")
        try:
            v = store.version(c)
            if v != self._seen:
                gone = store.evicted_since(c, self._seen)  # retention (issue 19): drop, then re-read what came back
                if gone is None:
                    self._parts.clear()
                    self._seen = -1
                for tid in gone or ():
                    self._parts.pop(tid, None)
                self._parts.update(store.changed_parts(c, self._seen))
                self._rejected = store.rejected_spans(c)
                self._seen = v
        finally:
            c.execute("COMMIT")
        return v

    def trend(self, bucket: str = "minute") -> Trend:
        """The unattributed share per key per minute / hour of trace time, derived from the live
        result (so it is exact under late spans and retention); cached per store version."""
        with self._lock:
            v, result = self._current()
            hit = self._trends.get(bucket)
            if hit is None or hit[0] != v:
                hit = self._trends[bucket] = (v, trend(result, bucket))
            return hit[1]

    def report_json(self) -> str:
        self.result()
        with self._lock:
            return self._json[1]

    def stats(self) -> dict:
        with self._lock:
            c = self._c()
            v = store.version(c)
            if self._stats is None or self._stats[0] != v:
                self._stats = (v, store.stats(c))
            return self._stats[1]

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _encode(result: AuditResult) -> str:
    """The document of 'check --format json', without its indentation (the C encoder)."""
    return json.dumps(to_json(result), ensure_ascii=False, separators=(",", ":"))


def _dialects(parts, empty: Parts) -> Parts:
    """Only the dialect counts of everything stored (to name the schema the run used)."""
    from dataclasses import replace

    spoken: dict[str, int] = {}
    for p in parts:
        for name, n in p.dialects:
            spoken[name] = spoken.get(name, 0) + n
    return replace(empty, dialects=tuple(sorted(spoken.items())))
