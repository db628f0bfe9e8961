"""``auditor cost``: chargeback. LLM spend per value combination of one or more keys.

``--by`` takes a schema key (resolved through all its sources) or any attribute name
(``session.id``, ``gen_ai.conversation.id``, ``user.id``), so per-session and per-user cost
are views of the same audit. Each LLM call is counted once (duplicates folded as in
``check``); a call lacking a ``--by`` value is charged to ``(unattributed)`` in that column.
The rows add up exactly to the total ``check`` reports: the same Decimal figures, rounded
to 6 places only when printed.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from dataclasses import dataclass
from decimal import Decimal

import click

from auditor.commands.options import jobs_for, jobs_option, note, route, schema_option, write
from auditor.commands.input_limit import max_input_bytes_option
from auditor.errors import UsageError
from auditor.model import AuditResult
from auditor.pipeline import audit_files
from auditor.plan import Plan
from auditor.result_json import usd

UNATTRIBUTED = "(unattributed)"
TOKEN_FIELDS = ("input", "cache_read", "cache_write", "output", "reasoning")
FORMATS = ("text", "json", "csv")


@dataclass(frozen=True, slots=True)
class Row:
    values: tuple[str, ...]  # one per --by key; UNATTRIBUTED where the call lacks it
    calls: int
    unpriced_calls: int
    tokens: tuple[int, ...]  # TOKEN_FIELDS
    cost_usd: Decimal

    @property
    def attributed(self) -> bool:
        return UNATTRIBUTED not in self.values


@dataclass(frozen=True, slots=True)
class Chargeback:
    by: tuple[str, ...]
    rows: tuple[Row, ...]
    total: Row

    def share_pct(self, row: Row) -> float:
        return float(row.cost_usd / self.total.cost_usd * 100) if self.total.cost_usd else 0.0


def _label(v) -> str:
    if v is None or v == "" or v == ():
        return UNATTRIBUTED
    if isinstance(v, tuple):
        return ",".join(map(str, v))
    return str(v)


def chargeback(result: AuditResult, by: tuple[str, ...]) -> Chargeback:
    """Rows per value combination, most expensive first, partly unattributed rows last."""
    acc: dict[tuple[str, ...], list] = {}
    for c in result.calls:
        key = tuple(_label(c.values.get(k)) for k in by)
        a = acc.get(key)
        if a is None:
            a = acc[key] = [0, 0, [0] * len(TOKEN_FIELDS), Decimal(0)]
        u = c.usage
        a[0] += 1
        if c.cost_usd is None:
            a[1] += 1
        else:
            a[3] += c.cost_usd
        for i, n in enumerate((u.input, u.cache_read, u.cache_write_total, u.output, u.reasoning)):
            a[2][i] += n
    rows = [Row(k, a[0], a[1], tuple(a[2]), a[3]) for k, a in acc.items()]
    rows.sort(key=lambda r: (not r.attributed, -r.cost_usd, -r.calls, r.values))
    total = Row(
        ("total",) + ("",) * (len(by) - 1),
        sum(r.calls for r in rows),
        sum(r.unpriced_calls for r in rows),
        tuple(sum(r.tokens[i] for r in rows) for i in range(len(TOKEN_FIELDS))),
        sum((r.cost_usd for r in rows), Decimal(0)),
    )
    return Chargeback(by, tuple(rows), total)


# ---------------------------------------------------------------- renderers


def _row_dict(cb: Chargeback, r: Row) -> dict:
    return {
        "values": dict(zip(cb.by, r.values)),
        "llm_calls": r.calls,
        "unpriced_calls": r.unpriced_calls,
        "tokens": dict(zip(TOKEN_FIELDS, r.tokens)),
        "cost_usd": usd(r.cost_usd),
        "share_pct": round(cb.share_pct(r), 2),
    }


def render_json(cb: Chargeback, result: AuditResult) -> str:
    doc = {
        "by": list(cb.by),
        "rows": [_row_dict(cb, r) for r in cb.rows],
        "total": {k: v for k, v in _row_dict(cb, cb.total).items() if k != "values"},
        "check_total_usd": usd(result.total_cost_usd),
        "inputs": list(result.run.inputs),
    }
    return json.dumps(doc, indent=2) + "\n"


def render_csv(cb: Chargeback, result: AuditResult) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(list(cb.by) + ["llm_calls", "unpriced_calls"] + [f"{t}_tokens" for t in TOKEN_FIELDS] + ["cost_usd", "share_pct"])
    for r in cb.rows + (cb.total,):
        w.writerow(list(r.values) + [r.calls, r.unpriced_calls] + list(r.tokens) + [usd(r.cost_usd), f"{cb.share_pct(r):.2f}"])
    return buf.getvalue()


def render_text(cb: Chargeback, result: AuditResult) -> str:
    head = list(cb.by) + ["calls", "unpriced"] + list(TOKEN_FIELDS) + ["cost USD", "share"]
    body = [
        list(r.values) + [str(r.calls), str(r.unpriced_calls)] + [str(n) for n in r.tokens]
        + [usd(r.cost_usd), f"{cb.share_pct(r):.1f}%"]
        for r in cb.rows + (cb.total,)
    ]
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    nkeys = len(cb.by)

    def line(cells) -> str:
        return "  ".join(c.ljust(w) if i < nkeys else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    out = [f"LLM spend by {', '.join(cb.by)}: {len(result.calls)} LLM calls from {len(result.run.inputs)} input(s)", ""]
    out.append(line(head))
    out.append("  ".join("-" * w for w in widths))
    out.extend(line(b) for b in body[:-1])
    out.append("  ".join("-" * w for w in widths))
    out.append(line(body[-1]))
    unpriced = cb.total.unpriced_calls
    if unpriced:
        out.append("")
        out.append(f"{unpriced} call(s) unpriced (COST001): counted in calls and tokens, not in cost.")
    return "\n".join(out) + "\n"


RENDER = {"text": render_text, "json": render_json, "csv": render_csv}


@click.command("cost")
@click.argument("paths", nargs=-1, required=True, metavar="PATH... (or - for stdin)")
@max_input_bytes_option
@click.option("--by", "by", multiple=True, required=True, metavar="KEY",
              help="Group by this schema key or attribute name (repeatable: one row per combination).")
@schema_option
@jobs_option
@click.option("-f", "--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write here instead of stdout.")
def command(paths, by, schema_ref, jobs, fmt, output):
    """Chargeback: calls, tokens by type and cost per value of --by, plus (unattributed).

    Totals equal the LLM spend 'auditor check' reports for the same input and schema.
    """
    names = tuple(dict.fromkeys(b.strip() for b in by))
    if any(not n for n in names):
        raise UsageError("--by: expected a key or attribute name, got an empty string")
    plan = Plan.of(schema_ref, adapt=lambda s: s.with_dimensions(names))
    result = audit_files(paths, plan, stdin=sys.stdin.buffer, note=note, jobs=jobs_for(jobs, paths))
    for _fmt, path in route([(fmt, None)], output):
        write(path, RENDER[fmt](chargeback(result, names), result))
