"""What both receivers do with a decoded request body: check, apply backpressure, spool, ack.

Never raises into the transport: every outcome is a ``Checked`` (accepted, possibly with
rejected items) or an ``answers.Failure``. The buffer is counted in spans accepted but not
yet stored by the worker (its ``done_seq``), so memory stays bounded by
``--max-buffered-spans``: past it, clients get a retryable 429 / UNAVAILABLE.
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
from auditor.server.queue import QueueFull
from auditor.server.web_guard import bearer_ok


class Intake:
    def __init__(self, spool, done_seq, max_buffered: int, auth_token: str | None, projection: Projection | None = None):
        self.spool = spool
        self.projection = projection or Projection()  # what the workers decode: checked here exactly as they will read it
        self.done_seq = done_seq  # multiprocessing.Value published by the worker
        self.max_buffered = max_buffered
        self._token = auth_token or None
        self.accepting = True
        self._pending: deque[tuple[int, int]] = deque()  # (seq, spans) not yet stored
        self._spooled = 0
        self._inflight = 0
        self._active = 0
        self._idle = asyncio.Event()
        self._idle.set()
        for rec in spool.unconsumed:  # replayed from disk: still buffered until the worker stores it
            if rec.seq >= done_seq.value:
                self._pending.append((rec.seq, rec.items))
                self._spooled += rec.items
        spool.unconsumed = []

    # ------------------------------------------------------------ auth and buffer

    def authorized(self, header: str | bytes | None) -> bool:
        return bearer_ok(header, self._token)  # scheme case-insensitive, constant-time compare

    def buffered(self) -> int:
        done = self.done_seq.value
        pending = self._pending
        while pending and pending[0][0] < done:
            self._spooled -= pending.popleft()[1]
        return self._spooled + self._inflight

    # ------------------------------------------------------------ export

    async def export(self, signal: Signal, body: bytes, ctype: str) -> Checked | Failure:
        if not self.accepting:
            return answers.shutting_down()
        buffered = self.buffered()
        if buffered >= self.max_buffered:
            return answers.buffer_full(buffered, self.max_buffered)
        try:
            checked = (signal.check_json if ctype == answers.JSON else signal.check_proto)(body, self.projection)
        except InputError as e:
            return answers.bad_request(str(e))
        if not checked.accepted and not checked.rejected:
            return checked  # an empty request gets success
        if buffered and buffered + checked.accepted > self.max_buffered:
            return answers.buffer_full(buffered, self.max_buffered)
        kind = signal.kind_json if ctype == answers.JSON else signal.kind_proto
        self._inflight += checked.accepted
        self._active += 1
        self._idle.clear()
        try:
            seq = await self.spool.append(kind, checked.accepted, body)
        except QueueFull:  # nothing of it was written; the client keeps the data and retries
            return answers.disk_full()
        except Exception as e:  # I/O error, closed: the client keeps the data and retries
            return Failure(503, grpc.StatusCode.UNAVAILABLE, f"cannot write the queue: {e}", retry_after=2)
        finally:
            self._inflight -= checked.accepted
            self._active -= 1
            if not self._active:
                self._idle.set()
        self._pending.append((seq, checked.accepted))
        self._spooled += checked.accepted
        return checked

    async def stop(self) -> None:
        """Refuse new exports; return once every export in flight is on disk and answered."""
        self.accepting = False
        await self._idle.wait()
