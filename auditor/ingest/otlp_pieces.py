"""A bare OTLP protobuf trace message decoded piece by piece, so its decoded form is never
held whole (the decoded protobuf of a 585 MB file takes several GB at once).

The top-level fields of a message, concatenated, are a message: frames of whole resourceSpans
are decoded about ``PIECE`` bytes at a time. A resourceSpans larger than that (one service's
spans in one frame) is cut between its spans: each piece repeats the resource's and the
scope's other fields (resource, scope, schema URLs, unknown fields, in their order), which is
what the whole decodes them as. The spans, their order, the rejections (with their indices in
the whole message) and every error equal one decode of the whole: anything not framed the
usual way, and any logs message, is read on and decoded in one go, as before.
"""

from __future__ import annotations

from array import array
from typing import Callable, Iterator

from auditor.ingest.limits import too_large
from auditor.ingest.otlp_logs import _fields as wire_fields, probe_signal
from auditor.ingest.otlp_proto import decode_message
from auditor.model import Rejected, Span
from auditor.projection import Projection

Batch = tuple[list[Span], list[Rejected]]
PIECE = 4 * 1024 * 1024
_RESOURCE_SPANS = b"\x0a"  # field 1, length-delimited: the tag of resourceSpans
_SCOPE_SPANS = b"\x12"  # field 2, length-delimited (scopeSpans in a resource, spans in a scope)


def varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _next_frame(stream) -> tuple[bytes, int]:
    """The next top-level field's tag and length bytes and its length, when it is a resourceSpans;
    otherwise (end of input, another field, a broken length) the bytes read and -1."""
    tag = stream.read(1)
    if tag != _RESOURCE_SPANS:
        return tag, -1
    head = bytearray(tag)
    n = shift = 0
    while True:
        b = stream.read(1)
        if not b or shift > 28:
            return bytes(head + b), -1
        head += b
        n |= (b[0] & 0x7F) << shift
        if not b[0] & 0x80:
            return bytes(head), n
        shift += 7


def _read_into(stream, view: memoryview) -> int:
    """Fill ``view`` (short only at the end of input)."""
    got = 0
    while got < len(view):
        n = stream.readinto(view[got:])
        if not n:
            break
        got += n
    return got


def iter_message(stream, projection: Projection, where: str, limit: int,
                 decode_whole: Callable[[bytes, Projection, str], Batch]) -> Iterator[Batch]:
    """One bare message from ``stream`` (its first byte is 0x0a): TooLarge past ``limit`` bytes,
    before reading them; ``decode_whole`` decodes it when it is not read in pieces."""
    buf = bytearray()  # whole resourceSpans frames not decoded yet
    frames = done = taken = 0  # frames in buf, resourceSpans decoded, bytes read
    signal, seen = None, 0
    while True:
        head, n = _next_frame(stream)
        taken += len(head)
        if n < 0 or taken + n > limit:
            break
        frame = bytearray(len(head) + n)
        frame[:len(head)] = head
        got = _read_into(stream, memoryview(frame)[len(head):])
        taken += got
        if got < n:
            head = bytes(frame[:len(head) + got])
            break
        body = memoryview(frame)[len(head):]
        if signal is None:
            signal, seen = probe_signal(frame, seen)
        if signal == "traces" and n > PIECE:
            cut = _cuts(body)
            if cut is not None:
                if buf:
                    yield decode_message(bytes(buf), projection, where, done)
                    done += frames
                    buf.clear()
                    frames = 0
                yield from _decode_cut(body, cut, projection, where, done)
                done += 1
                continue
        buf += frame
        frames += 1
        if signal == "traces" and len(buf) >= PIECE:
            yield decode_message(bytes(buf), projection, where, done)
            done += frames
            buf.clear()
            frames = 0
    rest = stream.read(limit + 1 - taken) if taken <= limit else b""
    taken += len(rest)
    if taken > limit:
        raise too_large(where, 0, limit, "one protobuf message")
    data = bytes(buf) + head + rest
    del buf
    if not done:
        yield decode_whole(data, projection, where)
    elif data:
        yield decode_message(data, projection, where, done)


# (the resource's other fields, and per scopeSpans: its other fields and its spans' byte ranges)
Cut = tuple[bytes, list[tuple[bytes, array]]]


def _cuts(body: memoryview) -> Cut | None:
    """Where one resourceSpans' spans lie, or None when any of it is not plain wire format
    (the whole frame is then decoded as one)."""
    try:
        others = bytearray()
        scopes = []
        prev = 0
        for f, wt, s, e in wire_fields(body, 0, len(body)):
            if f == 2 and wt == 2:
                scopes.append((s, e))
            else:
                others += body[prev:e]
            prev = e
        out = []
        for s, e in scopes:
            out.append(_spans_of_scope(body, s, e))
        return bytes(others), out
    except IndexError:
        return None


def _spans_of_scope(body: memoryview, i: int, end: int) -> tuple[bytes, array]:
    """One scopeSpans' other fields, and its spans' byte ranges (tag to end) as a flat array;
    IndexError where it is not plain wire format. The spans are read inline: one per span."""
    others = bytearray()
    ranges = array("q")
    append = ranges.append
    while i < end:
        start = i
        if body[i] == 0x12:  # spans: field 2, length-delimited, a one-byte tag
            i += 1
            n = shift = 0
            while True:
                b = body[i]
                i += 1
                n |= (b & 0x7F) << shift
                if b < 0x80:
                    break
                shift += 7
                if shift > 63:
                    raise IndexError
            i += n
            if i > end:
                raise IndexError
            append(start)
            append(i)
        else:
            _f, _wt, _a, i = next(wire_fields(body, i, end))
            others += body[start:i]
    return bytes(others), ranges


def _decode_cut(body: memoryview, cut: Cut, projection: Projection, where: str, index: int) -> Iterator[Batch]:
    """Resource ``index``'s spans, a piece of about PIECE bytes of one scopeSpans at a time."""
    others, scopes = cut
    for si, (scope_others, ranges) in enumerate(scopes):
        n = len(ranges) // 2
        i = 0
        while True:
            j, size = i, 0
            while j < n and (j == i or size < PIECE):
                size += ranges[2 * j + 1] - ranges[2 * j]
                j += 1
            scope = scope_others + b"".join(body[ranges[2 * k]:ranges[2 * k + 1]] for k in range(i, j))
            resource = others + _SCOPE_SPANS + varint(len(scope)) + scope
            yield decode_message(_RESOURCE_SPANS + varint(len(resource)) + resource, projection, where, index, si, i)
            i = j
            if i >= n:
                break
