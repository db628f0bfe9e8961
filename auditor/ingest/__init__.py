"""Read trace inputs: sniff the content (never the file name), decode, project attributes.

``load()`` reads files and stdin; ``decode_bytes()`` reads one in-memory body (web paste,
HTTP upload). Both accept: OTLP protobuf, OTLP JSON (one object or JSON lines), the
same for OTLP logs (each log record a span-like record, see ``otlp_logs``), the
Collector fileexporter's length-prefixed protobuf records, any JSON format registered in
``auditor.ingest.formats``, and each of these gzip-compressed.

Decompression is streamed, and no document, line or record larger than
``limits.max_input_bytes()`` (after decompression) is ever held: ``limits.TooLarge``.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import sys
import zlib
from dataclasses import dataclass
from typing import BinaryIO, Iterable, Iterator

from auditor.errors import InputError
from auditor.ingest import clickhouse, clickhouse_server, otlp_logs, otlp_pieces, otlp_proto
from auditor.ingest.formats import decode_json_document
from auditor.ingest.limits import TooLarge, max_input_bytes, too_large  # noqa: F401  (TooLarge re-exported)
from auditor.model import Rejected, Span
from auditor.projection import Projection

GZIP_MAGIC = b"\x1f\x8b"
_PEEK = 64 * 1024
_READ_BUFFER = 1 << 20  # JSON lines of a whole export batch are often ~1 MB: read them in few calls

Batch = tuple[list[Span], list[Rejected]]


@dataclass(frozen=True, slots=True)
class Loaded:
    spans: list[Span]
    rejected: list[Rejected]
    inputs: tuple[str, ...]


def load(sources: Iterable[str], projection: Projection, stdin: BinaryIO | None = None) -> Loaded:
    spans: list[Span] = []
    rejected: list[Rejected] = []
    names = []
    for source in sources:
        names.append(source)
        for batch_spans, batch_rejected in iter_source(source, projection, stdin):
            spans.extend(batch_spans)
            rejected.extend(batch_rejected)
    return Loaded(spans, rejected, tuple(names))


def iter_source(source: str, projection: Projection, stdin: BinaryIO | None = None) -> Iterator[Batch]:
    """Batches of spans from one path (or '-' for stdin), streamed where the format allows."""
    if clickhouse_server.is_url(source):
        yield from clickhouse_server.iter_server(source, projection)
        return
    if source == "-":
        raw = stdin if stdin is not None else sys.stdin.buffer
        yield from iter_stream(raw, "<stdin>", projection)
        return
    try:
        fh = open(source, "rb", buffering=_READ_BUFFER)
    except OSError as e:
        raise InputError(f"{source}: cannot open: {e.strerror or e}") from None
    with fh:
        yield from iter_stream(fh, source, projection)


def decode_bytes(data: bytes, where: str, projection: Projection) -> Batch:
    spans: list[Span] = []
    rejected: list[Rejected] = []
    for s, r in iter_stream(io.BytesIO(data), where, projection):
        spans.extend(s)
        rejected.extend(r)
    return spans, rejected


def inflate(data: bytes, where: str, limit: int) -> bytes:
    """``data`` itself, or its gzip members decompressed (streamed); TooLarge past ``limit``
    bytes, having decompressed no more than ``limit`` + 1. For bodies held in memory (uploads)."""
    if data[:2] != GZIP_MAGIC:
        if len(data) > limit:
            raise too_large(where, 0, limit, "the input")
        return data
    out = bytearray()
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data), mode="rb") as gz:
            while True:
                chunk = gz.read(min(_READ_BUFFER, limit + 1 - len(out)))
                if not chunk:
                    break
                out += chunk
                if len(out) > limit:
                    raise too_large(where + " (gzip)", 0, limit, "the input")
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise InputError(f"{where}: corrupt or truncated gzip stream: {e}") from None
    return bytes(out)


def iter_stream(raw: BinaryIO, where: str, projection: Projection) -> Iterator[Batch]:
    stream = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(_Readable(raw), _PEEK)
    head = stream.peek(2)[:2]
    if head == GZIP_MAGIC:
        stream = io.BufferedReader(gzip.GzipFile(fileobj=stream, mode="rb"), _PEEK)  # type: ignore[arg-type]
        where_inner = where + " (gzip)"
    else:
        where_inner = where
    try:
        yield from _iter_plain(stream, where_inner, projection, max_input_bytes())
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise InputError(f"{where}: corrupt or truncated gzip stream: {e}") from None
    except OSError as e:
        raise InputError(f"{where}: read error: {e}") from None


class _Readable(io.RawIOBase):
    """Adapts any object with read() (stdin, sockets' files) to a buffered reader."""

    def __init__(self, f):
        self._f = f

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        data = self._f.read(len(b))
        n = len(data)
        b[:n] = data
        return n


def _iter_plain(stream: io.BufferedReader, where: str, projection: Projection, limit: int) -> Iterator[Batch]:
    head = stream.peek(_PEEK)[:_PEEK]
    stripped = head.lstrip()
    if not stripped:
        if not head:
            return
        offset = 0
        while True:  # only whitespace so far: scan on in chunks, never holding more than one
            chunk = stream.read(_READ_BUFFER)
            if not chunk:
                return
            if chunk.strip():
                raise InputError(f"{where}: offset 0: expected OTLP protobuf or JSON, found leading whitespace then other data")
            offset += len(chunk)
            if offset > limit:
                raise too_large(where, 0, limit, "leading whitespace")
    kind = _sniff(head, _size_hint(stream, head))
    if kind == "parquet":  # SELECT * FROM otel_traces FORMAT Parquet
        yield from clickhouse.iter_parquet(_seekable(stream, where, limit), projection, where)
    elif kind == "json":
        yield from _iter_json(stream, where, projection, limit)
    elif kind == "json-bom":
        stream.read(3)  # UTF-8 byte-order mark
        yield from _iter_json(stream, where, projection, limit)
    elif kind == "records":
        yield from otlp_proto.iter_length_prefixed(stream, projection, where, decode=decode_protobuf, max_record=limit)
    elif kind == "message":
        yield from otlp_pieces.iter_message(stream, projection, where, limit, decode_protobuf)
    else:  # told from the first bytes, before reading the rest
        raise InputError(
            f"{where}: offset 0: expected OTLP protobuf (first byte 0x0a), OTLP/Jaeger/Zipkin JSON, "
            f"length-prefixed records, Parquet or gzip; found byte 0x{head[0]:02x}"
        )


def _sniff(head: bytes, size: int) -> str | None:
    """What a stream that is not blank holds, told from its head (gzip already undone) and the
    bytes available: parquet, json, json-bom, records (length-prefixed protobuf), message (one
    protobuf message), or None."""
    stripped = head.lstrip()
    if head[:4] == clickhouse.PARQUET_MAGIC:
        return "parquet"
    if stripped[:1] in (b"{", b"[") and not _binary(head):
        return "json"
    if stripped[:3] == b"\xef\xbb\xbf" and stripped[3:4] in (b"{", b"["):
        return "json-bom"
    if otlp_proto.looks_length_prefixed(head, size):
        return "records"
    return "message" if head[:1] == b"\x0a" else None


def _seekable(stream: io.BufferedReader, where: str, limit: int):
    """Parquet needs its footer first: the file itself when it can seek, else (stdin, gzip)
    the bytes in memory, at most ``limit``."""
    if isinstance(getattr(stream, "raw", None), io.FileIO):
        try:
            stream.seek(0)
            return stream
        except (OSError, ValueError):
            pass
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise too_large(where, 0, limit, "one Parquet file (not seekable: stdin or gzip)")
    return io.BytesIO(data)


def decode_protobuf(data: bytes, projection: Projection, where: str) -> Batch:
    """One OTLP protobuf message: traces or logs, told apart by content (same outer layout)."""
    if otlp_logs.signal_of(data) == "logs":
        return otlp_logs.decode_message(data, projection, where)
    return otlp_proto.decode_message(data, projection, where)


_CONTROL = bytes(b for b in range(32) if b not in (9, 10, 13))


SPLIT_LINE_BYTES = 16 * 1024 * 1024


def skips_other_shards(path: str) -> bool:
    """Whether workers (``check --jobs``) split a file's decoding: its decoder skips other
    shards' spans early (``Projection.shard``), and what each worker holds at once is bounded.
    OTLP protobuf (one message, read in pieces, or length-prefixed records whose first is at
    most SPLIT_LINE_BYTES) or OTLP JSON lines whose first line (at most SPLIT_LINE_BYTES) is a
    whole document naming ``resourceSpans``, gzipped or not, told from the head by ``_sniff``
    as when it is read. Not a JSON document over many lines, nor a first record or line too
    long: every worker would hold the whole of its parse at once."""
    try:
        with open(path, "rb") as raw:
            zipped = raw.read(2) == GZIP_MAGIC
            raw.seek(0)
            size = 1 << 62 if zipped else os.fstat(raw.fileno()).st_size  # (gzip: only records' own lengths are checked)
            with (gzip.GzipFile(fileobj=raw, mode="rb") if zipped else raw) as fh:
                head = fh.read(_PEEK)
                kind = _sniff(head, size) if head.strip() else None
                if kind == "records":  # each is decoded whole, as a JSON line is
                    return int.from_bytes(head[:4], "big") <= SPLIT_LINE_BYTES
                if kind not in ("json", "json-bom"):
                    return kind == "message"
                if b'"resourceSpans"' not in head and b'"resource_spans"' not in head:
                    return False
                fh.seek(0)
                first = fh.readline(SPLIT_LINE_BYTES + 1)
    except (OSError, EOFError, zlib.error):
        return False
    if len(first) > SPLIT_LINE_BYTES:
        return False
    try:
        return isinstance(json.loads(first.removeprefix(b"\xef\xbb\xbf")), dict)
    except (ValueError, RecursionError):
        return False


def _binary(head: bytes) -> bool:
    """Control bytes cannot occur in JSON text, and nearly every protobuf has some: a message
    whose first field is 0x0a, length 0x7b ('{') must not be read as JSON."""
    return head[:1] == b"\n" and any(b in _CONTROL for b in head[:4096])


def _size_hint(stream, head: bytes) -> int:
    """Bytes available, for sanity-checking a length prefix without reading everything."""
    raw = getattr(stream, "raw", None)
    try:
        if raw is not None and hasattr(raw, "seekable") and raw.seekable() and not isinstance(raw, gzip.GzipFile):
            # The stream's logical position: the raw file's is ahead by what the buffer holds
            # (up to a megabyte), which made a file of one record larger than the peek look short.
            return os.fstat(raw.fileno()).st_size - stream.tell()
    except (OSError, ValueError):
        pass
    return 1 << 62  # unknown (stdin, gzip): trust the prefix, check record by record


def _iter_json(stream: io.BufferedReader, where: str, projection: Projection, limit: int) -> Iterator[Batch]:
    first = stream.readline(limit + 1)
    if len(first) > limit:
        raise too_large(where, 0, limit, "line 1")
    try:
        obj = json.loads(first)
        is_lines = True
    except json.JSONDecodeError:
        is_lines = False
    except UnicodeDecodeError as e:
        raise InputError(f"{where}: line 1: expected UTF-8 JSON: {e.reason} at byte {e.start}") from None
    except RecursionError:
        raise InputError(f"{where}: line 1: JSON nesting too deep") from None
    if not is_lines:
        rest = stream.read(limit + 1 - len(first))
        if len(first) + len(rest) > limit:
            raise too_large(where, 0, limit, "one JSON document")
        text = first + rest
        del rest
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise InputError(f"{where}: line {e.lineno} column {e.colno} (offset {e.pos}): invalid JSON: {e.msg}") from None
        except UnicodeDecodeError as e:
            raise InputError(f"{where}: offset {e.start}: expected UTF-8 JSON: {e.reason}") from None
        except RecursionError:
            raise InputError(f"{where}: JSON nesting too deep") from None
        yield decode_json_document(obj, projection, where, "$")
        return
    # JSON lines: one document per line (the OTLP file exporter, the Collector fileexporter).
    yield decode_json_document(obj, projection, f"{where}: line 1", "$")
    lineno = 1
    offset = len(first)
    readline = stream.readline
    while True:
        line = readline(limit + 1)
        if not line:
            break
        lineno += 1
        if len(line) > limit:
            raise too_large(f"{where}: line {lineno}", offset, limit, "one JSON line")
        offset += len(line)
        if line.isspace():  # (strip() would copy every long line)
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"{where}: line {lineno} column {e.colno}: invalid JSON: {e.msg}") from None
        except UnicodeDecodeError as e:
            raise InputError(f"{where}: line {lineno}: expected UTF-8 JSON: {e.reason}") from None
        except RecursionError:
            raise InputError(f"{where}: line {lineno}: JSON nesting too deep") from None
        yield decode_json_document(obj, projection, f"{where}: line {lineno}", "$")
