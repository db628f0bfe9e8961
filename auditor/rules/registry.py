"""The rule registry: every code is one Rule; the engine walks what each Check visits.

A Rule is the stable, documented face of a code (name, family, default severity, summary,
help, what it visits). A Check is the code that produces findings: one walk may decide
several codes (the attribution walk decides ATTR001-005 in one pass), so a Check declares
the codes it emits and the registry proves that every walked code has exactly one Check and
no code is claimed twice. Codes are written out, never derived from names.

The registry is built once from the family modules' ``RULES`` and ``CHECKS`` tuples
(``auditor.rules.REGISTRY``): no mutable global, no registration side effects.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Callable, Iterable, Mapping

from auditor.model import Finding, Severity


class Visit(str, Enum):
    """What a rule looks at; decides where the engine calls its check."""

    TRACE = "trace"  # one assembled trace (its structure, its roots)
    KEY = "key"  # one required key's attribution path in one trace
    SPAN = "span"  # every span of a trace (with its LLM call, if it is one)
    CALL = "call"  # one LLM call record
    RESULT = "result"  # the whole result's unique calls (exact under merge: derived in finish)
    TOOL = "tool"  # raised by the engine itself (a crashing rule)
    RECONCILE = "reconcile"  # decided by ``auditor reconcile``, not by the trace audit
    LINK = "link"  # a consumer's span links, resolved in ``finish`` against the producers of the whole input


WALKED = (Visit.TRACE, Visit.KEY, Visit.SPAN, Visit.CALL, Visit.RESULT)
MAX_MESSAGE = 2_000  # characters of a finding's message
MAX_VALUE = 512  # characters of a value a finding carries (parent / child)


@dataclass(frozen=True, slots=True)
class Rule:
    code: str
    name: str
    family: str
    severity: Severity  # the default; the schema's policy may change it or turn it off
    summary: str
    help: str
    visits: Visit
    keyed: bool = False  # a key's own ``severity:`` applies (findings name the key)
    per_record: bool = False  # about one record of a call: dropped when that record is folded (TRACE005)

    def finding(self, trace_id: str, span_id: str, message: str, **kw) -> Finding:
        """A finding at the default severity; the policy sets the effective one in ``finish``.

        Trace data is hostile: a span name or key value of megabytes would be copied into every
        report, so messages and the values a finding carries are clipped here, for every code."""
        if len(message) > MAX_MESSAGE:
            message = message[:MAX_MESSAGE] + "… (clipped)"
        for k in ("parent_value", "child_value"):
            v = kw.get(k)
            if isinstance(v, str) and len(v) > MAX_VALUE:
                kw[k] = v[:MAX_VALUE] + "…"
        return Finding(self.code, self.severity, trace_id, span_id, message, **kw)


@dataclass(frozen=True, slots=True)
class Check:
    visits: Visit
    codes: tuple[str, ...]
    fn: Callable


@dataclass(frozen=True, slots=True)
class Registry:
    rules: Mapping[str, Rule]
    checks: tuple[Check, ...]

    @classmethod
    def of(cls, rules: Iterable[Rule], checks: Iterable[Check]) -> "Registry":
        by_code: dict[str, Rule] = {}
        for r in rules:
            if r.code in by_code:
                raise ValueError(f"duplicate rule code {r.code}")
            by_code[r.code] = r
        checks = tuple(checks)
        owner: dict[str, Check] = {}
        for ch in checks:
            for code in ch.codes:
                r = by_code.get(code)
                if r is None:
                    raise ValueError(f"check {ch.fn.__qualname__} emits unregistered code {code}")
                if r.visits is not ch.visits:
                    raise ValueError(f"{code} visits {r.visits.value} but its check visits {ch.visits.value}")
                if code in owner:
                    raise ValueError(f"{code} is emitted by two checks")
                owner[code] = ch
        unowned = [c for c, r in by_code.items() if r.visits in WALKED and c not in owner]
        if unowned:
            raise ValueError(f"walked codes without a check: {', '.join(sorted(unowned))}")
        return cls(dict(sorted(by_code.items())), checks)

    def rule(self, code: str) -> Rule:
        return self.rules[code]

    def all(self) -> tuple[Rule, ...]:
        return tuple(self.rules.values())

    def checks_for(self, visit: Visit) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.visits is visit)

    def codes_visiting(self, visit: Visit) -> frozenset[str]:
        return frozenset(c for c, r in self.rules.items() if r.visits is visit)

    def per_record_codes(self) -> frozenset[str]:
        return frozenset(c for c, r in self.rules.items() if r.per_record)
