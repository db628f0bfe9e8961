"""The judged findings beside the unique calls they name, a trace at a time.

The boundaries, the spend per code and the finding groups each count the *distinct* calls
their findings name. Findings come sorted by trace and the unique calls sorted by ref, so one
pass over both gives each trace's findings with that trace's calls. A finding names calls of
its own trace only, except through a fold: a folded record's ref stands for its kept record,
which may sit in another trace and be named from several. Those kept records (few: one per
fold) are counted apart, once, at the end; everything else is counted when its trace ends.
So memory holds a trace and the folds, not a map of every call, which lets ``check --stream``
read both from disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import groupby
from operator import attrgetter
from typing import Iterable, Iterator, Mapping

from auditor.model import Finding, LlmCall

Ref = tuple[str, str]


@dataclass(frozen=True, slots=True)
class TraceBlock:
    trace_id: str
    findings: list[Finding]
    calls: Mapping[str, LlmCall]  # span id -> this trace's unique call


@dataclass(frozen=True, slots=True)
class Naming:
    """How findings name calls: their span and the calls below them, through the folds."""

    duplicates: Mapping[Ref, Ref]  # folded record ref -> kept record ref
    kept: Mapping[Ref, LlmCall]  # kept record ref -> the kept (merged) call

    def refs(self, f: Finding) -> Iterator[Ref]:
        dup = self.duplicates
        t = f.trace_id
        for sid in (f.span_id, *f.llm_calls_affected):
            ref = (t, sid)
            yield dup.get(ref, ref)

    def shared(self, ref: Ref) -> bool:
        """A kept record: other traces may name it too, so it is counted once, at the end."""
        return ref in self.kept

    def call(self, ref: Ref, block: TraceBlock) -> LlmCall | None:
        if ref[0] == block.trace_id:
            return block.calls.get(ref[1])
        return self.kept.get(ref)


def blocks(findings: Iterable[Finding], calls: Iterable[LlmCall]) -> Iterator[TraceBlock]:
    """Each trace that has findings, with its findings and its calls (both inputs sorted)."""
    it = iter(calls)
    pending = next(it, None)
    for tid, group in groupby(findings, key=attrgetter("trace_id")):
        while pending is not None and pending.trace_id < tid:
            pending = next(it, None)
        mine: dict[str, LlmCall] = {}
        while pending is not None and pending.trace_id == tid:
            mine[pending.span_id] = pending  # a span id written twice: the later record, as a dict by ref keeps
            pending = next(it, None)
        yield TraceBlock(tid, list(group), mine)
