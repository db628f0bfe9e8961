"""OTLP protobuf: ExportTraceServiceRequest / TracesData (same wire layout), and the
Collector fileexporter's stream of 4-byte big-endian length-prefixed records."""

from __future__ import annotations

import struct
from typing import Iterator

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from auditor.errors import InputError
from auditor.ingest import links as links_mod
from auditor.ingest.interning import SHORT, TABLE, canonical, share
from auditor.ingest.limits import max_input_bytes, too_large
from auditor.ingest.otlp_values import any_value as _value, service_of as _service
from auditor.model import SPAN_KIND_CONSUMER, Rejected, Span
from auditor.projection import Projection
from auditor.shard import shard_of_bytes

_ZERO16 = bytes(16)
_ZERO8 = bytes(8)
_NO_LINKS = links_mod.NONE
_CONSUMER = SPAN_KIND_CONSUMER


def _project(kvs, projection: Projection) -> dict:
    wants = projection.wants
    return {kv.key: _value(kv.value) for kv in kvs if wants(kv.key)}


def _projected(kvs, canon, canon_map: dict, prefixes: tuple[str, ...]) -> dict:
    """The wanted attributes of one span. The hot loop of decoding: strings and ints (nearly
    every value) are read inline, sharing short strings as ``share`` does, instead of a call
    to ``any_value`` and ``share`` per attribute; other kinds go through ``any_value``."""
    attrs = {}
    strings = TABLE
    for kv in kvs:
        k = kv.key
        name = canon(k)
        if name is None:
            if not prefixes or not k.startswith(prefixes):
                continue
            name = k
        v = kv.value
        x = v.string_value  # "" unless the value is a string: a non-empty one is read in one call
        if x:
            if len(x) <= SHORT:
                x = strings.get(x) or share(x)
            attrs[name] = x
            continue
        which = v.WhichOneof("value")
        if which == "int_value":
            attrs[name] = v.int_value
        else:
            attrs[name] = _value(v)
    return attrs


def spans_of(msg, projection: Projection, where: str, first: int = 0, scope_at: int = 0, span_at: int = 0) -> tuple[list[Span], list[Rejected]]:
    """Walk a decoded ExportTraceServiceRequest (or TracesData) into Spans. A piece of a larger
    message (``auditor.ingest.otlp_pieces``) says where it starts there, for rejections: its first
    resourceSpans' index, and for a piece of one scopeSpans, that scope's and its first span's."""
    spans: list[Span] = []
    rejected: list[Rejected] = []
    append = spans.append
    # The hot loop: a plain set lookup instead of a method call per attribute when the
    # projection is a list of names (the usual case); zero ids compare as bytes.
    canon_map = canonical(projection.names)
    canon = canon_map.get
    prefixes = projection.prefixes
    keep_all = projection.keep_all
    value = _value
    strings = TABLE
    ids: dict[bytes, str] = {}  # one string per id: a trace's spans share it, a child's parent id is its parent's
    # One shard's traces only (``check --jobs``): other traces' spans are skipped before their
    # attributes are read. Nothing after the id check can reject a span; a rejection there
    # names its trace when that id was usable (``Projection.shard``).
    shard_index, shard_count = projection.shard or (0, 0)
    owned: dict[bytes, bool] = {}
    for ri, rs in enumerate(msg.resource_spans, first):
        rkvs = rs.resource.attributes
        service = _service(rkvs)
        resource = _project(rkvs, projection)
        for si, ss in enumerate(rs.scope_spans, scope_at):
            scope = ss.scope.name
            for pi, s in enumerate(ss.spans, span_at):
                tid, sid, pid = s.trace_id, s.span_id, s.parent_span_id
                if len(tid) != 16 or len(sid) != 8 or len(pid) not in (0, 8) or tid == _ZERO16 or sid == _ZERO8:
                    rejected.append(
                        Rejected(
                            f"{where}: resourceSpans[{ri}].scopeSpans[{si}].spans[{pi}]",
                            "expected a 16-byte non-zero traceId, an 8-byte non-zero spanId and an empty or 8-byte parentSpanId",
                            tid.hex() if len(tid) == 16 and tid != _ZERO16 else None,
                            (0, ri, si, pi),
                        )
                    )
                    continue
                if shard_count:
                    mine = owned.get(tid)
                    if mine is None:
                        mine = owned[tid] = shard_of_bytes(tid, shard_count) == shard_index
                    if not mine:
                        continue
                if keep_all:
                    attrs = {kv.key: value(kv.value) for kv in s.attributes}
                else:
                    attrs = _projected(s.attributes, canon, canon_map, prefixes)
                tid_hex = ids.get(tid)
                if tid_hex is None:
                    tid_hex = ids[tid] = tid.hex()
                sid_hex = ids.get(sid)
                if sid_hex is None:
                    sid_hex = ids[sid] = sid.hex()
                if pid and pid != _ZERO8:
                    pid_hex = ids.get(pid)
                    if pid_hex is None:
                        pid_hex = ids[pid] = pid.hex()
                else:
                    pid_hex = ""
                name = s.name
                kind = s.kind
                lk, nd = links_mod.from_proto(s.links) if (not pid_hex or kind == _CONSUMER) and s.links else _NO_LINKS
                append(
                    Span(
                        tid_hex,
                        sid_hex,
                        pid_hex,
                        strings.get(name) or share(name),
                        service,
                        scope,
                        kind,
                        s.start_time_unix_nano,
                        s.end_time_unix_nano,
                        s.flags,
                        attrs,
                        resource,
                        False,
                        lk,
                        nd,
                    )
                )
    return spans, rejected


def decode_message(data: bytes, projection: Projection, where: str, first: int = 0, scope_at: int = 0,
                   span_at: int = 0) -> tuple[list[Span], list[Rejected]]:
    """One message, or a piece of one (see ``spans_of``); a piece after the first may hold no
    resourceSpans."""
    try:
        msg = ExportTraceServiceRequest.FromString(data)
    except (DecodeError, RuntimeError) as e:
        raise InputError(f"{where}: expected an OTLP ExportTraceServiceRequest/TracesData protobuf: {e}") from None
    if data and not first and not msg.resource_spans:
        raise InputError(f"{where}: offset 0: expected an OTLP trace protobuf with resourceSpans, found none")
    return spans_of(msg, projection, where, first, scope_at, span_at)


# A bare OTLP message starts with 0x0a, which read as a big-endian length is >= 160 MiB; a
# fileexporter record is far smaller. The cap keeps small bare messages from unknown-size
# streams (stdin, uploads) from being read as length-prefixed.
MAX_RECORD = 128 * 1024 * 1024


def looks_length_prefixed(head: bytes, size: int) -> bool:
    if len(head) < 5:
        return False
    (n,) = struct.unpack(">I", head[:4])
    return 0 < n <= min(size - 4, MAX_RECORD) and head[4] == 0x0A


def iter_length_prefixed(stream, projection: Projection, where: str, decode=None, max_record: int | None = None) -> Iterator[tuple[list[Span], list[Rejected]]]:
    decode = decode or decode_message
    limit = max_record if max_record is not None else max_input_bytes()
    offset = 0
    while True:
        head = stream.read(4)
        if not head:
            return
        if len(head) < 4:
            raise InputError(f"{where}: offset {offset}: truncated record length prefix (expected 4 bytes, got {len(head)})")
        (n,) = struct.unpack(">I", head)
        if n > limit:  # refused from the prefix, before reading (or inflating) the record
            raise too_large(where, offset, limit, f"a record of {n} bytes")
        body = stream.read(n)
        if len(body) != n:
            raise InputError(f"{where}: offset {offset}: truncated record (length prefix says {n} bytes, {len(body)} present)")
        yield decode(body, projection, f"{where}: record at offset {offset}")
        offset += 4 + n
