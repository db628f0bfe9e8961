"""TOOL001: the engine's own failure on one trace, reported as a finding, never a crash."""

from __future__ import annotations

from auditor.model import Severity
from auditor.rules.registry import Rule, Visit

TOOL001 = Rule(
    "TOOL001", "rule-crashed", "tool", Severity.WARNING,
    "a rule crashed on this trace",
    "An internal error while auditing this trace; the rest of the run is unaffected. Please report it.",
    Visit.TOOL)

RULES = (TOOL001,)
CHECKS = ()
