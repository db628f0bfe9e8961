"""A traces export split by shard once, by the receiver, so no audit worker decodes spans
it does not keep (before, each of N workers decoded every export: N-fold decode work).

The receiver decodes the body anyway to check it; here the same walk also sorts the good
spans by shard (``worker.shard_of`` on the trace id, so a trace lands whole on one worker)
and re-serialises each shard's spans as an ExportTraceServiceRequest with the same resource
and scope around them: a worker reads its piece with the decoder ``auditor check`` uses, and
gets the very spans it would have kept from the whole export. Spans with unusable ids go to
no piece; the header counts them, with the digest of the whole body, so shard 0 records them
once per request content exactly as before. Nothing but protobuf and this fixed header is
ever read back (no pickle of client data).

Header (big-endian): version u8 (1), shards u16, rejected u32, then the 16-byte blake2b digest
of the body when rejected > 0.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from auditor.errors import InputError
from auditor.server.queue import SPLIT_KIND
from auditor.server.signals import Checked, _rejected_message

KIND = SPLIT_KIND  # queue record kind of a split traces export (after signals' 1-4)
VERSION = 1
_HEAD = struct.Struct(">BHI")
DIGEST = 16


@dataclass(frozen=True, slots=True)
class Header:
    shards: int  # the worker count it was split for
    rejected: int  # spans with unusable ids, in no piece
    digest: bytes  # of the whole body (b"" when nothing was rejected): a retry is no new span


def digest(body: bytes) -> bytes:
    return hashlib.blake2b(body, digest_size=DIGEST).digest()


def pack(h: Header) -> bytes:
    return _HEAD.pack(VERSION, h.shards, h.rejected) + h.digest


def unpack(payload: bytes) -> Header:
    if len(payload) < _HEAD.size:
        raise ValueError(f"split header of {len(payload)} bytes, expected at least {_HEAD.size}")
    version, shards, rejected = _HEAD.unpack_from(payload)
    if version != VERSION:
        raise ValueError(f"split header version {version}, this version reads {VERSION}")
    d = payload[_HEAD.size:]
    if len(d) not in (0, DIGEST) or shards < 1:
        raise ValueError("malformed split header")
    return Header(shards, rejected, d)


def split_traces_proto(body: bytes, shards: int) -> tuple[Checked, bytes, dict[int, bytes]]:
    """Check an ExportTraceServiceRequest as ``signals`` does (same counts, same message) and
    split its good spans by shard: (checked, header, {shard: piece}), empty shards left out."""
    try:
        msg = ExportTraceServiceRequest.FromString(body)
    except (DecodeError, RuntimeError) as e:
        raise InputError(f"body: expected an OTLP ExportTraceServiceRequest protobuf: {e}") from None
    outs: list[ExportTraceServiceRequest | None] = [None] * shards
    ok = bad = 0
    from_bytes = int.from_bytes
    for rs in msg.resource_spans:
        rs_out: list = [None] * shards
        for ss in rs.scope_spans:
            ss_out: list = [None] * shards
            for s in ss.spans:
                tid, sid, pid = s.trace_id, s.span_id, s.parent_span_id
                if len(tid) != 16 or len(sid) != 8 or len(pid) not in (0, 8) or not any(tid) or not any(sid):
                    bad += 1
                    continue
                ok += 1
                k = from_bytes(tid[:4], "big") % shards  # == worker.shard_of(tid.hex(), shards)
                o = ss_out[k]
                if o is None:
                    r = rs_out[k]
                    if r is None:
                        req = outs[k]
                        if req is None:
                            req = outs[k] = ExportTraceServiceRequest()
                        r = rs_out[k] = req.resource_spans.add()
                        r.resource.CopyFrom(rs.resource)
                        r.schema_url = rs.schema_url
                    o = ss_out[k] = r.scope_spans.add()
                    o.scope.CopyFrom(ss.scope)
                    o.schema_url = ss.schema_url
                o.spans.append(s)
    header = pack(Header(shards, bad, digest(body) if bad else b""))
    pieces = {k: req.SerializeToString() for k, req in enumerate(outs) if req is not None}
    return Checked(ok, bad, _rejected_message(bad)), header, pieces
