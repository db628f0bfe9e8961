"""The attribution schema: which keys LLM calls must carry and where to read them.

A schema file is YAML (or JSON), validated against ``schemas/attribution-schema.schema.json``
with errors that name the path and line in the user's file. ``extends`` composes schemas:
``default``, ``preset:NAME`` (``schemas/presets/NAME.yaml``) or a relative path.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import jsonschema
import yaml

from auditor import jsonschema_local
from auditor.errors import SchemaError
from auditor.model import Policy, Severity
from auditor.projection import Projection
from auditor.resources import schemas_dir

HEADER_PREFIX = "http.request.header."


@dataclass(frozen=True, slots=True)
class Source:
    kind: str  # attribute | resource | header | header_json | json | pyrepr | tags
    name: str  # the attribute (or resource attribute) it reads
    path: tuple[str, ...] = ()  # inside a JSON / Python-repr blob
    prefix: str = ""  # for tags

    def describe(self) -> str:
        if self.kind in ("json", "pyrepr", "header_json"):
            return f"{self.kind}:{self.name}#{'.'.join(self.path)}"
        if self.kind == "tags":
            return f"tags:{self.name}[{self.prefix}*]"
        return f"{self.kind}:{self.name}"


@dataclass(frozen=True, slots=True)
class Selector:
    attribute: str
    values: frozenset | None = None
    unless: str | None = None
    scope: str | None = None


@dataclass(frozen=True, slots=True)
class KeySpec:
    name: str
    sources: tuple[Source, ...]
    required: bool = True
    value_schema: Any = None
    may_change: bool = False
    severity: Severity = Severity.ERROR
    description: str = ""


@dataclass(frozen=True, slots=True)
class Schema:
    name: str
    keys: tuple[KeySpec, ...]
    llm_calls: tuple[Selector, ...]
    scope: str = "path"
    severity: Mapping[str, str] = field(default_factory=dict)
    fail_on: str | None = None
    max_unattributed_pct: Mapping[str, float] = field(default_factory=dict)
    genai_enabled: bool = True
    genai_semconv: str | None = None
    prices: tuple[Mapping[str, Any], ...] = ()
    dialects: Mapping[str, Any] = field(default_factory=dict)
    origin: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict)

    @property
    def required_keys(self) -> tuple[KeySpec, ...]:
        return tuple(k for k in self.keys if k.required)

    def policy(self) -> Policy:
        """Severities and gate as the audit applies them (``auditor.rollup.finish``)."""
        return Policy(
            severity=dict(sorted(self.severity.items())),
            key_severity={k.name: k.severity.value for k in self.keys},
            fail_on=self.fail_on or "error",
            max_unattributed_pct=dict(sorted(self.max_unattributed_pct.items())),
        )

    def key(self, name: str) -> KeySpec:
        for k in self.keys:
            if k.name == name:
                return k
        raise KeyError(name)

    def with_dimensions(self, names) -> "Schema":
        """Add non-required keys (cost views by any attribute); existing keys are kept."""
        have = {k.name for k in self.keys}
        extra = tuple(
            KeySpec(n, (Source("attribute", n), Source("resource", n)), required=False) for n in names if n not in have
        )
        return _replace(self, keys=self.keys + extra)

    def projection(self) -> Projection:
        names: set[str] = set()
        for k in self.keys:
            for s in k.sources:
                names.add(HEADER_PREFIX + s.name if s.kind in ("header", "header_json") else s.name)
        for sel in self.llm_calls:
            names.add(sel.attribute)
            if sel.unless:
                names.add(sel.unless)
        names.update(dialect_attribute_names(self.dialects))
        return Projection.of(names)


def dialect_attribute_names(dialects: Mapping[str, Any]) -> set[str]:
    """Every attribute name a ``dialects:`` block mentions (tokens, model, provider, cost)."""
    names: set[str] = set()
    for field_name in ("model", "provider", "reported_cost", "usage_object"):
        names.update(n for n in dialects.get(field_name) or () if isinstance(n, str))
    for group in (dialects.get("tokens") or {}).values():
        names.update(n for n in group or () if isinstance(n, str))
    return names


def _replace(schema: Schema, **changes) -> Schema:
    from dataclasses import replace

    return replace(schema, **changes)


# ---------------------------------------------------------------- loading


@lru_cache(maxsize=1)
def _meta_validator() -> jsonschema.protocols.Validator:
    meta = json.loads((schemas_dir() / "attribution-schema.schema.json").read_text())
    cls = jsonschema.validators.validator_for(meta)
    cls.check_schema(meta)
    return cls(meta)


def resolve_ref(ref: str, base: Path | None = None) -> Path:
    if ref == "default":
        return schemas_dir() / "default.yaml"
    if ref.startswith("preset:"):
        name = ref.split(":", 1)[1]
        p = schemas_dir() / "presets" / f"{name}.yaml"
        if not p.is_file():
            avail = sorted(x.stem for x in (schemas_dir() / "presets").glob("*.yaml")) if (schemas_dir() / "presets").is_dir() else []
            raise SchemaError(f"{ref}: no such preset (available: {', '.join(avail) or 'none'})")
        return p
    p = Path(ref)
    if base is not None and not p.is_absolute():
        p = base / p
    return p


def load_schema(ref: str | None = None) -> Schema:
    """Load, compose (extends) and validate a schema; ``None`` means the default."""
    path = resolve_ref(ref or "default")
    doc = _load_doc(path, ref or "default", ())
    return compile_schema(doc, origin=ref or "default")


def load_schema_text(text: str, where: str) -> Schema:
    """A schema given as text (an upload on the web page); relative extends are not allowed."""
    doc = _parse(text, where)
    doc = _compose(doc, where, None, ())
    return compile_schema(doc, origin=where)


def compose_refs(refs: list[str]) -> Schema:
    """Several schemas applied in order (e.g. default then detected presets).

    Cached per process by the refs and their files' modification times: detection composes
    the same presets for every input."""
    stamps = []
    for ref in refs:
        p = resolve_ref(ref)
        try:
            stamps.append(p.stat().st_mtime_ns)
        except OSError:
            stamps.append(None)
    return _compose_refs_cached(tuple(refs), tuple(stamps))


@lru_cache(maxsize=64)
def _compose_refs_cached(refs: tuple[str, ...], _stamps: tuple) -> Schema:
    doc: dict = {}
    for ref in refs:
        doc = merge_docs(doc, _load_doc(resolve_ref(ref), ref, ()))
    return compile_schema(doc, origin="+".join(refs))


def _load_doc(path: Path, display: str, chain: tuple[str, ...]) -> dict:
    key = str(path.resolve()) if path.exists() else str(path)
    if key in chain:
        raise SchemaError(f"{display}: extends cycle: {' -> '.join(chain + (key,))}")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise SchemaError(f"{display}: cannot read schema: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise SchemaError(f"{display}: offset {e.start}: expected UTF-8 text") from None
    doc = _parse(text, display)
    return _compose(doc, display, path.parent, chain + (key,))


def _parse(text: str, where: str) -> dict:
    """Parse and validate one schema document; parsed once per (text, name) in a process, since
    composing the presets reads the same files many times (each extends the default)."""
    return copy.deepcopy(_parse_cached(text, where))


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: same result, faster


@lru_cache(maxsize=256)
def _parse_cached(text: str, where: str) -> dict:
    try:
        doc = yaml.load(text, Loader=_LOADER)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        pos = f"line {mark.line + 1} column {mark.column + 1}: " if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise SchemaError(f"{where}: {pos}invalid YAML/JSON: {problem}") from None
    if doc is None:  # an empty file (or only comments) is not a schema that allows everything
        raise SchemaError(f"{where}: empty schema: expected a YAML/JSON mapping (version, name, keys, ...)")
    _off_unquoted(doc)
    validator = _meta_validator()
    if validator.is_valid(doc):
        return doc
    errors = sorted(validator.iter_errors(doc), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if errors:
        err = _best(errors)
        path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path)
        line = _line_of(yaml.compose(text, Loader=_LOADER), list(err.absolute_path))  # only on error
        at = f" (line {line})" if line else ""
        raise SchemaError(f"{where}: {path}{at}: {_explain(err)}")
    return doc


def _off_unquoted(doc) -> None:
    """``TRACE005: off`` is what people write; YAML 1.1 reads bare ``off`` as false."""
    sev = doc.get("severity") if isinstance(doc, dict) else None
    if isinstance(sev, dict):
        for code, v in sev.items():
            if v is False:
                sev[code] = "off"


def _best(errors):
    return jsonschema.exceptions.best_match(errors)


def _explain(err) -> str:
    if err.validator == "oneOf" and err.schema is not None and "oneOf" in err.schema:
        return (
            "expected a source with exactly one of: attribute, resource, header, header_json (+path), "
            "json (+path), pyrepr (+path), tags (+prefix); got " + json.dumps(err.instance)[:80]
        )
    if err.validator == "additionalProperties":
        return f"{err.message} (check the spelling)"
    return err.message


def _line_of(node, path: list) -> int | None:
    line = None
    for part in path:
        if node is None:
            break
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            nxt = None
            for k, v in node.value:
                if k.value == str(part):
                    nxt = v
                    line = k.start_mark.line + 1
                    break
            node = nxt
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            node = None
    if node is not None:
        line = node.start_mark.line + 1
    return line


def _compose(doc: dict, where: str, base: Path | None, chain: tuple[str, ...]) -> dict:
    parents = doc.get("extends") or []
    merged: dict = {}
    for ref in parents:
        if base is None and not (ref == "default" or ref.startswith("preset:")):
            raise SchemaError(f"{where}: $.extends: only 'default' and 'preset:NAME' can be extended here, got {ref!r}")
        merged = merge_docs(merged, _load_doc(resolve_ref(ref, base), ref, chain))
    own = {k: v for k, v in doc.items() if k != "extends"}
    return merge_docs(merged, own)


def merge_docs(base: dict, top: dict) -> dict:
    """Compose two schema documents: scalars from ``top``; keys, sources, selectors unioned."""
    out = dict(base)
    for k, v in top.items():
        if k == "keys":
            keys = {name: dict(spec) for name, spec in (base.get("keys") or {}).items()}
            for name, spec in (v or {}).items():
                cur = keys.get(name, {})
                new = {**cur, **spec}
                new["sources"] = _union(cur.get("sources") or [], spec.get("sources") or [])
                keys[name] = new
            out["keys"] = keys
        elif k in ("llm_calls", "prices"):
            out[k] = _union(base.get(k) or [], v or []) if k == "llm_calls" else list(v or []) + list(base.get(k) or [])
        elif k in ("severity", "gate", "genai", "dialects") and isinstance(v, dict):
            out[k] = _deep_merge(base.get(k) or {}, v)
        else:
            out[k] = v
    return out


def _union(a: list, b: list) -> list:
    out = list(a)
    for x in b:
        if x not in out:
            out.append(x)
    return out


def _deep_merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        elif isinstance(v, list) and isinstance(out.get(k), list):
            out[k] = _union(out[k], v)
        else:
            out[k] = v
    return out


def compile_schema(doc: dict, origin: str = "") -> Schema:
    try:
        _meta_validator().validate(doc)
    except jsonschema.ValidationError as e:
        raise SchemaError(f"{origin}: composed schema invalid at {'.'.join(map(str, e.absolute_path))}: {e.message}") from None
    keys = []
    for name, spec in (doc.get("keys") or {}).items():
        sources = tuple(_source(s) for s in spec.get("sources") or [{"attribute": name}])
        value_schema = spec.get("value")
        if value_schema is not None:  # checked, and every $ref resolved locally (never fetched)
            jsonschema_local.validator(value_schema, origin, f"$.keys.{name}.value")
        keys.append(
            KeySpec(
                name=name,
                sources=sources,
                required=spec.get("required", True),
                value_schema=value_schema,
                may_change=spec.get("may_change", False),
                severity=Severity(spec.get("severity", "error")),
                description=spec.get("description", ""),
            )
        )
    selectors = tuple(
        Selector(
            s["attribute"],
            frozenset(s["in"]) if "in" in s else None,
            s.get("unless"),
            s.get("scope"),
        )
        for s in doc.get("llm_calls") or []
    )
    gate = doc.get("gate") or {}
    genai = doc.get("genai") or {}
    return Schema(
        name=doc.get("name", origin),
        keys=tuple(keys),
        llm_calls=selectors,
        scope=doc.get("scope", "path"),
        severity=dict(doc.get("severity") or {}),
        fail_on=gate.get("fail_on"),
        max_unattributed_pct=dict(gate.get("max_unattributed_pct") or {}),
        genai_enabled=genai.get("enabled", True),
        genai_semconv=genai.get("semconv"),
        prices=tuple(doc.get("prices") or ()),
        dialects=dict(doc.get("dialects") or {}),
        origin=origin,
        raw=doc,
    )


def _source(s: dict) -> Source:
    if "attribute" in s:
        return Source("attribute", s["attribute"])
    if "resource" in s:
        return Source("resource", s["resource"])
    if "header" in s:
        return Source("header", s["header"].lower())
    if "header_json" in s:
        return Source("header_json", s["header_json"].lower(), tuple(s["path"].split(".")))
    if "json" in s:
        return Source("json", s["json"], tuple(s["path"].split(".")))
    if "pyrepr" in s:
        return Source("pyrepr", s["pyrepr"], tuple(s["path"].split(".")))
    return Source("tags", s["tags"], prefix=s["prefix"])
