"""OTLP answers, built once for both transports: what each outcome means on the wire.

HTTP answers are encoded like the request (protobuf or JSON); errors carry a
``google.rpc.Status``. gRPC errors carry the same Status in ``grpc-status-details-bin``
so clients find RetryInfo where the spec says.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import grpc
from google.protobuf import any_pb2, duration_pb2, json_format
from google.rpc import error_details_pb2, status_pb2

from auditor.server.signals import Checked, Signal

PROTOBUF = "application/x-protobuf"
JSON = "application/json"


@dataclass(frozen=True, slots=True)
class Failure:
    """An export we did not accept, and how to say so on each transport."""

    http_status: int
    grpc_code: grpc.StatusCode
    message: str
    retry_after: int | None = None  # seconds; set for retryable backpressure

    def status(self) -> status_pb2.Status:
        st = status_pb2.Status(code=self.grpc_code.value[0], message=self.message)
        if self.retry_after is not None:
            d = any_pb2.Any()
            d.Pack(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=self.retry_after)))
            st.details.append(d)
        return st


def bad_request(msg: str) -> Failure:
    return Failure(400, grpc.StatusCode.INVALID_ARGUMENT, msg)


def too_large(limit: int, decompressed: bool = False) -> Failure:
    after = " (after decompression)" if decompressed else ""
    return Failure(413, grpc.StatusCode.RESOURCE_EXHAUSTED, f"request larger than {limit} bytes{after}")


def unauthenticated() -> Failure:
    return Failure(401, grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")


def buffer_full(buffered: int, limit: int) -> Failure:
    return Failure(
        429, grpc.StatusCode.UNAVAILABLE,
        f"audit buffer full ({buffered} of {limit} spans waiting); retry later", retry_after=1,
    )


def buffer_full_bytes(buffered: int, limit: int) -> Failure:
    return Failure(
        429, grpc.StatusCode.UNAVAILABLE,
        f"audit buffer full ({buffered} of {limit} bytes queued on disk, not yet audited); retry later", retry_after=1,
    )


def shutting_down() -> Failure:
    return Failure(503, grpc.StatusCode.UNAVAILABLE, "the auditor sidecar is shutting down; retry later", retry_after=2)


def disk_full() -> Failure:
    return Failure(
        503, grpc.StatusCode.UNAVAILABLE,
        "the auditor sidecar's disk is full: nothing of this export was kept; retry later", retry_after=5,
    )


def unsupported_type(ctype: str) -> Failure:
    return Failure(
        415, grpc.StatusCode.INVALID_ARGUMENT,
        f"unsupported Content-Type {ctype!r}: expected {PROTOBUF} or {JSON}",
    )


def unsupported_encoding(enc: str) -> Failure:
    return Failure(415, grpc.StatusCode.INVALID_ARGUMENT, f"unsupported Content-Encoding {enc!r}: expected gzip or identity")


def response_message(signal: Signal, checked: Checked):
    msg = signal.response_type()
    if checked.rejected:
        setattr(msg.partial_success, signal.rejected_field, checked.rejected)
        msg.partial_success.error_message = checked.message
    return msg


def encode(msg, ctype: str) -> bytes:
    if ctype == JSON:
        return json.dumps(json_format.MessageToDict(msg), separators=(",", ":")).encode()
    return msg.SerializeToString()


def grpc_trailers(f: Failure) -> tuple[tuple[str, bytes], ...]:
    return (("grpc-status-details-bin", f.status().SerializeToString()),)
