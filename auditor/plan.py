"""Which schema reads each trace: one given schema, or the dialects each trace speaks.

Without ``--schema`` a trace is read by the default schema plus the preset of every
dialect its own spans speak (``auditor.dialects``). Deciding per trace, not per input,
is what makes every door agree: ``check`` on a file, its shards merged, the sidecar that
sees traces one by one and the upload page all read a trace the same way, whatever else
arrived with it. The policy (severities, gate) is the plan's, not the trace's, so one
result is judged one way.
"""

from __future__ import annotations

from typing import Callable

from auditor import dialects
from auditor.assemble import Trace
from auditor.compiled import Compiled
from auditor.model import Counts, Parts, Policy
from auditor.projection import Projection
from auditor.schema import Schema, compose_refs, load_schema

AUTO = "auto"  # the schema name of a detecting plan

Adapt = Callable[[Schema], Schema]


class Plan:
    """A fixed schema (``Plan.fixed``) or per-trace dialect detection (``Plan.detect``)."""

    def __init__(self, schema: Schema | None, adapt: Adapt | None = None):
        self._adapt = adapt or (lambda s: s)
        self.detecting = schema is None
        self._compiled: dict[tuple[str, ...], Compiled] = {}
        if schema is None:
            # Every preset at once: what detection may need decoded, and one key order and
            # policy for all traces (a trace's schema keeps the order of this composition).
            self._widest = self._adapt(compose_refs(dialects.all_refs()))
            self.name = AUTO
        else:
            self._widest = self._adapt(schema)
            self._compiled[()] = Compiled(self._widest)
            self.name = schema.origin or schema.name
        self.policy: Policy = self._widest.policy()
        self.key_order: tuple[str, ...] = tuple(k.name for k in self._widest.keys)

    @property
    def widest(self) -> Schema:
        """The schema that reads everything this plan may read (with detection: every preset)."""
        return self._widest

    @classmethod
    def fixed(cls, schema: Schema, adapt: Adapt | None = None) -> "Plan":
        return cls(schema, adapt)

    @classmethod
    def detect(cls, adapt: Adapt | None = None) -> "Plan":
        return cls(None, adapt)

    @classmethod
    def of(cls, schema_ref: str | Schema | None, adapt: Adapt | None = None) -> "Plan":
        """``None`` detects; a reference (file, 'default', 'preset:NAME') or Schema is fixed."""
        if schema_ref is None:
            return cls.detect(adapt)
        return cls.fixed(schema_ref if isinstance(schema_ref, Schema) else load_schema(schema_ref), adapt)

    @property
    def projection(self) -> Projection:
        """What to decode: every attribute any trace's schema reads, and what detection reads."""
        if not self.detecting:
            return self._compiled[()].projection | dialects.projection()
        p = self._compiled.get(("*",))
        if p is None:
            p = self._compiled[("*",)] = Compiled(self._widest)
        return p.projection | dialects.projection()

    def for_trace(self, trace: Trace) -> tuple[Compiled, tuple[str, ...]]:
        """The compiled schema that reads this trace, and the dialects it speaks."""
        found = tuple(dialects.detect(trace.spans.values()))
        if not self.detecting:
            return self._compiled[()], found
        c = self._compiled.get(found)
        if c is None:
            c = self._compiled[found] = Compiled(self._ordered(self._adapt(compose_refs(dialects.refs(found)))))
        return c, found

    def _ordered(self, schema: Schema) -> Schema:
        from dataclasses import replace

        rank = {k: i for i, k in enumerate(self.key_order)}
        keys = tuple(sorted(schema.keys, key=lambda k: rank.get(k.name, len(rank))))
        return replace(schema, keys=keys)

    def unread_dialects(self, found) -> list[str]:
        """Dialects spoken in the input whose preset a fixed schema does not read (its LLM-call
        selectors or key sources are missing): their calls or keys may be invisible."""
        if self.detecting:
            return []
        mine = self._widest
        sources = {k.name: set(k.sources) for k in mine.keys}
        out = []
        for name in found:
            preset = compose_refs([f"preset:{name}"])
            missing_sel = not set(preset.llm_calls) <= set(mine.llm_calls)
            missing_src = any(not set(k.sources) <= sources.get(k.name, set(k.sources)) for k in preset.keys)
            if missing_sel or missing_src:
                out.append(name)
        return out

    def describe(self, parts: Parts) -> str:
        """The schema as a run names it: a detecting plan says which presets its traces used."""
        if not self.detecting:
            return self.name
        return "+".join(dialects.refs(name for name, _ in parts.dialects))

    def empty_parts(self, rejected: int = 0) -> Parts:
        """The parts of no trace (carrying a rejected-span count): the unit of merging."""
        return Parts(Counts(0, 0, rejected), policy=self.policy, key_order=self.key_order)
