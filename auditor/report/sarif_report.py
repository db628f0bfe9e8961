"""SARIF 2.1.0 for code scanning: one rule per code, one result per finding.

Every result carries logical locations (service > instrumentation scope > span) and, when
the span recorded OTel code attributes (code.filepath / code.lineno / code.function), a
physical location so a code-scanning UI can annotate the line where context was lost: for a
leak or headless call with a named mechanism, the span where its patch goes. The mechanism
and its patch are in the message and in ``properties.mechanism``.
"""

from __future__ import annotations

import hashlib
import heapq
import json
from pathlib import PurePosixPath
from urllib.parse import quote

from auditor import __version__
from auditor.groups import ident as group_ident
from auditor.mechanism import UNKNOWN
from auditor.model import ABSENT, AuditResult, Endpoint, Finding
from auditor.report import summary
from auditor.report.safe_text import inline
from auditor.rules import all_rules

SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
TOOL_NAME = "trace-attribution-auditor"
# GitHub code scanning rejects runs with more results; the worst are kept, the rest counted.
MAX_RESULTS = 25_000


def _rules(result: AuditResult) -> list[dict]:
    known = {r.code: r for r in all_rules()}
    out = []
    for code in sorted(set(known) | set(result.finding_counts)):
        r = known.get(code)
        if r is None:
            out.append({"id": code, "shortDescription": {"text": code}})
            continue
        out.append(
            {
                "id": r.code,
                "name": r.name,
                "shortDescription": {"text": r.summary},
                "fullDescription": {"text": r.help},
                "help": {"text": r.help, "markdown": f"**{r.code} {r.name}**: {r.help}"},
                "defaultConfiguration": {"level": r.severity.value},
                "properties": {"tags": ["attribution-audit", r.family]},
            }
        )
    return out


class _Logical:
    """run.logicalLocations as a service > scope > span hierarchy, deduplicated."""

    def __init__(self):
        self.items: list[dict] = []
        self.index: dict[tuple, int] = {}

    def add(self, path: tuple[str, ...], kinds: tuple[str, ...]) -> int:
        parent = -1
        for depth in range(1, len(path) + 1):
            key = path[:depth]
            if key not in self.index:
                item = {
                    "name": inline(path[depth - 1] or "-"),
                    "fullyQualifiedName": inline(" / ".join(p or "-" for p in key), 1200),
                    "kind": kinds[depth - 1],
                }
                if parent >= 0:
                    item["parentIndex"] = parent
                self.index[key] = len(self.items)
                self.items.append(item)
            parent = self.index[key]
        return parent

    def ref(self, idx: int) -> dict:
        it = self.items[idx]
        return {"index": idx, "name": it["name"], "fullyQualifiedName": it["fullyQualifiedName"], "kind": it["kind"]}


KINDS = ("module", "namespace", "function")


def _endpoint(f: Finding) -> Endpoint | None:
    if f.boundary is not None:
        return f.boundary.child
    return f.endpoint


def _uri(path: str) -> tuple[str, str | None]:
    p = path.replace("\\", "/")
    if p.startswith("/"):
        return "file://" + quote(p), None
    return quote(str(PurePosixPath(p))), "%SRCROOT%"


def _physical(loc) -> dict | None:
    path, line, _func = loc
    if not path:
        return None
    uri, base = _uri(path)
    art = {"uri": uri}
    if base:
        art["uriBaseId"] = base
    phys: dict = {"artifactLocation": art}
    if isinstance(line, int) and line >= 1:
        phys["region"] = {"startLine": line}
    return phys


def _fingerprint(f: Finding) -> str:
    """The finding's group (code, key, normalised boundary or endpoint): no trace or span id, so
    code scanning and ``--baseline`` match the same leak across runs alike."""
    return hashlib.sha256(group_ident(f).encode()).hexdigest()[:32]


def to_sarif(result: AuditResult) -> dict:
    rules = _rules(result)
    rule_index = {r["id"]: i for i, r in enumerate(rules)}
    logical = _Logical()
    results = []
    findings = result.findings
    total = len(findings)
    if total > MAX_RESULTS:  # the worst first, earlier before later: two passes, no random access
        keep = {i for _, i in heapq.nsmallest(MAX_RESULTS, ((-f.severity.rank, i) for i, f in enumerate(findings)))}
        findings = tuple(f for i, f in enumerate(findings) if i in keep)
    left_out = total - len(findings)
    # Code scanning needs a file on every result: without code attributes, the one trace file
    # audited stands in (when there was exactly one).
    inputs = [i for i in result.run.inputs if i != "-"]
    fallback = _physical((inputs[0], 1, None)) if len(inputs) == 1 and len(result.run.inputs) == 1 else None
    base = result.baseline
    state = {} if base is None else {g.ident: base.state(g) for g in result.groups}
    for f in findings:
        results.append(_result(f, rule_index, logical, fallback, state.get(group_ident(f))))
    for g in () if base is None else base.absent:
        results.append(_result(g.example, rule_index, logical, fallback, ABSENT))
    h = summary.headline(result)
    run = {
        "tool": {
            "driver": {
                "name": TOOL_NAME,
                "version": __version__,
                "semanticVersion": __version__,
                "rules": rules,
            }
        },
        "automationDetails": {"id": f"{TOOL_NAME}/"},
        "originalUriBaseIds": {"%SRCROOT%": {"description": {"text": "The root of the instrumented application's source."}}},
        "artifacts": [{"location": {"uri": _uri(i)[0]}, "roles": ["analysisTarget"]} for i in result.run.inputs if i != "-"],
        "logicalLocations": logical.items,
        "results": results,
        "invocations": [
            {
                "executionSuccessful": True,
                **(
                    {"toolExecutionNotifications": [{
                        "level": "warning",
                        "message": {"text": f"{left_out} lower-severity results left out (at most {MAX_RESULTS} per run); see --format json"},
                    }]}
                    if left_out else {}
                ),
                "exitCode": 0 if h.gate_passed is not False else 1,
                "properties": {
                    "schema": result.run.schema,
                    "gate_passed": h.gate_passed,
                    "gate_reasons": list(h.gate_reasons),
                    "llm_calls": h.llm_calls,
                    "spend_usd": h.spend,
                    "unattributed": {k.key: {"share_pct": None if k.share is None else round(k.share, 2), "basis": k.share_basis, "usd": k.unattributed} for k in h.keys},
                },
            }
        ],
        "columnKind": "unicodeCodePoints",
    }
    return {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}


def _result(f: Finding, rule_index: dict, logical: _Logical, fallback: dict | None, baseline_state: str | None) -> dict:
    ep = _endpoint(f)
    location: dict = {}
    if ep is not None:
        idx = logical.add((ep.service, ep.scope, ep.name), KINDS)
        location["logicalLocations"] = [logical.ref(idx)]
    if f.code_location is not None:
        phys = _physical(f.code_location)
        if phys is not None:
            location["physicalLocation"] = phys
        if f.code_location[2] and "logicalLocations" in location:
            location["logicalLocations"].append({"name": inline(f.code_location[2]), "kind": "function"})
    if "physicalLocation" not in location and fallback is not None:
        location["physicalLocation"] = fallback
    props = {"trace_id": f.trace_id, "span_id": f.span_id}
    if f.key:
        props["key"] = f.key
    if f.parent_span_id:
        props["parent_span_id"] = f.parent_span_id
    if f.boundary is not None:
        props["boundary"] = inline(f.boundary, 1200)
        props["boundary_class"] = f.boundary.cls.value
    if f.spans_affected:
        props["spans_affected"] = f.spans_affected
        props["llm_calls_affected"] = len(f.llm_calls_affected)
    text = f.message
    if f.mechanism is not None:
        m = f.mechanism
        props["mechanism"] = {"name": m.name, "confidence": m.confidence, "evidence": inline(m.evidence, 2000),
                              "patch": inline(m.patch, 2000)}
        if m.name != UNKNOWN:
            text = f"{text} Cause: {m.name} ({m.confidence} confidence): {m.evidence} Patch: {m.patch}"
    res = {
        "ruleId": f.code,
        "level": f.severity.value,
        "message": {"text": inline(text, 4000)},
        "partialFingerprints": {"attributionGroup/v1": _fingerprint(f)},
        "properties": props,
    }
    if baseline_state is not None:
        res["baselineState"] = baseline_state
    if f.code in rule_index:
        res["ruleIndex"] = rule_index[f.code]
    if location:
        res["locations"] = [location]
    return res


def render(result: AuditResult, options=None) -> str:
    return json.dumps(to_sarif(result), indent=2, ensure_ascii=False) + "\n"
