"""The comparison: invoice vs traces per (UTC day, provider, model, key, workspace, tier).

A dimension is compared only where both sides know it: the export must be grouped by it,
and (for api keys and workspaces) every traced call of that provider in the window must
name a key or workspace the export knows (directly or through the key map). Otherwise
the dimension is summed over on both sides, and a note says why. A span belongs to the
UTC day of its start; spans outside every bucket of the provider's exports are left out
(counted), as are calls to providers whose invoice was not given.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from decimal import Decimal

from auditor.model import LlmCall
from auditor.pricing import Pricer
from auditor.rules.reconcile import OVERTRACED, UNGATED
from auditor.reconcile import drift
from auditor.reconcile.model import DEFAULT, CostRow, Tokens, UsageExport
from auditor.reconcile.provider_side import RateBook, build, in_window, merged_intervals
from auditor.reconcile.result import Group, Reconciliation, ReconFinding, Source, Summary, ToolGap, finding
from auditor.reconcile.traced import KeyMap, TracedCall, traced_calls

DIMS = ("model", "api_key_id", "workspace_id", "tier")
_IDX = {"model": 2, "api_key_id": 3, "workspace_id": 4, "tier": 5}
ZERO = Decimal(0)
OVERTRACED_TOLERANCE = Decimal("0.000001")


@dataclass
class _Side:
    tokens: Tokens | None = None
    usd: Decimal | None = None
    unpriced: int = 0
    calls: int = 0
    requests: int | None = None
    bases: set = field(default_factory=set)
    unpriced_tokens: Tokens | None = None
    tools: dict | None = None


def reconcile(
    exports: list[UsageExport],
    calls: tuple[LlmCall, ...],
    keymap: KeyMap | None = None,
    pricer: Pricer | None = None,
    max_ungated_pct: float | None = None,
) -> Reconciliation:
    keymap = keymap or KeyMap({}, {})
    notes: list[str] = []
    exports = _unique(exports, notes)
    groups_full, other_costs = build(exports, RateBook(pricer or Pricer()))
    windows = merged_intervals(exports)
    providers = sorted(windows)
    inside, outside, left_out = _traced_in_windows(calls, windows, notes)
    resolved, used = _dimensions(exports, groups_full, inside, providers, keymap, notes)
    compared_tools = _tools_compared(groups_full, inside, providers, notes)
    groups = _compare(groups_full, inside, resolved, used, compared_tools)

    findings: list[ReconFinding] = []
    untraced = _untraced(groups, used, findings)
    for g in groups:
        if g.ungated_usd < -OVERTRACED_TOLERANCE:
            findings.append(finding(
                OVERTRACED, f"traced ${_m(g.traced_usd)} exceeds invoiced ${_m(g.provider_usd)} for {g.label()}: "
                "calls outside this organisation's exports, a wrong model or tier on the spans, or double counting", g,
            ))
        if g.provider_unpriced:
            notes.append(f"{g.label()}: the provider's tokens could not be priced (no price for the model); counted as $0")
    findings.extend(drift.check(groups))
    tools = _tool_gaps(groups, compared_tools, other_costs)
    _note_uncompared(other_costs, compared_tools, inside, groups, exports, notes)
    return Reconciliation(
        sources=tuple(Source(ex.path, ex.kind, ex.provider, len(ex.usage), len(ex.costs), ex.duplicate_pages) for ex in exports),
        windows={p: tuple(v) for p, v in windows.items()},
        dimensions=used,
        groups=tuple(groups),
        summary=_summary(groups, inside, max_ungated_pct),
        untraced=untraced,
        findings=tuple(sorted(findings, key=lambda f: (f.code, f.provider, str(f.subject)))),
        notes=tuple(notes),
        traced_calls_outside=outside,
        traced_calls_other=left_out,
        tools=tools,
    )


def _traced_in_windows(calls: tuple[LlmCall, ...], windows: dict, notes: list[str]) -> tuple[list[TracedCall], int, int]:
    """The traced calls the exports can speak of (their provider, inside their buckets); the
    calls outside every bucket and those of providers without an export, counted and noted."""
    mine, others = traced_calls(calls)
    if others:
        by = Counter(c.provider or "unknown" for c in others)
        notes.append(
            f"{len(others)} traced call(s) of providers whose invoice is not read here were left out: "
            + ", ".join(f"{p} ({n})" for p, n in sorted(by.items()))
        )
    no_export = Counter(c.provider for c in mine if c.provider not in windows)
    for p, n in sorted(no_export.items()):
        notes.append(f"{n} traced {p} call(s) left out: no {p} usage or cost export given")
    inside = [c for c in mine if c.provider in windows and in_window(c.start_ns, windows[c.provider])]
    outside = sum(1 for c in mine if c.provider in windows) - len(inside)
    if outside:
        notes.append(f"{outside} traced call(s) start outside every bucket of the exports and were left out")
    return inside, outside, len(others) + sum(no_export.values())


def _dimensions(exports, groups_full: dict, inside: list[TracedCall], providers: list[str], keymap: KeyMap,
                notes: list[str]) -> tuple[dict, dict[str, tuple[str, ...]]]:
    """Each traced call's (api key, workspace) as the provider knows them, and per provider the
    dimensions compared: those the exports group by and every traced call can be placed in."""
    grouped: dict[str, set[str]] = defaultdict(set)
    for ex in exports:
        grouped[ex.provider] |= set(ex.grouped_by)
    known_keys: dict[str, set[str]] = defaultdict(set)
    known_ws: dict[str, set[str]] = defaultdict(set)
    key_ws: dict[tuple[str, str], set] = defaultdict(set)
    for k in groups_full:
        _, p, _, key, ws, _, _ = k
        if key is not None and key != DEFAULT:
            known_keys[p].add(key)
            key_ws[(p, key)].add(ws)
        if ws is not None:
            known_ws[p].add(ws)

    resolved: dict[tuple[str, str], tuple[str | None, str | None]] = {}
    for c in inside:
        resolved[c.ref] = _resolve(c, keymap, known_keys[c.provider], known_ws[c.provider], key_ws)

    used: dict[str, tuple[str, ...]] = {}
    for p in providers:
        dims = []
        pcalls = [c for c in inside if c.provider == p]
        for d in DIMS:
            if d not in grouped[p]:
                continue
            if d in ("api_key_id", "workspace_id"):
                slot = 0 if d == "api_key_id" else 1
                missing = [c for c in pcalls if resolved[c.ref][slot] is None]
                if missing:
                    seen = sorted({v for c in missing for v in (c.api_key_values if slot == 0 else c.workspace_values)})
                    notes.append(
                        f"{p}: {d} not compared: {len(missing)} of {len(pcalls)} traced call(s) carry no {d.replace('_id', '')} "
                        "the export knows"
                        + (f" (gateway values seen: {', '.join(seen[:5])}; map them with --key-map)" if seen else "")
                    )
                    continue
            dims.append(d)
        used[p] = tuple(dims)
    return resolved, used


def _compare(groups_full: dict, inside: list[TracedCall], resolved: dict, used: dict[str, tuple[str, ...]],
             compared_tools: dict[str, tuple[str, ...]]) -> list[Group]:
    """Both sides collapsed to the compared dimensions, one Group per place either side has."""
    prov: dict[tuple, _Side] = defaultdict(_Side)
    for k, g in groups_full.items():
        s = prov[_collapse(k, used[k[1]])]
        if g.tokens is not None:
            s.tokens = g.tokens if s.tokens is None else s.tokens + g.tokens
        if g.requests is not None:
            s.requests = (s.requests or 0) + g.requests
        if g.usd is None:
            s.unpriced += 1
        else:
            s.usd = (s.usd or ZERO) + g.usd
        s.bases.add(g.basis)
        _add_tools(s, g.tools, compared_tools[k[1]])
    trac: dict[tuple, _Side] = defaultdict(_Side)
    for c in inside:
        key, ws = resolved[c.ref]
        full = (c.day, c.provider, c.model_key, key, ws, c.tier)
        s = trac[_collapse(full, used[c.provider])]
        s.tokens = c.tokens if s.tokens is None else s.tokens + c.tokens
        s.calls += 1
        if c.cost_usd is None:
            s.unpriced += 1
            s.unpriced_tokens = c.tokens if s.unpriced_tokens is None else s.unpriced_tokens + c.tokens
        else:
            s.usd = (s.usd or ZERO) + c.cost_usd
        _add_tools(s, dict(c.tools or ()), compared_tools[c.provider])

    groups = []
    for k in sorted(set(prov) | set(trac), key=_sort_key):
        ps, ts = prov.get(k, _Side()), trac.get(k, _Side())
        pusd, tusd = ps.usd or ZERO, ts.usd or ZERO
        explains = _could_explain(pusd - tusd, pusd, ps.tokens, ts.unpriced_tokens)
        groups.append(
            Group(
                day=k[0], provider=k[1], model=k[2], api_key_id=k[3], workspace_id=k[4], tier=k[5],
                provider_usd=pusd, traced_usd=tusd, ungated_usd=pusd - tusd,
                provider_tokens=ps.tokens, traced_tokens=ts.tokens if ts.calls else None,
                traced_calls=ts.calls, provider_requests=ps.requests,
                provider_cost_basis="+".join(sorted(ps.bases)) if ps.bases else "none",
                provider_unpriced=ps.unpriced, traced_unpriced_calls=ts.unpriced,
                traced_unpriced_tokens=ts.unpriced_tokens, unpriced_could_explain_usd=explains,
                provider_tools=_counts(ps, compared_tools[k[1]]), traced_tools=_counts(ts, compared_tools[k[1]]),
            )
        )
    return groups


def _note_uncompared(other_costs, compared_tools, inside: list[TracedCall], groups: list[Group], exports,
                     notes: list[str]) -> None:
    """What the comparison leaves out, said: non-token costs, unpriced traced calls, repeated pages."""
    not_compared = [c for c in other_costs if c.cost_type not in compared_tools.get(c.dims.provider, ())]
    if not_compared:
        total = sum((c.usd for c in not_compared), ZERO)
        kinds = sorted({c.cost_type for c in not_compared})
        notes.append(f"${_m(total)} of non-token costs ({', '.join(kinds)}) are on the invoice and not compared")
    unpriced = sum(1 for c in inside if c.cost_usd is None)
    if unpriced:
        could = sum((g.unpriced_could_explain_usd for g in groups), ZERO)
        notes.append(
            f"{unpriced} traced call(s) could not be priced (COST001): kept apart, not counted as $0; "
            f"their tokens could explain up to ${_m(could)} of the gap (their share of the invoiced tokens in their "
            "groups, or the whole gap where the invoice gives no tokens), which is not counted as ungated"
        )
    for ex in exports:
        if ex.duplicate_pages:
            notes.append(f"{ex.path}: {ex.duplicate_pages} repeated page(s) counted once")


def _tools_compared(groups_full: dict, inside: list[TracedCall], providers: list[str], notes: list[str]) -> dict[str, tuple[str, ...]]:
    """Per provider, the server-side tools compared: those the exports count, when every traced
    call of that provider in the window states its tool use (a usage object does; semconv
    attributes do not). Otherwise a note says why, when the invoice shows any such request."""
    out: dict[str, tuple[str, ...]] = {}
    for p in providers:
        counted: dict[str, int] = {}
        for k, g in groups_full.items():
            if k[1] == p and g.tools is not None:
                for t, n in g.tools.items():
                    counted[t] = counted.get(t, 0) + n
        pcalls = [c for c in inside if c.provider == p]
        silent = sum(1 for c in pcalls if c.tools is None)
        if silent and counted:
            out[p] = ()
            for t, n in sorted(counted.items()):
                if n:
                    notes.append(
                        f"{p}: {t} requests not compared: the invoice counts {n}, but {silent} of {len(pcalls)} traced "
                        "call(s) do not state their server tool use (only a usage object does: LiteLLM's "
                        "metadata.usage_object or a raw_gen_ai_request payload)"
                    )
            continue
        out[p] = tuple(sorted(counted))
    return out


def _add_tools(side: _Side, tools: dict | None, compared: tuple[str, ...]) -> None:
    if not compared:
        return
    if side.tools is None:
        side.tools = dict.fromkeys(compared, 0)
    for t in compared:
        side.tools[t] += (tools or {}).get(t, 0)


def _counts(side: _Side, compared: tuple[str, ...]) -> dict[str, int] | None:
    if not compared:
        return None
    return dict(side.tools) if side.tools is not None else dict.fromkeys(compared, 0)


def _tool_gaps(groups: list[Group], compared: dict[str, tuple[str, ...]], other_costs: list[CostRow]) -> tuple[ToolGap, ...]:
    """Each compared (provider, tool) over the window: requests on both sides, the groups that
    differ, and the tool's charges on the cost export with the untraced requests' share."""
    out = []
    for p in sorted(compared):
        for t in compared[p]:
            prov = trac = 0
            differ = []
            for g in groups:
                if g.provider != p or g.provider_tools is None:
                    continue
                a, b = g.provider_tools.get(t, 0), (g.traced_tools or {}).get(t, 0)
                prov, trac = prov + a, trac + b
                if a != b:
                    differ.append((g.label(), a, b))
            lines = [c.usd for c in other_costs if c.dims.provider == p and c.cost_type == t]
            usd = sum(lines, ZERO) if lines else None
            untraced = None
            if usd is not None and prov:
                untraced = usd * max(prov - trac, 0) / prov
            out.append(ToolGap(p, t, prov, trac, tuple(differ), usd, untraced))
    return tuple(out)


def _unique(exports: list[UsageExport], notes: list[str]) -> list[UsageExport]:
    """Drop files given twice, and pages already read from another file (the same page saved twice)."""
    out, seen, pages_seen = [], {}, set()
    for ex in exports:
        sig = (ex.kind, ex.usage, ex.costs)
        if sig in seen:
            notes.append(f"{ex.path}: same content as {seen[sig]}; counted once")
            continue
        seen[sig] = ex.path
        keep, dropped = [], 0
        for digest, a, b in ex.pages:
            if digest in pages_seen:
                dropped += 1
                continue
            pages_seen.add(digest)
            keep.append((a, b))
        if dropped:
            notes.append(f"{ex.path}: {dropped} page(s) already read from another file; counted once")
            rows = ex.usage if ex.usage else ex.costs
            kept = tuple(x for a, b in keep for x in rows[a:b])
            ex = replace(ex, usage=kept if ex.usage else (), costs=kept if ex.costs else (), duplicate_pages=ex.duplicate_pages + dropped)
        out.append(ex)
    return out


def _resolve(c: TracedCall, keymap: KeyMap, keys: set[str], wss: set[str], key_ws) -> tuple[str | None, str | None]:
    key = None
    for v in c.api_key_values:
        key = keymap.api_key(c.provider, v) or (v if v in keys else None)
        if key is not None:
            break
    ws = None
    for v in c.workspace_values + c.api_key_values:
        ws = keymap.workspace(c.provider, v) or (v if v in wss and v not in keys else None)
        if ws is not None:
            break
    if ws is None and key is not None:
        known = key_ws.get((c.provider, key), set())
        if len(known) == 1:
            ws = next(iter(known))
    return key, ws


def _collapse(k: tuple, dims: tuple[str, ...]) -> tuple:
    """The comparison key: day, provider and the compared dimensions (context never compared)."""
    out = list(k[:6])
    for d, i in _IDX.items():
        if d not in dims:
            out[i] = None
    return tuple(out)


def _sort_key(k: tuple) -> tuple:
    return tuple("" if x is None else str(x) for x in k)


def _m(d: Decimal) -> str:
    return str(d.quantize(Decimal("0.000001")))


def _untraced(groups: list[Group], used: dict[str, tuple[str, ...]], findings: list[ReconFinding]) -> dict:
    """Keys, workspaces and models with invoiced spend and not one traced call (RECON001)."""
    out: dict[str, list] = {"api_keys": [], "workspaces": [], "models": []}
    for field_name, label, bucket in (("api_key_id", "api key", "api_keys"), ("workspace_id", "workspace", "workspaces"), ("model", "model", "models")):
        spend: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
        traced: set[tuple[str, str]] = set()
        for g in groups:
            v = getattr(g, field_name)
            if v is None or field_name not in used.get(g.provider, ()):
                continue
            spend[(g.provider, v)] += g.provider_usd
            if g.traced_calls:
                traced.add((g.provider, v))
        for (p, v), usd in sorted(spend.items(), key=lambda kv: (-kv[1], kv[0])):
            if (p, v) in traced or usd <= 0:
                continue
            out[bucket].append({"provider": p, field_name: v, "provider_usd": usd})
            why = {
                "api key": "a developer's direct key, a CLI tool or a service that bypasses the gateway",
                "workspace": "an application or team whose calls are not instrumented",
                "model": "a model called only outside the instrumented path",
            }[label]
            findings.append(ReconFinding(
                UNGATED, _sev(UNGATED),
                f"{label} {v} ({p}) has ${_m(usd)} of invoiced spend and no traced call: {why}",
                p, subject=(field_name, v), usd=usd,
            ))
    return out


def _sev(code: str):
    from auditor.rules import rule

    return rule(code).severity


def _could_explain(gap: Decimal, provider_usd: Decimal, provider_tokens: Tokens | None, unpriced: Tokens | None) -> Decimal:
    """How much of a positive gap the unpriced traced calls of a group could explain: their share
    of the group's invoiced tokens times its invoiced $, at most the gap; the whole gap when the
    invoice gives no tokens for the group (costs only)."""
    if unpriced is None or gap <= 0:
        return ZERO
    if provider_tokens is None or provider_tokens.total <= 0:
        return gap
    return min(gap, provider_usd * Decimal(unpriced.total) / Decimal(provider_tokens.total))


def _summary(groups: list[Group], inside: list[TracedCall], max_pct: float | None) -> Summary:
    provider = sum((g.provider_usd for g in groups), ZERO)
    traced = sum((g.traced_usd for g in groups), ZERO)
    ungated = sum((g.unexplained_usd for g in groups if g.ungated_usd > 0), ZERO)
    could = sum((g.unpriced_could_explain_usd for g in groups), ZERO)
    over = sum((-g.ungated_usd for g in groups if g.ungated_usd < 0), ZERO)
    pct = float(ungated * 100 / provider) if provider else 0.0
    by_key: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    by_model: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for g in groups:
        if g.unexplained_usd <= 0:
            continue
        if g.api_key_id is not None:
            by_key[(g.provider, g.api_key_id)] += g.unexplained_usd
        if g.model is not None:
            by_model[(g.provider, g.model)] += g.unexplained_usd
    top_keys = tuple(sorted(((p, k, v) for (p, k), v in by_key.items()), key=lambda x: (-x[2], x[0], x[1])))
    top_models = tuple(sorted(((p, m, v) for (p, m), v in by_model.items()), key=lambda x: (-x[2], x[0], x[1])))
    passed = max_pct is None or pct <= max_pct
    return Summary(
        provider_usd=provider, traced_usd=traced, ungated_usd=ungated, overtraced_usd=over, ungated_pct=pct,
        traced_calls=len(inside), unpriced_traced_calls=sum(1 for c in inside if c.cost_usd is None),
        top_keys=top_keys, top_models=top_models, max_ungated_pct=max_pct, passed=passed,
        unpriced_traced_tokens=sum(c.tokens.total for c in inside if c.cost_usd is None),
        unpriced_could_explain_usd=could,
    )



