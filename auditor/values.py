"""Attribution values: each key's sources compiled once into readers over a span.

A source reads a span attribute, a resource attribute, a captured header, a path inside a
JSON or Python-repr blob, or a ``prefix:value`` tag list. Empty strings and empty lists count
as absent: an empty tenant tag attributes nothing.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any, Callable, Mapping

from auditor.pyrepr import MAX_REPR_CHARS, parse_literal, parse_pyrepr
from auditor.schema import HEADER_PREFIX, KeySpec, Selector, Source

Reader = Callable[[Mapping, Mapping], Any]


def _reader(s: Source) -> Reader:
    """One source as a function (span attributes, resource attributes) -> raw value."""
    name, path = s.name, s.path
    if s.kind == "attribute":
        return lambda attrs, resource: _unquote(attrs.get(name))
    if s.kind == "resource":
        return lambda attrs, resource: _unquote(resource.get(name))
    if s.kind == "header":
        header = HEADER_PREFIX + name
        return lambda attrs, resource: _header(attrs.get(header))
    if s.kind == "header_json":
        header = HEADER_PREFIX + name
        return lambda attrs, resource: _dig(_parse_json(_header(attrs.get(header))), path)
    if s.kind == "json":
        return lambda attrs, resource: _dig(_parse_json(attrs.get(name)), path)
    if s.kind == "pyrepr":
        return lambda attrs, resource: _dig(parse_pyrepr(attrs.get(name)), path)
    prefix = s.prefix
    return lambda attrs, resource: _tag(attrs.get(name), prefix)


def make_resolver(key: KeySpec) -> Reader:
    """A function (span attributes, resource attributes) -> the key's value or None: its
    sources in order, the first non-empty value wins."""
    readers = tuple(_reader(s) for s in key.sources)

    def resolve(attrs: Mapping, resource: Mapping) -> Any:
        for read in readers:
            v = read(attrs, resource)
            if v is not None and v != "" and v != ():
                if isinstance(v, tuple) and len(v) == 1:
                    v = v[0]
                return v
        return None

    return resolve


def span_attribute_names(key: KeySpec) -> frozenset[str] | None:
    """The span attribute names a key's sources read; ``None`` if a source kind is not known here."""
    names: set[str] = set()
    for s in key.sources:
        if s.kind == "resource":
            continue
        if s.kind in ("header", "header_json"):
            names.add(HEADER_PREFIX + s.name)
        elif s.kind in ("attribute", "json", "pyrepr", "tags"):
            names.add(s.name)
        else:
            return None
    return frozenset(names)


_NO_ATTRS: Mapping = {}


def make_values(keys: tuple[KeySpec, ...]) -> Callable[[Mapping, Mapping], tuple]:
    """A function (span attributes, resource attributes) -> every key's value, in key order.

    Equal to calling each key's resolver, but a key none of whose attribute names the span
    carries takes its value from the span's resource alone, which is resolved once per
    resource object (all spans of an OTLP ResourceSpans share it). Most spans carry no key
    attribute at all, so they cost one set test.
    """
    resolvers = tuple(make_resolver(k) for k in keys)
    names = tuple(span_attribute_names(k) for k in keys)
    if any(n is None for n in names):
        return lambda attrs, resource: tuple(r(attrs, resource) for r in resolvers)
    union = frozenset().union(*names)
    # A key whose first source is a plain attribute holding a plain string (the usual case)
    # has that string as its value, exactly as its resolver would answer (``_unquote`` leaves
    # it alone): read inline, the resolver runs otherwise.
    firsts = tuple(k.sources[0].name if k.sources and k.sources[0].kind == "attribute" else None for k in keys)
    triples = tuple(zip(resolvers, names, firsts))
    cache: dict[int, tuple[Mapping, tuple]] = {}

    def from_resource(resource: Mapping) -> tuple:
        hit = cache.get(id(resource))
        if hit is not None and hit[0] is resource:  # the entry holds the object: its id stays its own
            return hit[1]
        if len(cache) >= 4096:
            cache.clear()
        vals = tuple(r(_NO_ATTRS, resource) for r in resolvers)
        cache[id(resource)] = (resource, vals)
        return vals

    def values(attrs: Mapping, resource: Mapping) -> tuple:
        keys_view = attrs.keys()
        base = from_resource(resource)
        if keys_view.isdisjoint(union):
            return base
        out = []
        for (r, n, first), b in zip(triples, base):
            if first is not None:
                v = attrs.get(first)
                if v.__class__ is str and v and v[0] != '"':
                    out.append(v)
                    continue
            out.append(b if keys_view.isdisjoint(n) else r(attrs, resource))
        return tuple(out)

    return values


def _dig(obj: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if isinstance(obj, dict):
            obj = obj.get(part)
        else:
            return None
    if isinstance(obj, (dict, list)):
        return None
    return obj


def _parse_json(v: Any) -> Any:
    if isinstance(v, dict):
        return v
    if not isinstance(v, str) or not v or v[0] != "{":
        return None
    return _cached_json(v)


@lru_cache(maxsize=4096)
def _cached_json(v: str) -> Any:
    try:
        return json.loads(v)
    except (ValueError, RecursionError):
        return None


def _unquote(v: Any) -> Any:
    """A JSON-encoded string (Langfuse's propagate_attributes writes metadata values as JSON,
    so tenant_id arrives as '"acme"') read as the string it encodes; anything else unchanged."""
    if isinstance(v, str) and len(v) >= 2 and v[0] == '"' and v[-1] == '"':
        try:
            out = json.loads(v)
        except ValueError:
            return v
        return out if isinstance(out, str) else v
    return v


def _header(v: Any) -> Any:
    """A captured header: OTel writes a string array; Jaeger and Zipkin carry it as JSON text."""
    if isinstance(v, str) and v.startswith("["):
        parsed = _cached_json(v)
        if isinstance(parsed, list):
            v = tuple(parsed)
    if isinstance(v, tuple):
        return v[0] if v else None
    return v


def _tag(v: Any, prefix: str) -> Any:
    """The value after ``prefix`` in a tag list: an array, JSON text (Jaeger, Zipkin) or a
    Python-repr list (``str(list)``, as LiteLLM writes ``metadata.tags``)."""
    if isinstance(v, str):
        if v.startswith("["):
            parsed = _cached_json(v)
            if parsed is None and len(v) <= MAX_REPR_CHARS:
                parsed = parse_literal(v)
            v = tuple(parsed) if isinstance(parsed, list) else (v,)
        else:
            v = (v,)
    if not isinstance(v, tuple):
        return None
    for t in v:
        if isinstance(t, str) and t.startswith(prefix):
            return t[len(prefix):] or None
    return None


def make_selector(selectors: tuple[Selector, ...]) -> Callable[[Any], bool]:
    """A predicate on a Span: is it an LLM call (cost-bearing)?"""

    def is_llm(span) -> bool:
        attrs = span.attributes
        for sel in selectors:
            v = attrs.get(sel.attribute)
            if v is None:
                continue
            if sel.values is not None and v not in sel.values:
                continue
            if sel.unless is not None and sel.unless in attrs:
                continue
            if sel.scope is not None and span.scope != sel.scope:
                continue
            return True
        return False

    return is_llm
