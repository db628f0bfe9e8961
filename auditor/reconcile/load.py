"""``load_usage(path)``: read any supported usage or cost export, sniffing its content."""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

from auditor.reconcile.fields import pages
from auditor.reconcile.formats import anthropic_console_csv, anthropic_console_usage_csv, anthropic_cost, anthropic_usage, openai_costs, openai_usage
from auditor.reconcile.model import UsageExport, UsageExportError

# Order matters only for documents that could be read two ways (none known); most specific first.
JSON_FORMATS = (openai_usage, openai_costs, anthropic_cost, anthropic_usage)
EXPECTED = (
    "expected an Anthropic usage report or cost report (JSON), an OpenAI usage/completions or costs page "
    "(JSON), or the Anthropic Console's cost or usage CSV"
)


def load_usage(path: str | Path) -> UsageExport:
    """One export from a file, or from stdin when ``path`` is '-'."""
    where = str(path)
    try:
        if where == "-":
            where = "<stdin>"
            data = sys.stdin.buffer.read()
        else:
            data = Path(path).read_bytes()
    except OSError as e:
        raise UsageExportError(f"{where}: cannot read: {e.strerror or e}") from None
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as e:
            raise UsageExportError(f"{where}: corrupt gzip: {e}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UsageExportError(f"{where}: offset {e.start}: expected UTF-8 text") from None
    return parse_usage(text, where)


def parse_usage(text: str, where: str) -> UsageExport:
    head = text.lstrip("\ufeff \t\r\n")
    if not head:
        raise UsageExportError(f"{where}: empty file: {EXPECTED}")
    if head[0] in "{[":
        docs = pages(text, where)
        for fmt in JSON_FORMATS:
            if fmt.detect(docs):
                return fmt.read(docs, where)
        raise UsageExportError(f"{where}: $: {EXPECTED}")
    first = head.splitlines()[0]
    if anthropic_console_usage_csv.detect_header(first):
        return anthropic_console_usage_csv.read(text, where)
    if anthropic_console_csv.detect_header(first):
        return anthropic_console_csv.read(text, where)
    raise UsageExportError(f"{where}: line 1: {EXPECTED}")
