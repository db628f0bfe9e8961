"""The traced side: priced LLM calls, with the api key and workspace they ran under.

Traces rarely carry the provider's own key id; gateways carry their own key identity
instead (LiteLLM: ``metadata.user_api_key_hash`` / ``metadata.user_api_key_alias``). The
reconcile command adds these attributes to the schema as optional keys (so decoders keep
them) and a key map (``--key-map``) translates gateway values into provider key ids.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from auditor.model import LlmCall
from auditor.reconcile.fields import day_of
from auditor.reconcile.model import Tokens, UsageExportError
from auditor.reconcile.names import INVOICED, invoice_provider, model_key, tier_name
from auditor.schema import KeySpec, Source

# Where a span may say which provider api key / workspace (or project) it ran under, in order.
API_KEY_ATTRIBUTES = (
    "gen_ai.request.api_key_id",
    "api_key_id",
    "app.api_key_id",
    "metadata.user_api_key_hash",
    "metadata.user_api_key_alias",
)
WORKSPACE_ATTRIBUTES = (
    "anthropic.workspace_id",
    "openai.project_id",
    "workspace_id",
    "project_id",
    "metadata.user_api_key_team_id",
)
PREFIX = "reconcile:"


def with_gateway_keys(schema):
    """The schema plus optional keys for the gateway attributes (kept in the projection)."""
    have = {k.name for k in schema.keys}
    extra = tuple(
        KeySpec(PREFIX + a, (Source("attribute", a), Source("resource", a)), required=False)
        for a in API_KEY_ATTRIBUTES + WORKSPACE_ATTRIBUTES
        if PREFIX + a not in have
    )
    return replace(schema, keys=schema.keys + extra)


@dataclass(frozen=True, slots=True)
class KeyMap:
    """Gateway key identity (hash, alias, team) -> provider api key id and/or workspace.

    The file maps ``value: api_key_id`` or ``value: {api_key_id, workspace_id}``, at the top
    level (any provider) or under a provider name (``anthropic:``, ``openai:``), since one
    gateway key can reach several providers, each with its own key.
    """

    api_keys: Mapping[tuple[str | None, str], str]
    workspaces: Mapping[tuple[str | None, str], str]

    def api_key(self, provider: str, value: str) -> str | None:
        return self.api_keys.get((provider, value)) or self.api_keys.get((None, value))

    def workspace(self, provider: str, value: str) -> str | None:
        return self.workspaces.get((provider, value)) or self.workspaces.get((None, value))

    @classmethod
    def load(cls, path: str | None) -> "KeyMap":
        if path is None:
            return cls({}, {})
        try:
            doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except OSError as e:
            raise UsageExportError(f"{path}: cannot read key map: {e.strerror or e}") from None
        except yaml.YAMLError as e:
            raise UsageExportError(f"{path}: invalid YAML/JSON: {str(e).splitlines()[0]}") from None
        if not isinstance(doc, dict):
            raise UsageExportError(f"{path}: $: expected a mapping of gateway key -> provider api key id")
        keys: dict = {}
        wss: dict = {}

        def entry(provider: str | None, k, v, where: str) -> None:
            if isinstance(v, str):
                keys[(provider, str(k))] = v
            elif isinstance(v, dict) and v and set(v) <= {"api_key_id", "workspace_id"}:
                if v.get("api_key_id"):
                    keys[(provider, str(k))] = str(v["api_key_id"])
                if v.get("workspace_id"):
                    wss[(provider, str(k))] = str(v["workspace_id"])
            else:
                raise UsageExportError(f"{path}: {where}: expected an api key id, or {{api_key_id, workspace_id}}")

        for k, v in doc.items():
            if k in INVOICED and isinstance(v, dict) and not set(v) <= {"api_key_id", "workspace_id"}:
                for k2, v2 in v.items():
                    entry(k, k2, v2, f"$.{k}.{k2}")
            else:
                entry(None, k, v, f"$.{k}")
        return cls(keys, wss)


@dataclass(frozen=True, slots=True)
class TracedCall:
    ref: tuple[str, str]
    start_ns: int
    provider: str
    model: str | None  # as the span says
    model_key: str | None
    tier: str
    tokens: Tokens
    cost_usd: Decimal | None
    api_key_values: tuple[str, ...]  # every gateway identity the span carries, in source order
    workspace_values: tuple[str, ...]
    tools: tuple[tuple[str, int], ...] | None = None  # server-side tool requests; None: not stated

    @property
    def day(self):
        return day_of(self.start_ns)


def tokens_of(call: LlmCall) -> Tokens:
    u = call.usage
    return Tokens(
        uncached_input=u.input,
        cache_read=u.cache_read,
        cache_write_5m=u.cache_write_5m,
        cache_write_1h=u.cache_write_1h,
        cache_write=u.cache_write,
        output=u.output,
    )


_API_KEY_NAMES = tuple(PREFIX + a for a in API_KEY_ATTRIBUTES)
_WORKSPACE_NAMES = tuple(PREFIX + a for a in WORKSPACE_ATTRIBUTES)


def _values(values: Mapping[str, Any], names: tuple[str, ...]) -> tuple[str, ...]:
    out = []
    for n in names:
        v = values.get(n)
        if v is None:
            continue
        if v is not None and not isinstance(v, (tuple, list, dict)) and str(v) and str(v) not in out:
            out.append(str(v))
    return tuple(out)


def traced_calls(calls: Iterable[LlmCall]) -> tuple[list[TracedCall], list[LlmCall]]:
    """Calls that land on an invoice we read, and the others (another provider, or unknown)."""
    mine, others = [], []
    for c in calls:
        provider = invoice_provider(c.provider, c.model)
        if provider is None:
            others.append(c)
            continue
        mine.append(
            TracedCall(
                ref=c.ref,
                start_ns=c.start_ns,
                provider=provider,
                model=c.model,
                model_key=model_key(c.model),
                tier=tier_name(c.tier),
                tokens=tokens_of(c),
                cost_usd=c.cost_usd,
                api_key_values=_values(c.values, _API_KEY_NAMES),
                workspace_values=_values(c.values, _WORKSPACE_NAMES),
                tools=c.server_tools,
            )
        )
    return mine, others
