"""TOOL001-002: the tool's own failure on one trace, reported as a finding, never a crash."""

from __future__ import annotations

from auditor.model import Severity
from auditor.rules.registry import Rule, Visit

TOOL001 = Rule(
    "TOOL001", "rule-crashed", "tool", Severity.WARNING,
    "a rule crashed on this trace",
    "An internal error while auditing this trace; the rest of the run is unaffected. Please report it.",
    Visit.TOOL)

TOOL002 = Rule(
    "TOOL002", "report-failed", "tool", Severity.ERROR,
    "reporting a trace failed; it is left out of the figures",
    "The trace was audited, but building the report from it failed, so its calls and findings are left out "
    "of every figure and the gate fails. The rest of the report is complete. Please report it.",
    Visit.TOOL)

RULES = (TOOL001, TOOL002)
CHECKS = ()
