"""Report formats. Each module is a pure ``render(result, options) -> str``; the CLI decides
where it goes. The enum is the one list of formats; a test loops over it."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from enum import Enum
from typing import Iterator

from auditor.errors import UsageError
from auditor.model import AuditResult


class Format(str, Enum):
    TEXT = "text"
    JSON = "json"
    HTML = "html"
    MARKDOWN = "markdown"
    JUNIT = "junit"
    SARIF = "sarif"

    @property
    def module(self) -> str:
        return f"auditor.report.{self.value}_report"


@dataclass(frozen=True, slots=True)
class RenderOptions:
    color: bool = False
    verbose: bool = False


def render(fmt: Format, result: AuditResult, options: RenderOptions = RenderOptions()) -> str:
    return importlib.import_module(fmt.module).render(result, options)


def render_chunks(fmt: Format, result: AuditResult, options: RenderOptions = RenderOptions()) -> Iterator[str]:
    """``render``'s text in pieces where the format writes as it encodes (``render_chunks`` in
    its module: the JSON report), else whole."""
    mod = importlib.import_module(fmt.module)
    chunks = getattr(mod, "render_chunks", None)
    if chunks is None:
        yield mod.render(result, options)
    else:
        yield from chunks(result, options)


def parse_output_spec(spec: str) -> tuple[Format, str | None]:
    """``text`` or ``junit:report.xml``: a format and, optionally, where it goes."""
    name, _, path = spec.partition(":")
    try:
        fmt = Format(name.strip().lower())
    except ValueError:
        raise UsageError(
            f"--format {spec!r}: unknown format {name!r} (expected one of: {', '.join(f.value for f in Format)})"
        ) from None
    return fmt, (path or None)
