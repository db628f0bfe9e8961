"""Reconciliation report formats: one module per format, each a pure ``render(rec) -> str``.
The enum is the one list; a test loops over it so no format is forgotten."""

from __future__ import annotations

import importlib
from enum import Enum

from auditor.errors import UsageError
from auditor.reconcile.result import Reconciliation


class ReconFormat(str, Enum):
    TEXT = "text"
    JSON = "json"
    MARKDOWN = "markdown"
    HTML = "html"

    @property
    def module(self) -> str:
        return f"auditor.reconcile.render.{self.value}_render"


def render(fmt: ReconFormat, rec: Reconciliation) -> str:
    return importlib.import_module(fmt.module).render(rec)


def parse_output_spec(spec: str) -> tuple[ReconFormat, str | None]:
    name, _, path = spec.partition(":")
    aliases = {"md": "markdown"}
    try:
        fmt = ReconFormat(aliases.get(name.strip().lower(), name.strip().lower()))
    except ValueError:
        raise UsageError(
            f"--format {spec!r}: unknown format {name!r} (expected one of: {', '.join(f.value for f in ReconFormat)})"
        ) from None
    return fmt, (path or None)
