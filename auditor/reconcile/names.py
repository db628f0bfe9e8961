"""Matching names across the invoice and the traces: providers, models, service tiers.

A span says ``gpt-4o-mini`` where the usage report says ``gpt-4o-mini-2024-07-18`` and the
Console's CSV says ``Claude Haiku 4.5`` for ``claude-haiku-4-5-20251001``: models are
compared by a key: lower case, no provider prefix, no date snapshot, display names'
spaces and dots as hyphens.
"""

from __future__ import annotations

import re
from functools import lru_cache

from auditor.pricing import normalize_tier, provider_id

_DATE = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8})$")
_SPACES = re.compile(r"[\s_]+")
_DISPLAY = re.compile(r"[\s.]+")

# The providers whose invoices we read, by the genai-prices provider id.
INVOICED = ("anthropic", "openai")


@lru_cache(maxsize=4096)
def model_key(model: str | None) -> str | None:
    if not model:
        return None
    m = model.strip().lower()
    if "/" in m:
        m = m.rsplit("/", 1)[1]
    # A display name ("Claude Haiku 4.5") writes versions with dots where ids use hyphens.
    m = _DISPLAY.sub("-", m) if " " in m else _SPACES.sub("-", m)
    m = _DATE.sub("", m)
    return m.removesuffix("-latest") or None


@lru_cache(maxsize=4096)
def invoice_provider(provider: str | None, model: str | None) -> str | None:
    """Which invoice a traced call lands on: 'anthropic', 'openai', or None (another one)."""
    pid = provider_id(provider)
    if pid in INVOICED:
        return pid
    if pid is None:
        key = model_key(model) or ""
        if key.startswith("claude"):
            return "anthropic"
        if key.startswith(("gpt-", "o1", "o3", "o4", "chatgpt")):
            return "openai"
    return None


@lru_cache(maxsize=256)
def tier_name(tier: str | None) -> str:
    """``standard`` for the default tier under any of its names, else batch/flex/priority."""
    if tier is None:
        return "standard"
    t = tier.strip().lower()
    n = normalize_tier(t)
    if n is not None:
        return n
    if t.startswith("priority"):
        return "priority"
    if t.startswith("flex"):
        return "flex"
    return "standard"


def long_context(window: str | None) -> str | None:
    """``long`` for a context window past 200k tokens (``200k-1M``, ``> 200k``), else None."""
    if not window:
        return None
    w = window.replace(" ", "").lower()
    return "long" if w.startswith(("200k-", ">200k", "200k+")) else None
