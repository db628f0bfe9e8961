"""Propose an attribution schema from traces: which keys are there, under which names, how often.

A candidate key is a value present on a trace's root span and constant within the trace,
found under any of the shapes the dialects use: a plain or flattened attribute
(``tenant.id``, ``metadata.tenant_id``, ``traceloop.association.properties.tenant_id``), a
field of a JSON or Python-repr blob (``metadata``, ``metadata.requester_metadata``), a ``k:v``
tag, or a captured header (``http.request.header.x-tenant-id``, JSON in x-portkey-metadata).
Names are folded to one canonical key (``tenant.id`` and ``x-tenant-id`` are ``tenant_id``).
The result renders as a valid schema file whose comments say what was seen.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable

from auditor import assemble, dialects
from auditor.model import Span
from auditor.pyrepr import parse_pyrepr
from auditor.schema import HEADER_PREFIX

MAX_VALUE_CHARS = 200

# Attribute namespaces that describe the request, the runtime or the model, never who pays.
_NOISE_PREFIXES = (
    "http.", "url.", "server.", "client.", "net.", "network.", "user_agent.", "gen_ai.", "llm.", "code.",
    "otel.", "thread.", "rpc.", "db.", "messaging.", "exception.", "error.", "telemetry.", "process.",
    "host.", "os.", "service.", "deployment.", "k8s.", "cloud.", "container.", "openinference.",
    "traceloop.span.", "traceloop.entity.", "langfuse.observation.", "langfuse.internal.", "input.",
    "output.", "fi.", "event.", "span.", "auditor.", "kong.request", "request.",
)
_NOISE_NAMES = frozenset({
    "langfuse.environment", "langfuse.trace.name", "metadata.usage_object",
    "metadata.requester_ip_address", "metadata.user_api_key_hash", "metadata.requester_custom_headers",
    "traceloop.association.properties", "langfuse.observation.metadata",
})
_KEEP = ("gen_ai.conversation.id",)
_NOISE_HEADERS = frozenset({
    "content-type", "content-length", "user-agent", "authorization", "accept", "accept-encoding", "host",
    "traceparent", "tracestate", "baggage", "connection", "cookie", "x-request-id", "x-portkey-trace-id",
})
_BLOB_NOISE = re.compile(r"^(ls_|langgraph_|checkpoint_|thread_id$|run_)")
_TAG_ATTRS = ("tag.tags", "metadata.tags", "langfuse.trace.tags")
_PYREPR_ATTRS = ("metadata.requester_metadata", "metadata.spend_logs_metadata")
_CONTAINER_PREFIXES = (
    "traceloop.association.properties.", "langfuse.trace.metadata.", "langfuse.observation.metadata.",
    "langfuse_metadata_", "portkey.metadata.", "metadata.", "app.", "enduser.", "helicone-property-",
    "x-portkey-", "x-", "helicone-", "user_api_key_",
)
_ID_NOUNS = frozenset({"tenant", "customer", "user", "session", "team", "workflow", "org", "account", "project", "workspace", "consumer", "feature"})
_SYNONYMS = {"langfuse_user_id": "user_id", "langfuse_session_id": "session_id", "conversation_id": "session_id", "_user": "user_id"}


def canonical(name: str) -> str:
    """``traceloop.association.properties.tenant_id`` / ``tenant.id`` / ``x-tenant-id`` -> ``tenant_id``."""
    n = name.lower()
    if n.startswith(HEADER_PREFIX):
        n = n[len(HEADER_PREFIX):]
    for p in _CONTAINER_PREFIXES:
        if n.startswith(p) and len(n) > len(p):
            n = n[len(p):]
            break
    n = re.sub(r"[.\-\s]+", "_", n).strip("_") or name
    if n == "gen_ai_conversation_id":
        n = "conversation_id"
    n = _SYNONYMS.get(n, n)
    if n in _ID_NOUNS:
        n += "_id"
    if not re.match(r"[a-z_]", n):
        n = "k_" + n
    return n


@dataclass
class _Stats:
    sources: Counter = field(default_factory=Counter)  # source (as a schema dict, frozen) -> spans
    root_traces: int = 0
    constant_traces: int = 0
    llm_calls: int = 0
    examples: Counter = field(default_factory=Counter)


@dataclass(frozen=True, slots=True)
class Candidate:
    key: str
    sources: tuple[dict, ...]  # schema source entries, most seen first
    root_traces: int  # traces whose root carries it
    constant_traces: int  # of those, traces in which every span carrying it agrees
    llm_calls: int  # LLM calls that carry it
    examples: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Inference:
    traces: int
    spans: int
    llm_calls: int
    dialects: dict
    candidates: tuple[Candidate, ...]
    inputs: tuple[str, ...] = ()


def _freeze(src: dict) -> tuple:
    return tuple(src.items())


def fields(span: Span) -> dict[str, list[tuple[dict, Any]]]:
    """Canonical key -> [(schema source, value)] for every attribution-like value on the span."""
    out: dict[str, list[tuple[dict, Any]]] = defaultdict(list)

    def add(key: str, src: dict, v: Any) -> None:
        if isinstance(v, bool) or v is None or v in ("", "None", "null"):
            return
        if isinstance(v, (str, int)) and len(str(v)) <= MAX_VALUE_CHARS:
            out[key].append((src, v))

    for name, v in span.attributes.items():
        if name in _TAG_ATTRS:
            for tag in _tag_values(v):
                k, sep, val = tag.partition(":")
                if sep and k and val:
                    add(canonical(k), {"tags": name, "prefix": f"{k}:"}, val)
            continue
        noise = (name.startswith(_NOISE_PREFIXES) and name not in _KEEP) or name in _NOISE_NAMES
        if noise and not name.startswith(HEADER_PREFIX):
            continue
        if isinstance(v, str) and v.startswith("{") and not name.startswith(HEADER_PREFIX):
            blob, kind = _blob(name, v)
            if isinstance(blob, dict):
                for k, x in blob.items():
                    if isinstance(k, str) and not _BLOB_NOISE.match(k):
                        add(canonical(k), {kind: name, "path": k}, x)
                continue
        if name.startswith(HEADER_PREFIX):
            header = name[len(HEADER_PREFIX):]
            if header in _NOISE_HEADERS:
                continue
            first = v[0] if isinstance(v, tuple) and v else v
            if isinstance(first, str) and first.startswith("{"):
                try:
                    blob = json.loads(first)
                except ValueError:
                    blob = None
                if isinstance(blob, dict):
                    for k, x in blob.items():
                        add(canonical(k), {"header_json": header, "path": k}, x)
                    continue
            add(canonical(name), {"header": header}, first)
            continue
        if isinstance(v, str) and len(v) >= 2 and v[0] == v[-1] == '"':
            try:
                v = json.loads(v)
            except ValueError:
                pass
        add(canonical(name), {"attribute": name}, v)
    return out


def _tag_values(v: Any) -> list[str]:
    if isinstance(v, tuple):
        return [t for t in v if isinstance(t, str)]
    if isinstance(v, str) and v.startswith("["):
        try:
            parsed = json.loads(v)
        except ValueError:
            from auditor.pyrepr import parse_literal as _cached_repr

            parsed = _cached_repr(v) if len(v) < 65536 else None
        if isinstance(parsed, list):
            return [t for t in parsed if isinstance(t, str)]
    return []


def _blob(name: str, v: str) -> tuple[Any, str]:
    if name in _PYREPR_ATTRS or v.startswith("{'"):
        return parse_pyrepr(v), "pyrepr"
    try:
        return json.loads(v), "json"
    except ValueError:
        return None, "json"


def infer(spans: Iterable[Span], is_llm, inputs: tuple[str, ...] = ()) -> Inference:
    spans = list(spans)
    found = dialects.detect(spans)
    traces = list(assemble.iter_traces(spans))
    stats: dict[str, _Stats] = defaultdict(_Stats)
    n_traces = n_llm = 0
    for t in traces:
        n_traces += 1
        per_key_values: dict[str, set] = defaultdict(set)
        on_root: set[str] = set()
        roots = set(t.roots)
        for sid, span in t.spans.items():
            fs = fields(span)
            llm = is_llm(span)
            n_llm += llm
            for key, entries in fs.items():
                st = stats[key]
                for src, v in entries:
                    st.sources[_freeze(src)] += 1
                    per_key_values[key].add(str(v))
                    st.examples[str(v)] += 1
                if sid in roots:
                    on_root.add(key)
                if llm:
                    st.llm_calls += 1
        for key in on_root:
            stats[key].root_traces += 1
            if len(per_key_values[key]) == 1:
                stats[key].constant_traces += 1
    candidates = [
        Candidate(
            key=k,
            sources=tuple(dict(s) for s, _ in st.sources.most_common()),
            root_traces=st.root_traces,
            constant_traces=st.constant_traces,
            llm_calls=st.llm_calls,
            examples=tuple(v for v, _ in st.examples.most_common(3)),
        )
        for k, st in stats.items()
        if st.root_traces or st.llm_calls
    ]
    candidates.sort(key=lambda c: (-c.llm_calls, -c.root_traces, c.key))
    return Inference(n_traces, len(spans), n_llm, found, tuple(candidates), inputs)


def _pct(a: int, b: int) -> str:
    return f"{100.0 * a / b:.0f}%" if b else "n/a"


def _describe(src: dict) -> str:
    if "path" in src:
        kind = next(k for k in src if k != "path")
        return f"{kind} {src[kind]}#{src['path']}"
    if "prefix" in src:
        return f"tags {src['tags']}[{src['prefix']}...]"
    kind, name = next(iter(src.items()))
    return f"{kind} {name}"


def _yaml_scalar(v: str) -> str:
    return json.dumps(v)


def render(inf: Inference) -> str:
    """A schema file (YAML) with comments; valid against schemas/attribution-schema.schema.json."""
    lines = [
        "# Proposed by `auditor schema infer` from "
        f"{inf.traces} trace(s), {inf.spans} span(s), {inf.llm_calls} LLM call(s)"
        + (f" in {', '.join(inf.inputs)}" if inf.inputs else "") + ".",
        "# Dialects detected: " + (", ".join(f"{n} ({c} spans)" for n, c in inf.dialects.items()) or "none") + ".",
        "# A candidate key is on the root of a trace and constant within it. Keys on at least half",
        "# of the LLM calls and constant in every trace are marked required; review before use.",
        "version: 1",
        "name: inferred",
        "extends: [" + ", ".join(dialects.refs(inf.dialects)) + "]",
    ]
    if not inf.candidates:
        lines.append("# No candidate attribution key was found.")
        return "\n".join(lines) + "\n"
    lines.append("keys:")
    for c in inf.candidates:
        required = inf.llm_calls > 0 and c.llm_calls * 2 >= inf.llm_calls and c.root_traces > 0 and c.constant_traces == c.root_traces
        lines.append(f"  {c.key}:")
        lines.append(
            f"    # on the root of {c.root_traces}/{inf.traces} trace(s), constant within {c.constant_traces} of them; "
            f"on {c.llm_calls}/{inf.llm_calls} LLM call(s) ({_pct(c.llm_calls, inf.llm_calls)})"
        )
        if len(c.sources) > 1:
            lines.append("    # aliases seen: " + "; ".join(_describe(s) for s in c.sources))
        lines.append("    # e.g. " + ", ".join(_yaml_scalar(e) for e in c.examples))
        lines.append(f"    required: {'true' if required else 'false'}")
        lines.append("    sources:")
        for s in c.sources:
            items = list(s.items())
            k0, v0 = items[0]
            lines.append(f"      - {k0}: {_yaml_scalar(v0)}")
            for k, v in items[1:]:
                lines.append(f"        {k}: {_yaml_scalar(v)}")
    return "\n".join(lines) + "\n"
