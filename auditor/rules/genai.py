"""GENAI001-004: gen_ai spans checked against the semantic conventions, kept as data.

The conventions move (and moved repository in 2026), so what is required, typed, renamed or
removed lives in ``schemas/genai-semconv.yaml``; this module only applies it. A span is
checked when it carries ``gen_ai.operation.name`` or is an LLM call by the schema. A
required attribute whose old name is present is reported once, as GENAI002 (rename), not
also as GENAI001. An old name next to its new one (pydantic-ai writes both ``gen_ai.system``
and ``gen_ai.provider.name``) is only redundant: GENAI002 as a note that says so, never
"write the new one".

The table names the conventions version its top-level sections describe (``source``) and may
carry further versions as changes on top of it (``versions``). A schema pins one with
``genai.semconv``: a version id or alias from the bundled table (``genai-0.1.0``, ``v0.1.0``),
a table file, or ``FILE#VERSION``; without it the table's base version applies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

from auditor import usage as usage_mod
from auditor.boundary import endpoint
from auditor.errors import SchemaError
from auditor.model import Finding, LlmCall, Severity, Span
from auditor.projection import Projection
from auditor.rawpayload import SOURCE as RAW_SOURCE
from auditor.resources import schemas_dir
from auditor.rules.context import ResultContext, TraceContext
from auditor.rules.registry import Check, Rule, Visit

DEFAULT_FILE = "genai-semconv.yaml"
OPERATION = "gen_ai.operation.name"


@dataclass(frozen=True, slots=True)
class Operation:
    required: tuple[str, ...]
    conditional: tuple[tuple[str, str], ...]  # (attribute, required when this one is present)


def _type_ok(kind: str, v: Any) -> bool:
    if kind == "string":
        return isinstance(v, str)
    if kind == "int":
        return isinstance(v, int) and not isinstance(v, bool)
    if kind == "double":
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    if kind == "boolean":
        return isinstance(v, bool)
    if kind == "string[]":
        return isinstance(v, tuple) and all(isinstance(x, str) for x in v)
    return True


def _type_name(v: Any) -> str:
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "double"
    if isinstance(v, str):
        return "string"
    if isinstance(v, tuple):
        return "array"
    return type(v).__name__


@dataclass(frozen=True, slots=True)
class GenAiRules:
    semconv: str
    operations: Mapping[str, Operation]
    types: Mapping[str, str]
    renamed: Mapping[str, tuple[str, str]]  # old -> (new, since)
    removed: Mapping[str, tuple[str, str]]  # name -> (since, note)
    renamed_values: Mapping[str, Mapping[str, str]]
    token_counts: tuple[str, ...]

    old_for: Mapping[str, str] = field(default_factory=dict)  # new name -> its old name (built once, not per span)
    # Names GENAI002 reports by their presence alone: a span carrying none of them (most do)
    # skips the renamed and removed tables instead of probing every entry.
    retired: frozenset[str] = field(default=frozenset(), init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "retired", frozenset(self.renamed) | frozenset(self.removed))

    @classmethod
    def load(cls, ref: str | None = None) -> "GenAiRules":
        """The bundled table, a table file, a version of the bundled table, or ``FILE#VERSION``."""
        file_ref, _, version = (ref or "").partition("#")
        path = Path(file_ref) if file_ref else schemas_dir() / DEFAULT_FILE
        if file_ref and not path.is_file() and (schemas_dir() / file_ref).is_file():
            path = schemas_dir() / file_ref
        elif file_ref and not version and not path.is_file() and not _looks_like_path(file_ref):
            path, version = schemas_dir() / DEFAULT_FILE, file_ref  # a version of the bundled table
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise SchemaError(f"{path}: cannot read the gen_ai semconv table: {e.strerror or e}") from None
        return _from_text(text, str(path), version or None)

    @classmethod
    def from_doc(cls, doc: Any, where: str, version: str | None = None) -> "GenAiRules":
        try:
            title = str(doc.get("semconv", ""))
            if version is not None:
                doc, title = _version_of(doc, version, where)
            ops = {
                name: Operation(
                    tuple(spec.get("required") or ()),
                    tuple((c["attribute"], c["when_present"]) for c in spec.get("conditionally_required") or ()),
                )
                for name, spec in (doc.get("operations") or {}).items()
            }
            return cls(
                semconv=title,
                operations=ops,
                types=dict(doc.get("types") or {}),
                renamed={k: (v["new"], str(v.get("since", ""))) for k, v in (doc.get("renamed") or {}).items()},
                removed={k: (str(v.get("since", "")), v.get("note", "")) for k, v in (doc.get("removed") or {}).items()},
                renamed_values={k: dict(v) for k, v in (doc.get("renamed_values") or {}).items()},
                token_counts=tuple(doc.get("token_counts") or ()),
                old_for={v["new"]: k for k, v in (doc.get("renamed") or {}).items()},
            )
        except (AttributeError, KeyError, TypeError) as e:
            raise SchemaError(f"{where}: not a gen_ai semconv table ({type(e).__name__}: {e})") from None

    def projection(self) -> Projection:
        names = {OPERATION}
        for op in self.operations.values():
            names.update(op.required)
            for a, b in op.conditional:
                names.update((a, b))
        names.update(self.types)
        names.update(self.renamed)
        names.update(self.removed)
        names.update(self.renamed_values)
        names.update(self.token_counts)
        return Projection.of(names)

    # ---------------------------------------------------------------- checks

    def check(
        self,
        span: Span,
        call: LlmCall | None,
        dialect: usage_mod.Dialect,
        severity: Callable[[str], Severity | None],
    ) -> list[Finding]:
        a = span.attributes
        op_name = a.get(OPERATION)
        if op_name is None and (call is None or call.usage.source == RAW_SOURCE):
            return []  # not a semconv span (a raw payload record is LiteLLM's own shape by design)
        out: list[Finding] = []
        where = endpoint(span)

        def add(code: str, msg: str) -> None:
            sev = severity(code)
            if sev is not None:
                out.append(Finding(code, sev, span.trace_id, span.span_id, msg, endpoint=where))

        old_for = self.old_for
        # GENAI001: required attributes (the operation is inferred as chat for LLM calls without it).
        op = self.operations.get(op_name if isinstance(op_name, str) else "chat")
        if op is not None:
            missing = [r for r in op.required if r not in a and old_for.get(r) not in a]
            missing += [x for x, y in op.conditional if y in a and x not in a]
            for r in missing:
                add("GENAI001", f"required attribute {r} is missing on {span.name!r} (operation {op_name or 'chat, inferred'}; semconv {self.semconv})")
        # GENAI002: renamed and removed names, renamed enum values.
        retired = not self.retired.isdisjoint(a)
        for old, (new, since) in self.renamed.items() if retired else ():
            if old not in a:
                continue
            if new not in a:
                add("GENAI002", f"{old} was renamed to {new} (semconv {since}); write {new}")
                continue
            # Both names: the new one is already there, the old one is only redundant.
            sev = severity("GENAI002")
            if sev is not None:
                differ = f" (they differ: {old}={a[old]!r:.60}, {new}={a[new]!r:.60})" if a[old] != a[new] else ""
                out.append(Finding(
                    "GENAI002", Severity.NOTE, span.trace_id, span.span_id,
                    f"{old} (renamed to {new} in semconv {since}) is written next to {new}{differ}; "
                    f"{new} is already set, so {old} is redundant: drop it once nothing reads it",
                    endpoint=where,
                ))
        for name, (since, note) in self.removed.items() if retired else ():
            if name in a:
                add("GENAI002", f"{name} was removed (semconv {since}) with no replacement" + (f": {note}" if note else ""))
        for attr, values in self.renamed_values.items():
            v = a.get(attr)
            if isinstance(v, str) and v in values:
                add("GENAI002", f"{attr} value {v!r} was renamed to {values[v]!r}")
        # GENAI003: wrong types.
        for attr, kind in self.types.items():
            v = a.get(attr)
            if v is not None and not _type_ok(kind, v):
                add("GENAI003", f"{attr} should be {kind}, got {_type_name(v)} {v!r:.60}")
        return out


@lru_cache(maxsize=32)
def _from_text(text: str, where: str, version: str | None) -> GenAiRules:
    """A table's rules, once per text: each compiled schema (one per combination of dialects
    detected) loads the table. libyaml parses it when present; a bad table is parsed again by
    PyYAML's own loader, so the error line is the one it has always been."""
    try:
        doc = yaml.load(text, Loader=_LOADER)  # noqa: S506 - a safe loader
    except yaml.YAMLError:
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise SchemaError(f"{where}: invalid YAML: {str(e).splitlines()[0]}") from None
    return GenAiRules.from_doc(doc, where, version)


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_VERSION_SECTIONS = ("operations", "types", "renamed", "removed", "renamed_values")


def _looks_like_path(ref: str) -> bool:
    return "/" in ref or "\\" in ref or ref.endswith((".yaml", ".yml", ".json"))


def _version_of(doc: dict, version: str, where: str) -> tuple[dict, str]:
    """The table's sections as of ``version``: the base, or the base with that version's changes."""
    source = doc.get("source") or {}
    versions = doc.get("versions") or {}
    want = version.strip().lower()

    def names(vid: str, spec: dict) -> set[str]:
        return {vid.lower(), *(str(x).lower() for x in spec.get("aliases") or ())}

    if source and want in names(str(source.get("id", "")), source):
        return doc, str(doc.get("semconv", ""))
    for vid, spec in versions.items():
        if want in names(str(vid), spec):
            out = dict(doc)
            for section in _VERSION_SECTIONS:
                merged = dict(doc.get(section) or {})
                merged.update((spec.get("changes") or {}).get(section) or {})
                out[section] = merged
            extra = (spec.get("changes") or {}).get("token_counts") or ()
            out["token_counts"] = [*(doc.get("token_counts") or ()), *extra]
            return out, str(spec.get("title", vid))
    known = [str(source.get("id"))] if source.get("id") else []
    known += [str(v) for v in versions]
    raise SchemaError(f"{where}: no gen_ai semconv version {version!r} (known: {', '.join(known) or 'none'})")


GENAI001 = Rule(
    "GENAI001", "genai-required-attribute-missing", "genai", Severity.WARNING,
    "required gen_ai attribute missing",
    "A gen_ai span lacks an attribute the GenAI semantic conventions require for its operation "
    "(schemas/genai-semconv.yaml), e.g. gen_ai.provider.name. Backends and pricing depend on it: set it in "
    "the instrumentation or upgrade it.",
    Visit.SPAN)
GENAI002 = Rule(
    "GENAI002", "genai-renamed-attribute", "genai", Severity.NOTE,
    "deprecated or renamed attribute name (says the new one)",
    "The span uses a gen_ai name (or enum value) the conventions renamed or removed; the message names the "
    "replacement. Moving the GenAI conventions to their own repository is not a deprecation and is not reported.",
    Visit.SPAN)
GENAI003 = Rule(
    "GENAI003", "genai-wrong-type", "genai", Severity.WARNING,
    "wrong type",
    "A gen_ai attribute has a type other than the conventions define (e.g. a token count sent as a string). "
    "Consumers that expect the defined type drop or misread it.",
    Visit.SPAN)
GENAI004 = Rule(
    "GENAI004", "genai-impossible-token-counts", "genai", Severity.ERROR,
    "impossible token counts",
    "Token counts that cannot all be true: a negative count, reasoning tokens above output tokens, or cache "
    "tokens above input tokens where the instrumentation is declared to count cache inside input. The price "
    "of such a call is not trustworthy: fix the instrumentation or its dialect declaration.",
    Visit.CALL)
GENAI005 = Rule(
    "GENAI005", "llm-calls-unread", "genai", Severity.ERROR,
    "spans look like LLM calls, but the schema reads none as one",
    "The input has spans with token counts or an LLM span kind, yet the schema's llm_calls selects none of "
    "them: their spend is invisible, so no cost, share or gate can see it. Drop --schema (dialects are "
    "detected per trace), add the preset of their dialect (extends: [preset:NAME]) or an llm_calls selector.",
    Visit.RESULT)
RULES = (GENAI001, GENAI002, GENAI003, GENAI004, GENAI005)
_BY_CODE = {r.code: r for r in RULES}


def check_span(ctx: TraceContext, span: Span, call: LlmCall | None) -> list[Finding]:
    """Every span against the conventions (tools and agents too, not only LLM calls)."""
    rules = ctx.compiled.genai
    if rules is None or (call is None and span.attributes.get(OPERATION) is None):
        return []  # what ``GenAiRules.check`` answers first, before a severity function is made
    on = ctx.enabled
    return rules.check(span, call, ctx.compiled.dialect, lambda code: _BY_CODE[code].severity if on(code) else None)


def impossible_counts(ctx: TraceContext, call: LlmCall, span: Span) -> list[Finding]:
    """GENAI004 on every LLM call, whatever the schema's genai setting: counts no call can
    have leave it unpriced, and the price of a call whose counts contradict each other is
    not trustworthy."""
    if not ctx.enabled("GENAI004"):
        return []
    where = endpoint(span)
    msgs = _contradictions(span, ctx.compiled.dialect)
    if call.usage.problem:
        msgs.insert(0, f"{call.usage.problem}: the call is counted as unpriced; fix the instrumentation that wrote it")
    return [GENAI004.finding(span.trace_id, span.span_id, m, endpoint=where) for m in msgs]


def _contradictions(span: Span, dialect) -> list[str]:
    raw = usage_mod.read_raw(span.attributes, dialect)
    msgs = []
    if raw.reasoning is not None and raw.output is not None and raw.reasoning > raw.output >= 0:
        msgs.append(f"reasoning tokens ({raw.reasoning}) exceed output tokens ({raw.output}); reasoning is part of output")
    declared = dialect.convention_for(span.scope)
    cache = max(raw.cache_read or 0, 0) + max(raw.cache_write or 0, 0) + max(raw.cache_write_5m or 0, 0) + max(raw.cache_write_1h or 0, 0)
    if declared is not None and declared[1] == usage_mod.INCLUDING and raw.input is not None and cache > raw.input >= 0:
        msgs.append(
            f"cache tokens ({cache}) exceed input tokens ({raw.input}) although the dialect declares scope "
            f"{declared[0]!r} as including cache tokens; priced as excluding: check the instrumentation or the dialect"
        )
    return msgs


def unread_calls(ctx: ResultContext) -> list[Finding]:
    """GENAI005: a result without one LLM call although spans look like calls."""
    if ctx.calls or not ctx.llm_like_unread or ctx.llm_like_example is None:
        return []
    tid, sid = ctx.llm_like_example
    spoken = ", ".join(f"preset:{name}" for name, _ in ctx.dialects)
    hint = f" Their spans speak {spoken}." if spoken else ""
    return [GENAI005.finding(
        tid, sid,
        f"{ctx.llm_like_unread} span(s) look like LLM calls (token counts or an LLM span kind) but the schema "
        f"selects none as an LLM call: their spend is invisible.{hint} Drop --schema to detect dialects per "
        "trace, or add the preset (extends) or an llm_calls selector.")]


CHECKS = (
    Check(Visit.SPAN, ("GENAI001", "GENAI002", "GENAI003"), check_span),
    Check(Visit.CALL, ("GENAI004",), impossible_counts),
    Check(Visit.RESULT, ("GENAI005",), unread_calls),
)
