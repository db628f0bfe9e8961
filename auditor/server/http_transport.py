"""The HTTP transport's defences against slow and numerous clients (sidecar and ``auditor ui``).

uvicorn has no header timeout and no connection limit: a thousand clients that open a
connection and send half a request each hold a descriptor forever, until ``accept()`` fails
with EMFILE and everything else the process opens (spool segments, the store) fails too.
Here, as a uvicorn protocol class plus the loop's exception handler:

- **header timeout**: a request's headers must be complete within ``header_timeout`` seconds
  of the connection (or of the previous response): else 408 and close;
- **body timeout**: once the headers are in, the body may not stall for more than
  ``body_timeout`` seconds between chunks (time spent while *we* paused reading is not counted);
- **connection cap**: past ``max_connections`` open connections a new one is closed at once,
  and the cap is lowered to fit the process's descriptor limit (``RLIMIT_NOFILE``) with room
  for the gRPC side (capped alike, ``grpc_service``) and everything else; a small accept
  backlog bounds how many are accepted in one go;
- **EMFILE**: should ``accept()`` still run out of descriptors, asyncio already stops
  accepting for a second and tries again; we make that one warning line, at most every
  10 seconds, instead of a traceback per attempt.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import sys
import time

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from auditor.server.transport_limits import DEFAULT_BODY_TIMEOUT, DEFAULT_HEADER_TIMEOUT, DEFAULT_MAX_CONNECTIONS

BACKLOG = 128
RESERVED_FDS = 256  # spool, store, gRPC, worker pipes, libraries: what the process needs besides HTTP
_log = logging.getLogger("auditor.http")

_REQUEST_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\ncontent-length: 36\r\nconnection: close\r\n\r\nrequest headers not received in time"


def effective_max_connections(requested: int) -> int:
    """``requested``, lowered so that HTTP's and gRPC's connections (each capped at this), one
    accept burst and the reserve fit RLIMIT_NOFILE together."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return requested
    return max(8, min(requested, (soft - RESERVED_FDS - BACKLOG) // 2))


def protocol_class(max_connections: int, header_timeout: float, body_timeout: float, warn=None):
    """A uvicorn ``http`` protocol class with these limits (uvicorn instantiates it per connection)."""
    warn = warn or (lambda msg: print(msg, file=sys.stderr, flush=True))
    last_warning = [0.0]

    def rate_limited(msg: str) -> None:
        now = time.monotonic()
        if now - last_warning[0] >= 10:
            last_warning[0] = now
            warn(msg)

    class GuardedHttpTools(HttpToolsProtocol):
        _timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                rate_limited(f"{len(self.connections) - 1} connections open (--max-connections {max_connections}): "
                             "closing new ones until some finish")
                self.connections.discard(self)
                transport.abort()
                return
            self._arm(header_timeout, self._headers_late)

        # -- timers

        def _arm(self, seconds: float, fn) -> None:
            self._disarm()
            self._timer = self.loop.call_later(seconds, fn)

        def _disarm(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _headers_late(self) -> None:
            self._timer = None
            if not self.transport.is_closing():
                if self.cycle is None or self.cycle.response_complete:
                    self.transport.write(_REQUEST_TIMEOUT)
                self.transport.close()

        def _body_late(self) -> None:
            self._timer = None
            if self.transport.is_closing():
                return
            if self.flow is not None and self.flow.read_paused:  # we stopped reading: not the client's fault
                self._arm(body_timeout, self._body_late)
                return
            self.transport.close()  # the app sees http.disconnect

        # -- parser callbacks

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if self._timer is None:
                self._arm(header_timeout, self._headers_late)

        def on_headers_complete(self) -> None:
            self._arm(body_timeout, self._body_late)
            super().on_headers_complete()

        def on_body(self, body: bytes) -> None:
            self._arm(body_timeout, self._body_late)
            super().on_body(body)

        def on_message_complete(self) -> None:
            self._disarm()
            super().on_message_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            # the next request on this connection: uvicorn's keep-alive timeout covers the idle
            # wait, our header timeout the time to send its headers once it has begun

        def connection_lost(self, exc) -> None:
            self._disarm()
            super().connection_lost(exc)

    return GuardedHttpTools


def quiet_accept_errors(loop: asyncio.AbstractEventLoop, warn=None) -> None:
    """Turn asyncio's EMFILE accept tracebacks into one warning line every 10 s at most;
    every other loop error goes to the default handler as before."""
    warn = warn or (lambda msg: print(msg, file=sys.stderr, flush=True))
    last = [0.0]

    def handler(loop, context):
        exc = context.get("exception")
        if context.get("message") == "socket.accept() out of system resource" and isinstance(exc, OSError):
            now = time.monotonic()
            if now - last[0] >= 10:
                last[0] = now
                warn(f"accept() failed: {exc.strerror or exc} (descriptor limit reached); pausing accepts for a second, "
                     "serving the open connections")
            return
        loop.default_exception_handler(context)

    loop.set_exception_handler(handler)


def uvicorn_config(app, *, max_connections: int = DEFAULT_MAX_CONNECTIONS, header_timeout: float = DEFAULT_HEADER_TIMEOUT,
                   body_timeout: float = DEFAULT_BODY_TIMEOUT, warn=None, **kw):
    """uvicorn.Config for ``app`` with the protocol above and a small accept backlog."""
    import uvicorn

    cap = effective_max_connections(max_connections)
    return uvicorn.Config(
        app, http=protocol_class(cap, header_timeout, body_timeout, warn), backlog=BACKLOG,
        log_level="warning", access_log=False, lifespan="off", server_header=False, **kw,
    )
