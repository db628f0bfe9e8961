"""The terminal report: the answer first (what was read, what lacks which key, where it
leaks and what it costs), then the findings. Colour only when asked (the CLI asks on a TTY)."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

from auditor import concentration
from auditor.model import SHARE_CALLS
from auditor.report.safe_text import guard, inline as s
from auditor.report.summary import cause
from auditor.result_json import usd
from auditor.baseline import delta_text
from auditor.rollup import share_text

MAX_FINDINGS = 25
_RED, _YEL, _GRN, _BOLD, _DIM, _RST = "\x1b[31m", "\x1b[33m", "\x1b[32m", "\x1b[1m", "\x1b[2m", "\x1b[0m"


def _pct(a, b) -> str:
    return f"{(100.0 * float(a) / float(b)):.1f}%" if b else "0.0%"


def _share(k) -> str:
    return "n/a" if k.share_pct is None else f"{k.share_pct:.1f}%"


def money(d: Decimal | None) -> str:
    return "n/a" if d is None else f"${usd(d)}"


def render(result, options) -> str:
    c = options.color

    def paint(text: str, code: str) -> str:
        return f"{code}{text}{_RST}" if c else text

    out: list[str] = []
    for section in (_headline, _baseline, _keys, _cost_by_code, _boundaries, _findings):
        out.extend(section(result, options, paint))
    out.extend(_gate(result, paint))
    return guard("\n".join(out) + "\n")


def _headline(result, _options, paint) -> list[str]:
    n_calls, dups = len(result.calls), len(result.duplicates)
    out = [
        paint("Trace attribution audit", _BOLD)
        + f": {result.counts.traces} traces, {result.counts.spans} spans, {n_calls} LLM calls"
        + (f" ({dups} more recorded twice, counted once)" if dups else "")
        + f" from {len(result.run.inputs)} input(s)"
    ]
    if result.counts.rejected_spans:
        out.append(paint(f"  {result.counts.rejected_spans} span(s) rejected (unusable ids); see warnings above", _YEL))
    out.append(
        f"LLM spend: {money(result.total_cost_usd)} over {n_calls - result.unpriced_calls} priced call(s)"
        + (f"; {result.unpriced_calls} call(s) unpriced (COST001)" if result.unpriced_calls else "")
    )
    conc = concentration.compute(result.calls, result.parts.keys)
    if conc is not None:
        out.append(s(concentration.line(conc)))
    return out + [""]


def _keys(result, _options, paint) -> list[str]:
    if not result.keys:
        return []
    out = []
    for k in result.keys:
        if k.share_basis == SHARE_CALLS:
            line = f"{k.llm_calls_missing} of {k.llm_calls} LLM calls ({k.share_pct:.1f}%) lack {s(k.key)}; nothing is priced"
        else:
            line = f"{money(k.unattributed_usd)} of {money(k.cost_usd)} ({_share(k)}) of LLM spend is unattributed for {s(k.key)}"
            if k.unattributed_unpriced_calls:
                line += f", and {k.unattributed_unpriced_calls} unpriced call(s) lack it"
        top = next((b for b in result.boundaries if k.key in b.keys and b.unattributed_cost_usd > 0), None)
        if top is not None:
            line += f"; {money(top.unattributed_cost_usd)} of it below {s(top.boundary)}"
        out.append(paint(line, _BOLD) if k.unattributed_usd else line)
    out.append("")
    width = max(len(s(k.key)) for k in result.keys) + 2
    out.append(f"  {'key':<{width}}{'LLM calls missing it':<26}{'unattributed spend':<28}share")
    for k in result.keys:
        miss = f"{k.llm_calls_missing} of {k.llm_calls} ({_pct(k.llm_calls_missing, k.llm_calls)})"
        spend = money(k.unattributed_usd)
        if k.unattributed_unpriced_calls:
            spend += f" + {k.unattributed_unpriced_calls} unpriced"
        out.append(f"  {s(k.key):<{width}}{miss:<26}{spend:<28}{share_text(k)}")
    return out + [""]


def _cost_by_code(result, _options, _paint) -> list[str]:
    if not result.cost_by_code:
        return []
    out = ["LLM spend concerned by findings, per code:"]
    for code, cc in result.cost_by_code.items():
        if cc.unpriced_calls == cc.calls:
            line = f"  {s(code):<9}{cc.calls} LLM call(s), all unpriced"
        else:
            line = f"  {s(code):<9}{money(cc.cost_usd)} over {cc.calls} LLM call(s)"
            if cc.unpriced_calls:
                line += f" (+ {cc.unpriced_calls} unpriced)"
        out.append(line)
    return out + [""]


def _boundaries(result, _options, paint) -> list[str]:
    if not result.boundaries:
        return ["No leaking boundaries.", ""]
    out = [paint(f"Leaking boundaries ({len(result.boundaries)})", _BOLD) + ", worst first:"]
    for i, b in enumerate(result.boundaries, 1):
        out.append(f"  {i}. [{b.boundary.cls.value}] {s(b.boundary.parent)}")
        out.append(f"       -> {s(b.boundary.child)}")
        out.append(
            f"     keys: {s(', '.join(b.keys))} · {b.traces} trace(s) · {b.spans_affected} span(s) · "
            f"{b.llm_calls_affected} LLM call(s) · {money(b.unattributed_cost_usd)} unattributed below"
        )
        c = cause(b)
        if c is not None:
            out.append(f"     cause: {s(c.label)}")
        out.append(f"     fix: {s(c.patch if c else b.fix, 2000)}")
        out.append(paint(f"     e.g. trace {s(', '.join(b.example_trace_ids[:3]))}", _DIM))
    return out + [""]


def _findings(result, options, paint) -> list[str]:
    if not result.findings:
        return []
    counts = Counter(f.code for f in result.findings)
    groups = result.groups
    out = [paint(f"Findings ({len(result.findings)} in {len(groups)} group(s))", _BOLD) + ": "
           + " · ".join(f"{n} {s(code)}" for code, n in sorted(counts.items()))]
    base = result.baseline
    shown = groups if options.verbose else groups[:MAX_FINDINGS]
    for g in shown:
        out.extend(_group(g, base.state(g) if base else None, paint))
    if len(shown) < len(groups):
        out.append(paint(f"  ... {len(groups) - len(shown)} more group(s) (--verbose, or --format json)", _DIM))
    if base is not None and base.absent:
        out.append(paint(f"Fixed since the baseline ({len(base.absent)} group(s) gone):", _BOLD))
        for g in base.absent[:MAX_FINDINGS]:
            out.append(f"  {s(g.code)}{' ' + s(g.key) if g.key else ''} at {s(g.where) or '(the whole input)'}"
                       f" · was {g.findings} finding(s) in {g.traces} trace(s)")
    if options.verbose:
        out.append("")
        out.append(paint("Every finding:", _BOLD))
        for f in result.findings:
            out.append(f"  {paint(f'{f.severity.value:<7}', _SEV_COLOUR[f.severity.value])} {s(f.code)}"
                       f"{' ' + s(f.key) if f.key else ''} trace {s(f.trace_id[:12])}… span {s(f.span_id)}: {s(f.message)}")
            if f.mechanism is not None:
                out.append(f"          {s(f.mechanism.line(), 3000)}")
    return out + [""]


_SEV_COLOUR = {"error": _RED, "warning": _YEL, "note": _DIM}
_STATE = {"new": "[new] ", "unchanged": "[known] ", "updated": "[updated] "}


def _group(g, state, paint) -> list[str]:
    sev = g.severity.value
    mark = paint(_STATE[state], _RED if state == "new" else _DIM) if state else ""
    key = f" {s(g.key)}" if g.key else ""
    spend = ""
    if g.llm_calls:
        spend = f" · {g.llm_calls} LLM call(s)" + (f" · {money(g.cost_usd)}" if g.unpriced_calls < g.llm_calls else " unpriced")
    out = [f"  {mark}{paint(f'{sev:<7}', _SEV_COLOUR[sev])} {s(g.code)}{key} · {g.findings} finding(s) in "
           f"{g.traces} trace(s){spend}"]
    if g.where:
        out.append(f"      at {s(g.where)}")
    loc = g.example.code_location
    if loc is not None:
        out.append(f"      code {s(loc[0])}{f':{loc[1]}' if loc[1] else ''}{f' ({s(loc[2])})' if loc[2] else ''}")
    out.append(paint(f"      e.g. trace {s(g.example.trace_id[:12])}… span {s(g.example.span_id)}: {s(g.example.message)}", _DIM))
    if g.example.mechanism is not None:
        out.append(f"      {s(g.example.mechanism.line(), 3000)}")
    return out


def _baseline(result, _options, paint) -> list[str]:
    base = result.baseline
    if base is None:
        return []
    head = (f"Against the baseline {s(base.source)}: {base.count('new')} new, {base.count('unchanged')} known, "
            f"{base.count('updated')} updated, {base.count('absent')} fixed group(s); "
            f"spend {money(base.cost_before)} -> {money(base.cost_after)}")
    out = [paint(head, _BOLD)]
    for k in base.keys:
        out.append(f"  {s(k.key)}: unattributed {delta_text(k)}")
    for b in base.new_leaks:
        out.append(paint(f"  new leak [{b.boundary.cls.value}] {s(b.boundary)}", _RED))
    for b in base.fixed_leaks:
        out.append(paint(f"  fixed leak [{b.boundary.cls.value}] {s(b.boundary)}", _GRN))
    return out + [""]


def _gate(result, paint) -> list[str]:
    gate, fail_on = result.gate, result.policy.fail_on
    if gate.passed:
        return [paint("Gate: passed", _GRN) + f" (fail-on {fail_on})"]
    return [paint("Gate: FAILED", _RED + _BOLD) + f" (fail-on {fail_on}): " + "; ".join(s(r, 2000) for r in gate.reasons)]

