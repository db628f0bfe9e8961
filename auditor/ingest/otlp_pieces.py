"""A bare OTLP protobuf trace message decoded piece by piece, so its decoded form is never
held whole (the decoded protobuf of a 585 MB file takes several GB at once).

The top-level fields of a message, concatenated, are a message: frames of whole resourceSpans
are decoded about ``PIECE`` bytes at a time. A resourceSpans larger than that (one service's
spans in one frame) is cut between its spans: each piece repeats the resource's and the
scope's other fields (resource, scope, schema URLs, unknown fields, in their order), which is
what the whole decodes them as. The spans, their order, the rejections (with their indices in
the whole message) and every error equal one decode of the whole: anything not framed the
usual way, and any logs message, is read on and decoded in one go, as before.

Such a resourceSpans of a regular file is not held either (290 MB of the 1M-span corpus, in
one process and in every ``check --jobs`` worker at once): it is read where it lies, twice,
a window at a time to find its spans and a piece at a time to decode them (``_InFile``).
"""

from __future__ import annotations

import io
import os
import stat
from array import array
from typing import Callable, Iterator

from auditor.errors import InputError
from auditor.ingest.limits import too_large
from auditor.ingest.otlp_logs import _fields as wire_fields, probe_signal
from auditor.ingest.otlp_proto import decode_message
from auditor.model import Rejected, Span
from auditor.projection import Projection

Batch = tuple[list[Span], list[Rejected]]
PIECE = 4 * 1024 * 1024
WINDOW = 8 * 1024 * 1024  # bytes of a large resourceSpans of a file read at once while finding its spans
_HEAD = 32  # enough for any field's header: a tag and a length (or a value) of at most 10 bytes each
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


class _InMemory:
    """A resourceSpans' body held in memory: the cutter's view of it."""

    __slots__ = ("body", "size")

    def __init__(self, body: memoryview) -> None:
        self.body, self.size = body, len(body)

    def at(self, i: int, n: int) -> tuple[memoryview, int]:
        """Bytes from ``i`` on (at least ``n`` of them, or up to the end), and where they start."""
        return self.body, 0

    def read(self, i: int, n: int) -> memoryview:
        return self.body[i:i + n]


class _Shrunk(Exception):
    """The file holds fewer bytes than when the resourceSpans was reached: it changed meanwhile."""


class _InFile:
    """A resourceSpans' body read where it lies in a regular file (``os.pread``), never whole.
    ``at`` gives the cutter a window whose bytes it indexes as the in-memory body's, so finding
    the spans costs what it costs in memory; ``read`` gives a piece's bytes to decode."""

    __slots__ = ("fd", "start", "size")

    def __init__(self, fd: int, start: int, size: int) -> None:
        self.fd, self.start, self.size = fd, start, size

    def at(self, i: int, n: int) -> tuple[bytes, int]:
        return self.read(i, max(0, min(n, self.size - i))), i

    def read(self, i: int, n: int) -> bytes:
        data = os.pread(self.fd, n, self.start + i)
        if len(data) < n:
            raise _Shrunk(self.start + i + len(data))
        return data


def _regular_fd(stream, n: int) -> int | None:
    """The descriptor of the regular file under ``stream``, when it holds the ``n`` bytes after
    the stream's position (gzip, pipes and sockets are read as they come)."""
    raw = getattr(stream, "raw", None)
    if not isinstance(stream, io.BufferedReader) or not isinstance(raw, io.FileIO) or not hasattr(os, "pread"):
        return None  # (no pread on Windows)
    try:
        st = os.fstat(raw.fileno())
        if stat.S_ISREG(st.st_mode) and stream.tell() + n <= st.st_size:
            return raw.fileno()
    except (OSError, ValueError):
        pass
    return None


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
        fd = _regular_fd(stream, n) if n > PIECE else None
        if fd is not None:
            at = stream.tell()
            src = _InFile(fd, at, n)
            try:
                cut = _cut_in_file(src, head, signal, seen)
            except _Shrunk as e:
                raise _changed(where, e, at) from None
            if cut is not None:
                signal, cut = cut
                stream.seek(at + n)
                taken += n
                if buf:
                    yield decode_message(bytes(buf), projection, where, done)
                    done += frames
                    buf.clear()
                    frames = 0
                try:
                    yield from _decode_cut(src, cut, projection, where, done)
                except _Shrunk as e:
                    raise _changed(where, e, at) from None
                done += 1
                continue
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
            held = _InMemory(body)
            cut = _cuts(held)
            if cut is not None:
                if buf:
                    yield decode_message(bytes(buf), projection, where, done)
                    done += frames
                    buf.clear()
                    frames = 0
                yield from _decode_cut(held, cut, projection, where, done)
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


def _changed(where: str, e: _Shrunk, at: int) -> InputError:
    return InputError(f"{where}: offset {e.args[0]}: the file ended there, inside the resourceSpans at offset {at}, "
                      "which it held when that was reached (changed while being audited?)")


# (the resource's other fields, and per scopeSpans: its other fields and its spans' byte ranges)
Cut = tuple[bytes, list[tuple[bytes, array]]]
Source = _InMemory | _InFile


def _cut_in_file(src: _InFile, head: bytes, signal: str | None, seen: int) -> tuple[str, Cut] | None:
    """A large resourceSpans of a file, cut where it lies: (the signal, the cut), or None when
    it is to be read whole (a logs message, not plain wire format, undecided by its first window)."""
    if signal is None:
        try:
            signal, seen = probe_signal(head + src.at(0, WINDOW)[0], seen, len(head) + src.size, strict=True)
        except IndexError:
            return None
    if signal != "traces":
        return None
    cut = _cuts(src)
    return None if cut is None else (signal, cut)


def _cuts(src: Source) -> Cut | None:
    """Where one resourceSpans' spans lie, or None when any of it is not plain wire format
    (the whole frame is then decoded as one)."""
    try:
        others = bytearray()
        scopes = []
        i = 0
        while i < src.size:
            buf, base = src.at(i, _HEAD)
            f, wt, s, e = next(wire_fields(buf, i - base, src.size - base))
            s, e = s + base, e + base
            if f == 2 and wt == 2:
                scopes.append((s, e))
            else:
                others += src.read(i, e - i)
            i = e
        out = []
        for s, e in scopes:
            out.append(_spans_of_scope(src, s, e))
        return bytes(others), out
    except IndexError:
        return None


def _spans_of_scope(src: Source, i: int, end: int) -> tuple[bytes, array]:
    """One scopeSpans' other fields, and its spans' byte ranges (tag to end) as a flat array;
    IndexError where it is not plain wire format. The spans are read inline: one per span,
    over a window of the source that holds every header whole (or reaches its end)."""
    others = bytearray()
    ranges = array("q")
    append = ranges.append
    size = src.size
    buf, base = src.at(i, min(WINDOW, end + _HEAD - i))  # a header starts before ``end``
    held = base + len(buf)  # the window ends here
    while i < end:
        if i + _HEAD > held and held < size:
            buf, base = src.at(i, min(WINDOW, end + _HEAD - i))
            held = base + len(buf)
        start = i
        k = i - base
        if buf[k] == 0x12:  # spans: field 2, length-delimited, a one-byte tag
            k += 1
            n = shift = 0
            while True:
                b = buf[k]
                k += 1
                n |= (b & 0x7F) << shift
                if b < 0x80:
                    break
                shift += 7
                if shift > 63:
                    raise IndexError
            i = base + k + n
            if i > end:
                raise IndexError
            append(start)
            append(i)
        else:
            _f, _wt, _a, j = next(wire_fields(buf, k, end - base))
            i = base + j
            others += buf[k:j] if j <= len(buf) else src.read(start, i - start)
    return bytes(others), ranges


def _decode_cut(src: Source, cut: Cut, projection: Projection, where: str, index: int) -> Iterator[Batch]:
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
            spans = b""
            if j > i:  # (a scopeSpans without spans is still one piece)
                a = ranges[2 * i]
                block = memoryview(src.read(a, ranges[2 * j - 1] - a))
                spans = b"".join(block[ranges[2 * k] - a:ranges[2 * k + 1] - a] for k in range(i, j))
            scope = scope_others + spans
            resource = others + _SCOPE_SPANS + varint(len(scope)) + scope
            yield decode_message(_RESOURCE_SPANS + varint(len(resource)) + resource, projection, where, index, si, i)
            i = j
            if i >= n:
                break
