"""What a provider's usage or cost export says, as rows every format reader produces.

Provider exports are bucketed (UTC minutes, hours or days) and grouped by whatever the
user asked for; a dimension the export was not grouped by is ``None`` (a wildcard), a
dimension it was grouped by but left empty (Anthropic's default workspace) is the
explicit value ``DEFAULT``. Readers keep the provider's own model string; matching across
spellings is ``auditor.reconcile.names``' job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from auditor.errors import InputError

DEFAULT = "(default)"  # grouped by the dimension, but the provider left it empty

# Server-side tools billed per request that both sides can count (provider field -> our name).
WEB_SEARCH = "web_search"

TOKEN_TYPES = ("uncached_input", "cache_read", "cache_write_5m", "cache_write_1h", "cache_write", "output")


class UsageExportError(InputError):
    """A usage or cost export that cannot be read (one line: file, field, what was expected)."""


@dataclass(frozen=True, slots=True)
class Tokens:
    """Token counts by billing type; ``uncached_input`` excludes every cache token."""

    uncached_input: int = 0
    cache_read: int = 0
    cache_write_5m: int = 0
    cache_write_1h: int = 0
    cache_write: int = 0  # cache writes whose duration the source does not say
    output: int = 0

    def __add__(self, other: "Tokens") -> "Tokens":
        return Tokens(
            self.uncached_input + other.uncached_input,
            self.cache_read + other.cache_read,
            self.cache_write_5m + other.cache_write_5m,
            self.cache_write_1h + other.cache_write_1h,
            self.cache_write + other.cache_write,
            self.output + other.output,
        )

    @property
    def cache_write_total(self) -> int:
        return self.cache_write + self.cache_write_5m + self.cache_write_1h

    @property
    def total_input(self) -> int:
        return self.uncached_input + self.cache_read + self.cache_write_total

    @property
    def total(self) -> int:
        return self.total_input + self.output

    def get(self, token_type: str) -> int:
        if token_type == "cache_write_any":
            return self.cache_write_total
        return getattr(self, token_type)

    def to_json(self) -> dict:
        return {t: getattr(self, t) for t in TOKEN_TYPES}


@dataclass(frozen=True, slots=True)
class Dims:
    """Where a row sits: which provider, model, key, workspace (or project) and tier."""

    provider: str
    model: str | None = None  # the provider's own spelling
    api_key_id: str | None = None
    workspace_id: str | None = None  # Anthropic workspace or OpenAI project
    tier: str | None = None  # "standard", "batch", "priority", "flex"; None: not grouped
    # "long" for Anthropic's 200k-1M context window (priced at the long-context rates), else None.
    # Never compared with traces (each traced call is priced with its own tier); it only prices.
    context: str | None = None


@dataclass(frozen=True, slots=True)
class UsageRow:
    """Tokens the provider counted in one bucket for one combination of dimensions."""

    day: date
    dims: Dims
    tokens: Tokens
    requests: int | None = None
    # Server-side tool requests the provider counted (tool -> count), when the export has them
    # (Anthropic: server_tool_use.web_search_requests, the console's web_search_count).
    tools: tuple[tuple[str, int], ...] | None = None


@dataclass(frozen=True, slots=True)
class CostRow:
    """Money the provider charged in one bucket; ``token_type`` when the line names one."""

    day: date
    dims: Dims
    usd: Decimal
    token_type: str | None = None  # one of TOKEN_TYPES, or None for a whole line
    cost_type: str = "tokens"  # tokens, web_search, code_execution, ...


@dataclass(frozen=True, slots=True)
class UsageExport:
    """One file read: its rows and the time it covers (bucket intervals in ns, UTC)."""

    path: str
    kind: str  # e.g. "anthropic-usage-report"
    provider: str
    usage: tuple[UsageRow, ...] = ()
    costs: tuple[CostRow, ...] = ()
    intervals: tuple[tuple[int, int], ...] = ()
    grouped_by: frozenset[str] = field(default_factory=frozenset)  # dims the export was grouped by
    duplicate_pages: int = 0
    # (page digest, first row, end row) into usage or costs: a page repeated across files counts once
    pages: tuple[tuple[str, int, int], ...] = ()
