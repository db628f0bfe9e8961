"""The trace assembly window: spans wait per trace until the trace goes quiet.

A trace is due once no span arrived for ``idle`` seconds, or once it has been open for
``max_age`` seconds. Both checks pop from the front of insertion-ordered structures, so a
tick costs what is due, not what is buffered. The window also knows the lowest spool
sequence any buffered span came from: records below it are fully persisted.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field

from auditor.model import Span


@dataclass(slots=True)
class Pending:
    spans: list[Span] = field(default_factory=list)
    first: float = 0.0
    last: float = 0.0
    min_seq: int = 0


class Window:
    def __init__(self, idle: float, max_age: float):
        self.idle = idle
        self.max_age = max_age
        self._by_last: OrderedDict[str, Pending] = OrderedDict()
        self._by_first: deque[tuple[float, str]] = deque()
        self._seq_refs: OrderedDict[int, int] = OrderedDict()  # min_seq -> open traces holding it
        self.spans = 0

    def __len__(self) -> int:
        return len(self._by_last)

    def add(self, spans: list[Span], seq: int, now: float) -> None:
        by_last = self._by_last
        for s in spans:
            p = by_last.get(s.trace_id)
            if p is None:
                p = by_last[s.trace_id] = Pending([], now, now, seq)
                self._by_first.append((now, s.trace_id))
                self._seq_refs[seq] = self._seq_refs.get(seq, 0) + 1
            else:
                if p.last != now:
                    p.last = now
                by_last.move_to_end(s.trace_id)
            p.spans.append(s)
        self.spans += len(spans)

    def due(self, now: float, everything: bool = False) -> list[tuple[str, list[Span]]]:
        out: list[tuple[str, list[Span]]] = []
        by_last = self._by_last
        if everything:
            tids = list(by_last)
        else:
            tids = []
            idle_before = now - self.idle
            for tid, p in by_last.items():
                if p.last > idle_before:
                    break
                tids.append(tid)
            age_before = now - self.max_age
            first = self._by_first
            while first and first[0][0] <= age_before:
                t0, tid = first.popleft()
                p = by_last.get(tid)
                if p is not None and p.first == t0 and tid not in tids:
                    tids.append(tid)
        for tid in tids:
            p = by_last.pop(tid)
            self.spans -= len(p.spans)
            n = self._seq_refs[p.min_seq] - 1
            if n:
                self._seq_refs[p.min_seq] = n
            else:
                del self._seq_refs[p.min_seq]
            out.append((tid, p.spans))
        if everything:
            self._by_first.clear()
        return out

    def low_seq(self, next_unread: int) -> int:
        """Lowest spool seq whose spans are still only in memory (``next_unread`` if none)."""
        for seq in self._seq_refs:
            return seq
        return next_unread
