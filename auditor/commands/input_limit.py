"""``--max-input-bytes``: one option for every command that reads trace files."""

from __future__ import annotations

import click

from auditor.ingest import limits


class _ByteSize(click.ParamType):
    name = "BYTES"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        try:
            n = limits.parse_size(value)
        except ValueError as e:
            self.fail(str(e), param, ctx)
        if n < 1024:
            self.fail(f"{value!r}: at least 1024 bytes", param, ctx)
        return n


def max_input_bytes_option(fn):
    """Sets the loaders' per-document limit for this run (also when the flag is absent)."""
    return click.option(
        "--max-input-bytes", type=_ByteSize(), default=limits.DEFAULT_MAX_INPUT_BYTES, show_default="64MiB",
        expose_value=False, is_eager=True, callback=lambda _ctx, _param, v: limits.set_max_input_bytes(v),
        help="Largest JSON document, JSON line, protobuf message or record held at once, after gzip "
             "decompression (e.g. 256MiB); larger ones are refused early with exit 2. Files of JSON lines "
             "or records may be of any size.",
    )(fn)
