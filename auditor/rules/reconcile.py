"""RECON001-003: decided by ``auditor reconcile`` (traces against a provider's usage export)."""

from __future__ import annotations

from auditor.model import Severity
from auditor.rules.registry import Rule, Visit

UNGATED, DRIFT, OVERTRACED = "RECON001", "RECON002", "RECON003"  # named once: reconcile builds them

RULES = (
    Rule("RECON001", "ungated-source", "reconcile", Severity.WARNING,
         "ungated source: an api key, workspace or model with invoiced spend and no traced call",
         "The provider's usage export shows spend under this api key, workspace (project) or model, and not one "
         "traced call maps to it: a developer's direct key, a CLI tool pointed straight at the provider, or a "
         "service that bypasses the gateway. Route it through the gateway or instrument it (auditor reconcile).",
         Visit.RECONCILE),
    Rule("RECON002", "token-type-drift", "reconcile", Severity.WARNING,
         "token-type drift: the traced split of token types differs from the provider's",
         "For the traced calls, one token type (e.g. cache writes) is covered far less, or more, than the tokens "
         "overall: an instrumentation drops or mislabels cache tokens, so its costs are wrong. Check which "
         "attributes it writes and the convention it follows (auditor reconcile).",
         Visit.RECONCILE),
    Rule("RECON003", "traced-exceeds-invoice", "reconcile", Severity.NOTE,
         "traced spend exceeds the invoice for a group",
         "The traces show more spend for this day / model / key than the provider's export: calls of another "
         "organisation, a wrong model or tier on the spans, or calls counted twice (auditor reconcile).",
         Visit.RECONCILE),
)
CHECKS = ()
