"""JSON Schema validators that never leave the process: no remote or file ``$ref`` retrieval.

jsonschema, given no registry, still fetches any ``http(s)://`` ``$ref`` it meets (a
deprecated fallback): a schema uploaded to the web page or passed to ``check -s`` could make
the server request URLs of the uploader's choosing (SSRF), and a ``$ref`` that fails to
resolve only surfaced later, as an exception inside every audited trace. Here:

- the registry holds only what ships with the tool (the JSON Schema meta-schemas from
  ``jsonschema-specifications`` and our ``schemas/*.schema.json``); its retrieve function
  refuses every other URI, whatever its scheme;
- every ``$ref`` / ``$dynamicRef`` of a schema is resolved once, when the schema is loaded,
  and one that does not resolve is a ``SchemaError`` naming the schema and the JSON path of
  the reference.

Every place that compiles a JSON Schema goes through ``validator()``.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import jsonschema
import referencing
import referencing.exceptions
from jsonschema_specifications import REGISTRY as SPECIFICATIONS
from referencing.jsonschema import DRAFT202012

from auditor.errors import SchemaError
from auditor.resources import schemas_dir

# Keywords whose values are data, not subschemas: a "$ref" key inside them is not a reference.
_DATA_KEYWORDS = frozenset({"enum", "const", "default", "examples"})


def _refuse(uri: str):
    """The registry's retrieve function: any URI it does not already hold stays unresolved."""
    raise referencing.exceptions.NoSuchResource(ref=uri)


@lru_cache(maxsize=1)
def registry() -> referencing.Registry:
    """The bundled schemas and the meta-schemas; nothing else, and nothing fetched."""
    ours = []
    for p in sorted(schemas_dir().glob("*.schema.json")):
        doc = json.loads(p.read_text(encoding="utf-8"))
        if isinstance(doc, dict) and isinstance(doc.get("$id"), str):
            ours.append((doc["$id"], DRAFT202012.create_resource(doc)))
    return referencing.Registry(retrieve=_refuse).combine(SPECIFICATIONS).with_resources(ours).crawl()


def _json_path(parts: list) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)


def check_refs(schema: Any, where: str, path: str = "$") -> None:
    """Resolve every reference in ``schema`` against the local registry; SchemaError if one fails."""
    if not isinstance(schema, dict):
        return
    resource = DRAFT202012.create_resource(schema)
    resolver = registry().resolver_with_root(resource)
    _walk(schema, resolver, [], where, path, root=True)


def _walk(node: Any, resolver, parts: list, where: str, path: str, root: bool = False) -> None:
    # Iterative would only matter past Python's recursion limit; compile_schema runs on
    # documents parsed by yaml/json, whose depth RecursionError already guards at the CLI.
    if isinstance(node, dict):
        if not root and isinstance(node.get("$id"), str):
            resolver = resolver.in_subresource(DRAFT202012.create_resource(node))
        for kw in ("$ref", "$dynamicRef"):
            ref = node.get(kw)
            if isinstance(ref, str):
                try:
                    resolver.lookup(ref)
                except referencing.exceptions.Unresolvable:
                    at = path + _json_path(parts + [kw])
                    raise SchemaError(
                        f"{where}: {at}: cannot resolve {ref!r}: only references inside the schema "
                        "(e.g. '#/$defs/name') or to the bundled schemas are allowed; nothing is fetched from files or the network"
                    ) from None
        for k, v in node.items():
            if k not in _DATA_KEYWORDS:
                _walk(v, resolver, parts + [k], where, path)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _walk(v, resolver, parts + [i], where, path)


def validator(schema: Any, where: str = "value schema", path: str = "$") -> jsonschema.Draft202012Validator:
    """A Draft 2020-12 validator bound to the local registry, after checking the schema itself
    and every reference in it (SchemaError, one line, naming ``where`` and the JSON path)."""
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as e:
        raise SchemaError(f"{where}: {path}: not a valid JSON Schema: {e.message}") from None
    check_refs(schema, where, path)
    return jsonschema.Draft202012Validator(schema, registry=registry())
