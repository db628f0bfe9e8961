"""Rule families, one module each, and the one registry built from them.

Each family module declares its ``RULES`` (code, family, default severity, help, what it
visits) and the ``CHECKS`` that emit them; ``REGISTRY`` proves no code is claimed twice and
every walked code has a check. The engine walks the registry; nothing lists codes by hand.
"""

from auditor.rules import agents, attribution, cost, genai, links, reconcile, structure, tool
from auditor.rules.registry import Registry, Rule, Visit

_FAMILIES = (attribution, links, structure, genai, cost, agents, tool, reconcile)

REGISTRY = Registry.of(
    (r for m in _FAMILIES for r in m.RULES),
    (c for m in _FAMILIES for c in m.CHECKS),
)


# The codes other layers aggregate on (boundaries are built from leaks; reports single out calls
# that never had a key): named here, once, so no door writes a code out by hand.
LEAK = attribution.ATTR001.code
NEVER_MINTED = attribution.ATTR002.code
HEADLESS = structure.TRACE004.code


def rule(code: str) -> Rule:
    return REGISTRY.rule(code)


def all_rules() -> tuple[Rule, ...]:
    return REGISTRY.all()


__all__ = ["HEADLESS", "LEAK", "NEVER_MINTED", "REGISTRY", "Registry", "Rule", "Visit", "all_rules", "rule"]
