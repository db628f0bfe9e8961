"""What both receivers do with a decoded request body: check, apply backpressure, spool, ack.

Never raises into the transport: every outcome is a ``Checked`` (accepted, possibly with
rejected items) or an ``answers.Failure``. The buffer is what was acknowledged and not yet
stored by every worker (below their ``done_seq``): it lives on disk, in the queue, so it is
bounded in bytes (``--max-buffered-bytes``, on top of the queue's own disk reserve) and, when
``--max-buffered-spans`` is given, in spans too; past either bound clients get a retryable
429 / UNAVAILABLE. Memory does not grow with it: the workers read the queue only while their
window holds fewer than ``max_window_spans`` spans. With several workers a traces protobuf
export is split by shard here (``auditor.server.split``), once, instead of by every worker.
"""

from __future__ import annotations

import asyncio
from collections import deque

import grpc

from auditor.errors import InputError
from auditor.server import answers
from auditor.server.answers import Failure
from auditor.server.signals import Checked, Signal
from auditor.projection import Projection
from auditor.server import split
from auditor.server.queue import QueueFull, record_bytes
from auditor.server.web_guard import bearer_ok


class Intake:
    def __init__(self, spool, done_seq, max_buffered: int | None, auth_token: str | None, projection: Projection | None = None,
                 max_buffered_bytes: int | None = None, shards: int = 1):
        self.spool = spool
        self.shards = shards
        self.projection = projection or Projection()  # what the workers decode: checked here exactly as they will read it
        self.done_seq = done_seq  # multiprocessing.Value published by the worker
        self.max_buffered = max_buffered  # spans (None: bounded in bytes only)
        self.max_buffered_bytes = max_buffered_bytes
        self._token = auth_token or None
        self.accepting = True
        self._pending: deque[tuple[int, int, int]] = deque()  # (seq, spans, bytes) not yet stored
        self._spooled = 0
        self._spooled_bytes = 0
        self._inflight = 0
        self._inflight_bytes = 0
        self._active = 0
        self._idle = asyncio.Event()
        self._idle.set()
        for rec in spool.unconsumed:  # replayed from disk: still buffered until the worker stores it
            if rec.seq >= done_seq.value:
                self._pending.append((rec.seq, rec.items, rec.size))
                self._spooled += rec.items
                self._spooled_bytes += rec.size
        spool.unconsumed = []

    # ------------------------------------------------------------ auth and buffer

    def authorized(self, header: str | bytes | None) -> bool:
        return bearer_ok(header, self._token)  # scheme case-insensitive, constant-time compare

    def buffered(self) -> int:
        """Spans acknowledged (or being written) and not yet stored by every worker."""
        done = self.done_seq.value
        pending = self._pending
        while pending and pending[0][0] < done:
            _seq, n, b = pending.popleft()
            self._spooled -= n
            self._spooled_bytes -= b
        return self._spooled + self._inflight

    def buffered_bytes(self) -> int:
        """Their bytes in the queue (payloads; SQLite's pages add a little)."""
        self.buffered()
        return self._spooled_bytes + self._inflight_bytes

    def fill(self) -> float:
        """The fuller of the two bounds, as a ratio (1.0: exports are refused)."""
        spans = self.buffered() / self.max_buffered if self.max_buffered else 0.0
        nbytes = self.buffered_bytes() / self.max_buffered_bytes if self.max_buffered_bytes else 0.0
        return max(spans, nbytes)

    def _over(self, spans: int, nbytes: int) -> Failure | None:
        if self.max_buffered is not None and spans >= self.max_buffered:
            return answers.buffer_full(spans, self.max_buffered)
        if self.max_buffered_bytes is not None and nbytes >= self.max_buffered_bytes:
            return answers.buffer_full_bytes(nbytes, self.max_buffered_bytes)
        return None

    # ------------------------------------------------------------ export

    async def export(self, signal: Signal, body: bytes, ctype: str) -> Checked | Failure:
        if not self.accepting:
            return answers.shutting_down()
        buffered, buffered_bytes = self.buffered(), self.buffered_bytes()
        full = self._over(buffered, buffered_bytes)
        if full is not None:
            return full
        kind = signal.kind_json if ctype == answers.JSON else signal.kind_proto
        payload, pieces = body, None
        try:
            if self.shards > 1 and signal.split_proto and ctype != answers.JSON:
                checked, payload, pieces = split.split_traces_proto(body, self.shards)
                kind = split.KIND
            else:
                checked = (signal.check_json if ctype == answers.JSON else signal.check_proto)(body, self.projection)
        except InputError as e:
            return answers.bad_request(str(e))
        if not checked.accepted and not checked.rejected:
            return checked  # an empty request gets success
        size = record_bytes(payload, pieces)
        # an export larger than a bound still goes into an empty buffer
        if buffered and self.max_buffered is not None and buffered + checked.accepted > self.max_buffered:
            return answers.buffer_full(buffered, self.max_buffered)
        if buffered_bytes and self.max_buffered_bytes is not None and buffered_bytes + size > self.max_buffered_bytes:
            return answers.buffer_full_bytes(buffered_bytes, self.max_buffered_bytes)
        self._inflight += checked.accepted
        self._inflight_bytes += size
        self._active += 1
        self._idle.clear()
        try:
            seq = await self.spool.append(kind, checked.accepted, payload, pieces)
        except QueueFull:  # nothing of it was written; the client keeps the data and retries
            return answers.disk_full()
        except Exception as e:  # I/O error, closed: the client keeps the data and retries
            return Failure(503, grpc.StatusCode.UNAVAILABLE, f"cannot write the queue: {e}", retry_after=2)
        finally:
            self._inflight -= checked.accepted
            self._inflight_bytes -= size
            self._active -= 1
            if not self._active:
                self._idle.set()
        self._pending.append((seq, checked.accepted, size))
        self._spooled += checked.accepted
        self._spooled_bytes += size
        return checked

    async def stop(self) -> None:
        """Refuse new exports; return once every export in flight is on disk and answered."""
        self.accepting = False
        await self._idle.wait()
