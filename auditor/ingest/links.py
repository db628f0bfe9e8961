"""Span links as the model keeps them: (trace id, span id) pairs, validated like ids.

Links are rare, and only those of a span that can start a consumer's work are judged (a
trace root, or a span of kind CONSUMER: ``judged``), so decoders read links of those spans
only: the other ~95% of spans pay one comparison, not a look at their links (reading a
protobuf repeated field costs about as much as two scalar fields). Every decoder applies the
same test, so every format gives the same spans. A link with an unusable id, or past
``MAX_LINKS`` on one span, is dropped and counted on its span (``Span.links_dropped``, summed
into ``summary.rejected_links``); it never costs the span.
"""

from __future__ import annotations

from typing import Any, Iterable

from auditor.model import MAX_LINKS, SPAN_KIND_CONSUMER

_ZERO16, _ZERO8 = bytes(16), bytes(8)
NONE: tuple[tuple, int] = ((), 0)


def judged(parent_span_id: str | bytes, kind: int) -> bool:
    """A span whose links the audit reads: a root (no parent id) or a CONSUMER span."""
    return not parent_span_id or kind == SPAN_KIND_CONSUMER


def _kept(pairs: list[tuple[str, str]], dropped: int) -> tuple[tuple[tuple[str, str], ...], int]:
    """Unique links in their first order, capped; repeats are not counted as dropped."""
    seen: dict[tuple[str, str], None] = dict.fromkeys(pairs)
    out = tuple(seen)
    if len(out) > MAX_LINKS:
        dropped += len(out) - MAX_LINKS
        out = out[:MAX_LINKS]
    return out, dropped


def from_proto(links: Iterable) -> tuple[tuple[tuple[str, str], ...], int]:
    """OTLP protobuf ``Span.links``: 16-byte and 8-byte non-zero ids."""
    pairs, dropped = [], 0
    for ln in links:
        t, s = ln.trace_id, ln.span_id
        if len(t) != 16 or len(s) != 8 or t == _ZERO16 or s == _ZERO8:
            dropped += 1
            continue
        pairs.append((t.hex(), s.hex()))
    return _kept(pairs, dropped)


def from_hex_pairs(pairs_in: Iterable[tuple[Any, Any]], hex_id) -> tuple[tuple[tuple[str, str], ...], int]:
    """(trace id, span id) values of any type, read by ``hex_id(value, nbytes)`` (None: unusable)."""
    pairs, dropped = [], 0
    for t, s in pairs_in:
        try:
            tid, sid = hex_id(t, 16), hex_id(s, 8)
        except Exception:  # a hostile value of any type costs its link, never the span
            tid = sid = None
        if not tid or not sid:
            dropped += 1
            continue
        pairs.append((tid, sid))
    return _kept(pairs, dropped)
