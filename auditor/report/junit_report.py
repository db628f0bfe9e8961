"""JUnit XML for CI test reporters (GitLab, Jenkins, GitHub): the audit as test results.

One test suite per (attribution key, rule family) plus one per other rule family with
findings; one test case per code and place (a boundary for hop findings, a span endpoint
otherwise), failing when its findings break the gate; one test case per key for the
unattributed-spend limit. With a baseline, known groups pass (noted as known) and the key case
fails only when the share rose past the tolerance, exactly as the gate decides. Shaped to validate against the Apache Ant JUnit XSD.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import defaultdict

from auditor.baseline import delta_text
from auditor.groups import ident as group_ident
from auditor.model import NEW, AuditResult, Finding
from auditor.report import summary
from auditor.report.safe_text import guard, inline
from auditor.rules import LEAK, rule

MAX_LISTED = 20
_BAD_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def clean(s: object) -> str:
    """Text XML 1.0 can carry: attacker-controlled names may hold control characters."""
    return _BAD_XML.sub("\ufffd", str(s))


def _family(code: str) -> str:
    try:
        return rule(code).family
    except KeyError:
        return code.rstrip("0123456789").lower() or "other"


def _where(f: Finding) -> str:
    if f.boundary is not None:
        return inline(f.boundary)
    if f.endpoint is not None:
        return inline(f.endpoint)
    return "trace"


def _help(code: str) -> str:
    try:
        return rule(code).help
    except KeyError:
        return ""


def _suite(root: ET.Element, idx: int, name: str, cases: list[ET.Element], timestamp: str, out: str) -> None:
    failures = sum(1 for c in cases if c.find("failure") is not None)
    s = ET.SubElement(
        root, "testsuite",
        {
            "name": clean(name), "package": "trace-attribution-auditor", "id": str(idx),
            "timestamp": timestamp, "hostname": "localhost", "tests": str(len(cases)),
            "failures": str(failures), "errors": "0", "skipped": "0", "time": "0",
        },
    )
    ET.SubElement(s, "properties")
    s.extend(cases)
    ET.SubElement(s, "system-out").text = clean(out)
    ET.SubElement(s, "system-err").text = ""


def _case(classname: str, name: str, failure: tuple[str, str, str] | None) -> ET.Element:
    c = ET.Element("testcase", {"name": clean(name), "classname": clean(classname), "time": "0"})
    if failure is not None:
        typ, message, body = failure
        ET.SubElement(c, "failure", {"type": typ, "message": clean(message)}).text = clean(body)
    return c


def render(result: AuditResult, options=None) -> str:
    h = summary.headline(result)
    timestamp = summary.recorded_at(result)
    groups: dict[tuple[str | None, str], dict[tuple[str, str], list[Finding]]] = defaultdict(lambda: defaultdict(list))
    for f in result.findings:
        groups[(f.key, _family(f.code))][(f.code, _where(f))].append(f)
    for k in result.parts.required_keys:
        groups[(k, "attribution")]  # every required key gets its suite, passing or not
    costs = {b.boundary: b for b in result.boundaries}
    base = result.baseline  # with --baseline only new groups and a risen share fail, like the gate
    deltas = {} if base is None else {d.key: d for d in base.keys}
    lines = {k.key: k for k in h.keys}

    root = ET.Element("testsuites")
    order = sorted(groups, key=lambda g: (g[0] is None, g[0] or "", g[1]))
    for idx, (key, family) in enumerate(order):
        cases: list[ET.Element] = []
        notes: list[str] = []
        classname = inline(f"{family}.{key}" if key else family)
        for (code, where), fs in sorted(groups[(key, family)].items()):
            worst = max(fs, key=lambda f: f.severity.rank)
            traces = sorted({f.trace_id for f in fs})
            name = f"{code} {where}"
            failure = None
            detail = [f"{len(fs)} finding(s) in {len(traces)} trace(s); worst severity {worst.severity.value}."]
            b = costs.get(worst.boundary) if worst.boundary is not None else None
            if b is not None and code == LEAK:
                detail.append(
                    f"{b.llm_calls_affected} LLM call(s), {summary.money(b.unattributed_cost_usd)} unattributed below; "
                    f"{b.boundary.cls.value} boundary. Fix: {b.fix}"
                )
            else:
                detail.append(_help(code))
            detail.extend(f"trace {inline(f.trace_id)} span {inline(f.span_id)}: {inline(f.message)}" for f in fs[:MAX_LISTED])
            if len(fs) > MAX_LISTED:
                detail.append(f"... {len(fs) - MAX_LISTED} more")
            known = base is not None and base.states.get(group_ident(worst)) != NEW
            if summary.breaks_gate(worst.severity, result) and not known:
                failure = (code, inline(worst.message), guard("\n".join(detail)))
            elif known:
                notes.append(f"{name}: {worst.severity.value}, known in the baseline {base.source} ({len(fs)} finding(s))")
            else:
                notes.append(f"{name}: {worst.severity.value}, below the gate ({len(fs)} finding(s))")
            cases.append(_case(classname, name, failure))
        if key is not None and family == "attribution" and key in lines:
            k = lines[key]
            name = f"unattributed spend for {key}"
            figure = f"{k.share_text} ({k.unattributed}; {k.missing} of {k.llm_calls} LLM calls lack {key})"
            failure = None
            delta = deltas.get(key)
            if base is not None and delta is not None:
                change = f"{key}: unattributed {delta_text(delta)}"
                if delta.rise is not None and delta.rise > base.tolerance_pct:
                    failure = ("baseline-share-rise", f"{change}, over the tolerance of {base.tolerance_pct:g} points", figure)
                notes.append(f"{name}: {figure}; against the baseline: {change}")
            else:
                if k.over_limit:
                    failure = ("max-unattributed-pct", f"{key}: {figure} is over the limit of {k.limit:g}%", figure)
                notes.append(f"{name}: {figure}" + (f"; limit {k.limit:g}%" if k.limit is not None else "; no limit set"))
            cases.append(_case(classname, name, failure))
        if not cases:
            cases.append(_case(classname, f"{family} findings", None))
        suite = f"{key} / {family}" if key else family
        _suite(root, idx, inline(suite), cases, timestamp, guard("\n".join(notes)))
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
