"""Token-type drift (RECON002): the traced split of tokens vs the provider's.

Over the groups where both sides have tokens and the traces have calls, per (provider,
model, api key, workspace, tier), summed over days: if the traces cover a share ``c`` of the provider's tokens overall, each token type
should be covered about as much. A type covered far less (under half of ``c``) or more
than the provider counted at all is an instrumentation that drops or mislabels it, e.g.
cache writes folded into plain input, or cache tokens counted twice.
"""

from __future__ import annotations

from collections import defaultdict


from auditor.reconcile.model import Tokens
from auditor.reconcile.result import Group, ReconFinding

TYPES = (
    ("uncached_input", "uncached input"),
    ("cache_read", "cache reads"),
    ("cache_write_any", "cache writes"),
    ("output", "output"),
)
MATERIAL = 0.01  # a type below 1% of the provider's tokens is not judged
LOW = 0.5  # covered under half as much as the tokens overall
OVER = 1.01  # more than the provider counted at all (1% slack)


def check(groups: list[Group] | tuple[Group, ...]) -> list[ReconFinding]:
    from auditor.rules import rule
    from auditor.rules.reconcile import DRIFT

    sev = rule(DRIFT).severity
    sums: dict[tuple, list[Tokens]] = defaultdict(lambda: [Tokens(), Tokens()])
    for g in groups:
        if g.provider_tokens is None or g.traced_tokens is None or not g.traced_calls:
            continue
        s = sums[(g.provider, g.model, g.api_key_id, g.workspace_id, g.tier)]
        s[0] = s[0] + g.provider_tokens
        s[1] = s[1] + g.traced_tokens
    out = []
    for (provider, model, key, ws, tier), (prov, trac) in sorted(sums.items(), key=lambda kv: tuple(x or "" for x in kv[0])):
        if not prov.total:
            continue
        cover = trac.total / prov.total
        odd = []
        for t, label in TYPES:
            p, tr = prov.get(t), trac.get(t)
            if p < MATERIAL * prov.total and tr <= p * OVER:
                continue
            r = tr / p if p else float("inf")
            if r < LOW * cover or r > OVER:
                odd.append((t, label, p, tr, r))
        if not odd:
            continue
        parts = [f"traced {label} {tr:,} vs the provider's {p:,}" + (f" ({r:.0%})" if p else "") for _, label, p, tr, r in odd]
        where = " / ".join(
            [provider, model or "(all models)"]
            + ([f"key {key}"] if key is not None else [])
            + ([f"workspace {ws}"] if ws is not None else [])
            + ([tier] if tier is not None else [])
        )
        message = (
            f"{where}: {'; '.join(parts)}, while the traces cover {cover:.0%} of its tokens "
            "overall: an instrumentation drops or mislabels these tokens, so its costs are wrong"
        )
        out.append(ReconFinding(
            DRIFT, sev, message, provider, ("model", model),
            details={
                "model": model, "api_key_id": key, "workspace_id": ws, "tier": tier,
                "coverage": round(cover, 4),
                "types": {t: {"provider": p, "traced": tr} for t, _, p, tr, _ in odd},
                "provider_tokens": prov.to_json(), "traced_tokens": trac.to_json(),
            },
        ))
    return out



