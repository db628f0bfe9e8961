"""Which shard a trace belongs to, so N auditors can split one input exactly (``--shard I/N``).

A trace's shard is the low 64 bits of its id (the last 16 hex digits) as an unsigned
integer, modulo N. That is stable across processes, machines and Python versions (no
``hash()``), and W3C trace ids are random in those bits, so shards come out even. A rejected
span is counted by the shard of its trace when its trace id was usable, and by shard 0 when it
was not, so the shards' counts still add up to the whole.
"""

from __future__ import annotations

from dataclasses import dataclass

from auditor.errors import UsageError
from auditor.model import Rejected


@dataclass(frozen=True, slots=True)
class Shard:
    index: int
    count: int

    @classmethod
    def parse(cls, spec: str) -> "Shard":
        i, sep, n = spec.partition("/")
        try:
            index, count = int(i), int(n)
        except ValueError:
            index = count = -1
        if not sep or count < 1 or not 0 <= index < count:
            raise UsageError(f"--shard {spec!r}: expected I/N with 0 <= I < N, e.g. 0/4")
        return cls(index, count)

    def owns(self, trace_id: str) -> bool:
        return shard_of(trace_id, self.count) == self.index

    def keeps(self, r: Rejected) -> bool:
        """Whether this shard counts a rejected span (see the module's docstring)."""
        return self.index == 0 if r.trace_id is None else self.owns(r.trace_id)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def shard_of(trace_id: str, count: int) -> int:
    """The shard of a trace id (32 hex digits): its low 64 bits modulo ``count``."""
    return int(trace_id[-16:], 16) % count


def shard_of_bytes(trace_id: bytes, count: int) -> int:
    """``shard_of`` of a trace id as the protobuf carries it (16 bytes), without its hex."""
    return int.from_bytes(trace_id[-8:], "big") % count
