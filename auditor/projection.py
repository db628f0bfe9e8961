"""Which attributes the audit reads, so decoders keep only those (memory ~ what is audited),
and optionally which traces (one shard's), so a decoder that can tell a span's trace cheaply
skips the others' spans before reading their attributes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Projection:
    names: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()
    keep_all: bool = False  # tools that need everything (schema inference) ask for it
    # (index, count) of ``auditor.shard``: a decoder MAY drop the spans of other shards' traces,
    # rejected or not, once it has read a usable trace id (it must report every other rejected
    # span, with that id when it had one: ``Rejected.trace_id``); callers filter again.
    shard: tuple[int, int] | None = None

    def wants(self, key: str) -> bool:
        return self.keep_all or key in self.names or (bool(self.prefixes) and key.startswith(self.prefixes))

    def __or__(self, other: "Projection") -> "Projection":
        return Projection(
            self.names | other.names,
            tuple(sorted(set(self.prefixes) | set(other.prefixes))),
            self.keep_all or other.keep_all,
            self.shard if self.shard == other.shard else None,
        )

    @classmethod
    def of(cls, names=(), prefixes=()) -> "Projection":
        return cls(frozenset(names), tuple(sorted(set(prefixes))))


EVERYTHING = Projection(keep_all=True)
