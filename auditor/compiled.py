"""A schema turned into the callables the per-trace walk needs, with per-run caches.

Built once per schema (with dialect detection, once per combination of dialects) and
shared by every trace it reads.
"""

from __future__ import annotations

from typing import Any, Callable

import jsonschema

from auditor import calls as calls_mod
from auditor import jsonschema_local
from auditor import rawpayload
from auditor.pricing import Pricer
from auditor.mechanism import ATTRIBUTES as EVIDENCE_ATTRIBUTES
from auditor.projection import Projection
from auditor.rules import agents
from auditor.schema import Schema
from auditor.values import make_resolver, make_selector, make_values
from auditor.usage import Dialect



class Compiled:
    def __init__(self, schema: Schema, pricer: Pricer | None = None):
        self.schema = schema
        self.keys = schema.keys
        self.key_names = tuple(k.name for k in schema.keys)
        self.required_names = tuple(k.name for k in schema.keys if k.required)
        self.resolvers = tuple(make_resolver(k) for k in schema.keys)
        self.values_of = make_values(schema.keys)
        self.reported_cost_tolerance = agents.tolerance_pct(schema.dialects)
        self.pricer = pricer if pricer is not None else Pricer(schema)
        self.dialect = Dialect.from_mapping(schema.dialects)
        self.is_llm = _with_raw_payloads(make_selector(schema.llm_calls), self.dialect)
        self._validators = {k.name: _value_checker(k.value_schema) for k in schema.keys}
        self.genai = _genai_rules(schema)

    @property
    def projection(self) -> Projection:
        p = self.schema.projection() | Projection.of(calls_mod.attributes(self.dialect) + EVIDENCE_ATTRIBUTES)
        if self.genai is not None:
            p = p | self.genai.projection()
        return p

    def validator(self, key: str) -> Callable[[Any], str | None]:
        return self._validators[key]


def _with_raw_payloads(selected: Callable[[Any], bool], dialect: Dialect) -> Callable[[Any], bool]:
    """The selector, plus spans that record a call only as a raw payload with a usage object."""
    if not dialect.raw_spans:
        return selected
    return lambda span: selected(span) or rawpayload.read(span, dialect) is not None


def _value_checker(value_schema) -> Callable[[Any], str | None]:
    if value_schema is None:
        return lambda v: None
    validator = jsonschema_local.validator(value_schema)  # local registry: no $ref is ever fetched
    cache: dict[tuple[type, Any], str | None] = {}

    def check(v: Any) -> str | None:
        ck = (type(v), v if not isinstance(v, (dict, list)) else repr(v))
        if ck in cache:
            return cache[ck]
        err = jsonschema.exceptions.best_match(validator.iter_errors(v))
        msg = None if err is None else err.message[:160]
        if len(cache) < 100_000:
            cache[ck] = msg
        return msg

    return check


def _genai_rules(schema: Schema):
    if not schema.genai_enabled:
        return None
    from auditor.rules import genai

    return genai.GenAiRules.load(schema.genai_semconv)
