"""Reconcile traced LLM spend with the providers' usage and cost exports: the spend no
gateway sees (``auditor reconcile``).

``load_usage(path)`` reads an export (format sniffed); ``reconcile(exports, calls)``
compares it with the priced calls of an audit; ``auditor.reconcile.render`` renders it.
"""

from auditor.reconcile.compare import reconcile
from auditor.reconcile.load import load_usage, parse_usage
from auditor.reconcile.model import CostRow, Dims, Tokens, UsageExport, UsageExportError, UsageRow
from auditor.reconcile.result import Group, Reconciliation, ReconFinding, Summary
from auditor.reconcile.traced import KeyMap, with_gateway_keys

__all__ = [
    "reconcile", "load_usage", "parse_usage", "CostRow", "Dims", "Tokens", "UsageExport", "UsageExportError",
    "UsageRow", "Group", "Reconciliation", "ReconFinding", "Summary", "KeyMap", "with_gateway_keys",
]
