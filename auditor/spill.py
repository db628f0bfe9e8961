"""Findings kept on disk while ``check --stream`` runs, read back in order when reported.

A streamed audit keeps only the mergeable parts of what it has seen; the findings are the
larger half of them (each carries its message), so holding them made memory grow with the
input. ``FindingSpill`` writes each audited batch's findings as one *run*, sorted by
``Finding.sort_key`` (stably), in pickled chunks to an anonymous temporary file (unlinked at
once: it goes when closed, or when the process dies). ``Spilled`` reads the runs back merged:
``heapq.merge`` keeps equal keys in run order, so the merged runs are exactly the stable sort
of the batches' findings concatenated, which is what the in-memory audit sorts. Memory holds
one chunk per run while reading. ``rollup.finish`` judges the spilled findings lazily
(``FindingView``), so every pass (totals, boundaries, groups, the reporters) reads the file again.

Pickle is safe here: the file is this process's own, unnamed, and nobody else can write it.
"""

from __future__ import annotations

import heapq
import os
import pickle
import tempfile
from itertools import islice
from typing import Callable, Iterable, Iterator

from auditor.errors import AuditorError
from auditor.model import Finding

CHUNK = 256  # findings per pickled chunk: memory while reading is a chunk per run


class SpillError(AuditorError):
    """The temporary file could not be written (a full disk): one line, exit 2."""


def _cannot_write(e: OSError) -> SpillError:
    return SpillError(f"cannot write --stream's findings to a temporary file in {tempfile.gettempdir()}: "
                      f"{e.strerror or e} (free space there, or point TMPDIR at a larger disk)")


class FindingSpill:
    """The writer: ``add`` a batch's findings, ``seal`` once at the end."""

    def __init__(self) -> None:
        self._file = None
        self._end = 0
        self._runs: list[tuple[tuple[int, int], ...]] = []
        self._count = 0

    def add(self, findings: Iterable[Finding]) -> None:
        run = sorted(findings, key=Finding.sort_key)
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
        return Spilled(self._file, tuple(self._runs), self._count)


class Spilled:
    """Every spilled finding, merged in ``sort_key`` order each time it is iterated."""

    __slots__ = ("_file", "runs", "count")

    def __init__(self, file, runs: tuple[tuple[tuple[int, int], ...], ...], count: int) -> None:
        self._file = file  # kept open (and so on disk) as long as anything can read it
        self.runs = runs
        self.count = count

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[Finding]:
        return heapq.merge(*(self._run(r) for r in self.runs), key=Finding.sort_key)

    def _run(self, chunks) -> Iterator[Finding]:
        fd = self._file.fileno()
        for offset, size in chunks:
            blob = os.pread(fd, size, offset)
            if len(blob) != size:
                raise OSError(f"the spill file ended early at byte {offset + len(blob)} (expected {size} bytes)")
            yield from pickle.loads(blob)


class FindingView:
    """The result's findings when they were spilled: the spilled ones that survive ``judge``
    (the policy, and dropping folded records' pricing findings) merged with the findings
    derived from the whole result, in ``sort_key`` order. Reads like the tuple it stands for
    (len, iteration, indexing, equality), each pass reading the spill file again."""

    __slots__ = ("_spilled", "_judge", "_derived", "_len")

    def __init__(self, spilled: Spilled, judge: Callable[[Finding], Finding | None], derived: tuple[Finding, ...]) -> None:
        self._spilled = spilled
        self._judge = judge
        self._derived = derived  # already judged and sorted
        self._len: int | None = None

    def __iter__(self) -> Iterator[Finding]:
        judge = self._judge
        kept = (g for g in map(judge, self._spilled) if g is not None)
        return heapq.merge(kept, self._derived, key=Finding.sort_key)

    def __len__(self) -> int:
        if self._len is None:
            self._len = sum(1 for _ in self)
        return self._len

    def __bool__(self) -> bool:
        return len(self) > 0

    def __getitem__(self, i):
        if isinstance(i, slice):
            return tuple(self)[i] if (i.step or 1) < 0 or (i.start or 0) < 0 or (i.stop or 0) < 0 \
                else tuple(islice(self, i.start, i.stop, i.step))
        if i < 0:
            i += len(self)
        for f in islice(self, i, None):
            return f
        raise IndexError("finding index out of range")

    def __eq__(self, other) -> bool:
        if isinstance(other, (FindingView, tuple, list)):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    __hash__ = None
