"""Audit traces as they complete while records are read (``check --stream``): bounded memory.

A trace counts as complete once no span of it arrived within the last ``window`` records
(JSON lines, length-prefixed protobuf records). Complete traces are assembled, audited and
dropped, so memory holds the window, not the input; only the mergeable parts (findings,
LLM calls) are kept. When every trace completes within the window, the result equals the
non-streaming audit (parts are order-free). A span that arrives for a trace already audited
is a *late* span: it is audited as a trace of its own and counted, so the caller can warn
that the window is too small. Findings and call records go to disk as each batch is audited
(``auditor.spill``), so memory holds the window and a batch, not the result.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Iterable

from auditor import assemble as assemble_mod
from auditor.assemble import Trace
from auditor.engine import audit_traces
from auditor.model import Parts, Span, evolve
from auditor.plan import Plan
from auditor.rollup import merge_all
from auditor.spill import Spill, call_ref

AUDIT_BATCH_SPANS = 20_000  # complete traces are audited in batches of about this many spans
REMEMBER_DONE = 200_000  # recently audited trace ids kept to recognise late spans


class TraceWindow:
    def __init__(self, plan: Plan, window: int):
        if window < 1:
            raise ValueError("window must be at least 1 record")
        self.plan = plan
        self.window = window
        self.records = 0
        self.late_spans = 0
        self._pending: dict[str, list[Span]] = {}
        self._last: OrderedDict[str, int] = OrderedDict()  # trace id -> last record, oldest first
        self._ready: list[Trace] = []
        self._ready_spans = 0
        self._done: OrderedDict[str, None] = OrderedDict()
        self._parts: list[Parts] = []
        self._findings = Spill()
        self._calls = Spill(call_ref)

    @property
    def pending_traces(self) -> int:
        return len(self._pending)

    def add(self, spans: Iterable[Span]) -> None:
        """One record's spans; audits the traces the window has now closed."""
        self.records += 1
        rec = self.records
        pending, last = self._pending, self._last
        for s in spans:
            tid = s.trace_id
            buf = pending.get(tid)
            if buf is None:
                if tid in self._done:
                    self.late_spans += 1
                buf = pending[tid] = []
            buf.append(s)
            if last.get(tid) != rec:
                last[tid] = rec
                last.move_to_end(tid)
        horizon = rec - self.window
        while last:
            tid, seen = next(iter(last.items()))
            if seen > horizon:
                break
            del last[tid]
            self._complete(tid)
        if self._ready_spans >= AUDIT_BATCH_SPANS:
            self._audit_ready()

    def _complete(self, tid: str) -> None:
        spans = self._pending.pop(tid)
        self._ready.append(assemble_mod.build(tid, spans))  # a late span can never join it now
        self._ready_spans += len(spans)
        done = self._done
        done[tid] = None
        if len(done) > REMEMBER_DONE:
            done.popitem(last=False)

    def _audit_ready(self) -> None:
        if not self._ready:
            return
        traces = self._ready
        self._ready, self._ready_spans = [], 0
        parts = audit_traces(traces, self.plan)
        self._findings.add(parts.findings)
        self._calls.add(parts.calls)
        self._parts.append(evolve(parts, findings=(), calls=()))

    def finish(self, rejected: int = 0) -> Parts:
        """Audit what is still open and return the parts of everything seen."""
        for tid in list(self._last):
            self._complete(tid)
        self._last.clear()
        self._audit_ready()
        parts = self._parts + [self.plan.empty_parts(rejected)]
        self._parts = []
        return evolve(merge_all(parts), findings=self._findings.seal(), calls=self._calls.seal())

