"""OTLP/gRPC receiver (grpc.aio, on the same event loop as the HTTP server).

One generic handler serves ``<Service>/Export`` for every signal in ``SIGNALS``; requests
arrive as raw bytes so an undecodable body is our INVALID_ARGUMENT, not a transport error.
grpc-core enforces the size limit (also on decompressed messages): RESOURCE_EXHAUSTED, and
the connection cap and handshake timeout against slow or numerous clients.
"""

from __future__ import annotations

import time

import grpc

from auditor.server import answers
from auditor.server.answers import Failure
from auditor.server.http_transport import effective_max_connections
from auditor.server.transport_limits import DEFAULT_HEADER_TIMEOUT, DEFAULT_MAX_CONNECTIONS
from auditor.server.intake import Intake
from auditor.server.metrics import Metrics
from auditor.server.signals import SIGNALS, Signal


def _handler(signal: Signal, intake: Intake, metrics: Metrics):
    async def export(body: bytes, context: grpc.aio.ServicerContext) -> bytes:
        t0 = time.perf_counter()
        md = dict(context.invocation_metadata() or ())
        if not intake.authorized(md.get("authorization")):
            outcome = answers.unauthenticated()
        else:
            outcome = await intake.export(signal, body, answers.PROTOBUF)
        if isinstance(outcome, Failure):
            metrics.requests.labels("grpc", outcome.grpc_code.name).inc()
            await context.abort(outcome.grpc_code, outcome.message, trailing_metadata=answers.grpc_trailers(outcome))
        metrics.accepted.labels("grpc").inc(outcome.accepted)
        if outcome.rejected:
            metrics.rejected.labels("grpc").inc(outcome.rejected)
        metrics.requests.labels("grpc", "OK").inc()
        metrics.latency.labels("grpc").observe(time.perf_counter() - t0)
        return answers.response_message(signal, outcome).SerializeToString()

    return grpc.unary_unary_rpc_method_handler(export)  # no (de)serializers: raw bytes


class _Handlers(grpc.GenericRpcHandler):
    def __init__(self, methods: dict):
        self.methods = methods

    def service(self, handler_call_details):
        return self.methods.get(handler_call_details.method)


def build_server(intake: Intake, metrics: Metrics, host: str, port: int, limit: int,
                 max_connections: int = DEFAULT_MAX_CONNECTIONS, handshake_timeout: float = DEFAULT_HEADER_TIMEOUT,
                 ) -> tuple[grpc.aio.Server, int]:
    """``max_connections`` is fitted to RLIMIT_NOFILE like the HTTP side's (the two share the
    process's descriptors); a connection must finish its HTTP/2 handshake within
    ``handshake_timeout`` and is closed after 5 idle minutes (exporters reconnect)."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", limit),
            ("grpc.so_reuseport", 0),
            ("grpc.max_allowed_incoming_connections", effective_max_connections(max_connections)),
            ("grpc.server_handshake_timeout_ms", int(handshake_timeout * 1000)),
            ("grpc.max_connection_idle_ms", 300_000),
        ]
    )
    server.add_generic_rpc_handlers((_Handlers({s.grpc_method: _handler(s, intake, metrics) for s in SIGNALS}),))
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError:  # newer grpcio raises where older ones returned 0
        bound = 0
    return server, bound
