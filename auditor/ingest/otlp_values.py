"""What the OTLP decoders share: protobuf AnyValue to Python, the resource's service name,
and the JSON decoder's error carrying a path (spans and log records are read alike)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from auditor.errors import InputError
from auditor.ingest.interning import share

MAX_DEPTH = 32  # nested arrays / kvlists read deeper than this become a marker, never a recursion error

class BadJson(Exception):
    """Raised deep inside with a relative path; turned into an InputError with the full path."""

    def __init__(self, path: str, expected: str):
        self.path = path
        self.expected = expected


def any_value(v, depth: int = 0):
    which = v.WhichOneof("value")
    if which == "string_value":
        return share(v.string_value)
    if which == "int_value":
        return v.int_value
    if which == "bool_value":
        return v.bool_value
    if which == "double_value":
        return v.double_value
    if which is None:
        return None
    if depth >= MAX_DEPTH:
        return "<nested too deep>"
    if which == "array_value":
        return tuple(any_value(x, depth + 1) for x in v.array_value.values)
    if which == "kvlist_value":
        return {kv.key: any_value(kv.value, depth + 1) for kv in v.kvlist_value.values}
    return bytes(v.bytes_value)


def service_of(resource_kvs) -> str:
    for kv in resource_kvs:
        if kv.key == "service.name":
            v = any_value(kv.value)
            return v if isinstance(v, str) and v else "unknown_service"
    return "unknown_service"


@contextmanager
def json_errors(where: str, root: str) -> Iterator[None]:
    """A decoder's deep error, or nesting too deep, as one line naming the file and the JSON path."""
    try:
        yield
    except BadJson as bad:
        raise InputError(f"{where}: {bad.path}: {bad.expected}") from None
    except RecursionError:
        raise InputError(f"{where}: {root}: nesting too deep") from None
