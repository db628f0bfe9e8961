"""How much of one input the loaders hold in memory at once, after decompression.

A JSON document, one JSON line, one protobuf message or one length-prefixed record is read
whole before it is decoded, so its size is what a hostile or broken input can make us
allocate (a 2 MB gzip bomb inflates to gigabytes; a sparse file reads as gigabytes of
zeros). Decompression is streamed and stops one byte past the limit: ``TooLarge``.

Files of any size still stream when they are JSON lines or length-prefixed records: the limit
is per document, line or record, not per file. The default equals the sidecar's
``--max-request-bytes`` (64 MiB), far above what an OTLP exporter sends in one batch (the
Collector's default gRPC message limit is 4 MiB), and low enough that parsing the largest
document accepted stays within a few hundred MB.
"""

from __future__ import annotations

import re
from contextvars import ContextVar

from auditor.errors import InputError

MIB = 1024 * 1024
DEFAULT_MAX_INPUT_BYTES = 64 * MIB

_limit: ContextVar[int] = ContextVar("max_input_bytes", default=DEFAULT_MAX_INPUT_BYTES)


class TooLarge(InputError):
    """One document, line or record larger than the limit (413 on the web page)."""

    def __init__(self, message: str, limit: int):
        super().__init__(message)
        self.limit = limit


def max_input_bytes() -> int:
    return _limit.get()


def set_max_input_bytes(n: int) -> None:
    _limit.set(int(n))


_SIZE = re.compile(r"^\s*(\d+)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str) -> int:
    """``67108864``, ``64MiB``, ``64M``, ``1g``: binary units. ValueError otherwise."""
    m = _SIZE.match(str(text))
    if not m:
        raise ValueError(f"expected a byte count such as 67108864, 64MiB or 1GiB, got {text!r}")
    return int(m.group(1)) * _UNITS[m.group(2).lower()]


def too_large(where: str, offset: int, limit: int, what: str = "one document") -> TooLarge:
    return TooLarge(
        f"{where}: offset {offset}: {what} is larger than {limit} bytes (after decompression); "
        "refused without reading further (raise --max-input-bytes, or write JSON lines)",
        limit,
    )
