"""Findings and LLM call records kept on disk while ``check --stream`` runs, read back in order.

A streamed audit keeps only the mergeable parts of what it has seen, the findings and the call
records; holding them made memory grow with the input. ``Spill`` writes each audited batch's
records as one *run*, sorted stably (findings by ``Finding.sort_key``, calls by ref), in
pickled chunks to an anonymous temporary file (unlinked at once: it goes when closed, or when
the process dies). ``Spilled`` reads the runs back merged: ``heapq.merge`` keeps equal keys in
run order, so the merged runs are exactly the stable sort of the batches' records
concatenated, which is what the in-memory audit sorts. Memory holds one chunk per run while
reading. ``rollup.finish`` reads them in passes (``Lazy``: the judged findings, the unique
calls), each pass reading the file again; its aggregates go a trace at a time.

Pickle is safe here: the file is this process's own, unnamed, and nobody else can write it.
"""

from __future__ import annotations

import heapq
import os
import pickle
import tempfile
from itertools import islice
from typing import Any, Callable, Iterable, Iterator

from auditor.errors import AuditorError
from auditor.model import Finding, LlmCall

CHUNK = 256  # records per pickled chunk: memory while reading is a chunk per run
RUN_ROWS = 50_000  # rows an ExternalSort holds before it writes them out as a run


def call_ref(c: LlmCall) -> tuple[str, str]:
    return (c.trace_id, c.span_id)


def in_ref_order(calls: Iterable[LlmCall]) -> Iterable[LlmCall]:
    """Call records sorted by ref: spilled ones already are (read, not held, to sort them)."""
    return calls if isinstance(calls, Spilled) else sorted(calls, key=call_ref)


class SpillError(AuditorError):
    """The temporary file could not be written (a full disk): one line, exit 2."""


def _cannot_write(e: OSError) -> SpillError:
    return SpillError(f"cannot write --stream's findings and call records to a temporary file in {tempfile.gettempdir()}: "
                      f"{e.strerror or e} (free space there, or point TMPDIR at a larger disk)")


class Spill:
    """The writer: ``add`` a batch's records, ``seal`` once at the end."""

    def __init__(self, key: Callable[[Any], Any] = Finding.sort_key) -> None:
        self._key = key
        self._file = None
        self._end = 0
        self._runs: list[tuple[tuple[int, int], ...]] = []
        self._count = 0

    def add(self, records: Iterable) -> None:
        run = sorted(records, key=self._key)
        if not run:
            return
        chunks = []
        try:
            if self._file is None:
                self._file = tempfile.TemporaryFile(prefix="auditor-spill-")
            for i in range(0, len(run), CHUNK):
                blob = pickle.dumps(run[i:i + CHUNK], protocol=pickle.HIGHEST_PROTOCOL)
                self._file.write(blob)
                chunks.append((self._end, len(blob)))
                self._end += len(blob)
        except OSError as e:
            raise _cannot_write(e) from None
        self._runs.append(tuple(chunks))
        self._count += len(run)

    def seal(self) -> "Spilled":
        if self._file is not None:
            try:
                self._file.flush()
            except OSError as e:
                raise _cannot_write(e) from None
        return Spilled(self._file, tuple(self._runs), self._count, self._key)


class ExternalSort:
    """Rows sorted by ``key`` holding at most ``RUN_ROWS`` of them in memory: full runs go to disk,
    ``result`` merges them (the same order as a stable sort of every row added)."""

    def __init__(self, key: Callable[[Any], Any]) -> None:
        self._spill = Spill(key)
        self._rows: list = []
        self._run = RUN_ROWS

    def add(self, row) -> None:
        self._rows.append(row)
        if len(self._rows) >= self._run:
            self._spill.add(self._rows)
            self._rows = []

    def result(self) -> "Spilled":
        self._spill.add(self._rows)
        self._rows = []
        return self._spill.seal()


class Spilled:
    """Every spilled record, merged in key order each time it is iterated."""

    __slots__ = ("_file", "runs", "count", "key")

    def __init__(self, file, runs: tuple[tuple[tuple[int, int], ...], ...], count: int, key) -> None:
        self._file = file  # kept open (and so on disk) as long as anything can read it
        self.runs = runs
        self.count = count
        self.key = key

    def __len__(self) -> int:
        return self.count

    def __bool__(self) -> bool:
        return self.count > 0

    def __iter__(self) -> Iterator:
        return heapq.merge(*(self._run(r) for r in self.runs), key=self.key)

    def _run(self, chunks) -> Iterator:
        fd = self._file.fileno()
        for offset, size in chunks:
            blob = os.pread(fd, size, offset)
            if len(blob) != size:
                raise OSError(f"the spill file ended early at byte {offset + len(blob)} (expected {size} bytes)")
            yield from pickle.loads(blob)


class Lazy:
    """A sequence computed from spilled records each time it is iterated: reads like the tuple
    it stands for (len, truth, iteration, indexing, equality), every pass reading the file again."""

    __slots__ = ("_make", "_len")

    def __init__(self, make: Callable[[], Iterator], length: int | None = None) -> None:
        self._make = make
        self._len = length

    def __iter__(self) -> Iterator:
        return self._make()

    def __len__(self) -> int:
        if self._len is None:
            self._len = sum(1 for _ in self)
        return self._len

    def know_length(self, n: int) -> None:
        """The length, counted by a pass made anyway (saves a pass over the file)."""
        self._len = n

    def __bool__(self) -> bool:
        if self._len is not None:
            return self._len > 0
        return next(iter(self), _END) is not _END

    def __getitem__(self, i):
        if isinstance(i, slice):
            if (i.step or 1) < 0 or (i.start or 0) < 0 or (i.stop or 0) < 0:
                return tuple(self)[i]
            return tuple(islice(self, i.start, i.stop, i.step))
        if i < 0:
            i += len(self)
        for f in islice(self, i, None):
            return f
        raise IndexError("index out of range")

    def __eq__(self, other) -> bool:
        if isinstance(other, (Lazy, tuple, list)):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    __hash__ = None


_END = object()


def finding_view(spilled: Spilled, judge: Callable[[Finding], Finding | None], derived: tuple[Finding, ...]) -> Lazy:
    """The result's findings when they were spilled: the spilled ones that survive ``judge``
    (the policy, and dropping folded records' pricing findings) merged with the findings
    derived from the whole result (already judged and sorted), in ``sort_key`` order."""

    def make() -> Iterator[Finding]:
        kept = (g for g in map(judge, spilled) if g is not None)
        return heapq.merge(kept, derived, key=Finding.sort_key)

    return Lazy(make)
