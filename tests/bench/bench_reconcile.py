"""Benchmark the reconciliation (not the audit): N priced calls against a usage report.

    python tests/bench/bench_reconcile.py [N_CALLS] [DAYS]

Prints the time to parse the export and to reconcile (wall and CPU: a shared machine's wall
clock says more about the neighbours), and calls per CPU second. The calls are
priced once by the auditor's Pricer (as the engine does), spread over DAYS UTC days, 3 keys,
4 models and 2 providers; the report is written from them in the providers' shapes, plus
one untraced key, so the figures include a real non-zero delta.
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections import defaultdict
from dataclasses import replace

from auditor.model import LlmCall, Usage
from auditor.pricing import Pricer
from auditor.reconcile import parse_usage, reconcile
from auditor.reconcile.fields import day_of

T0 = 1_767_225_600 * 10**9
MODELS = {"anthropic": ["claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001"], "openai": ["gpt-4o-mini-2024-07-18", "gpt-4.1-mini-2025-04-14"]}


def calls(n: int, days: int, seed: int = 1) -> list[LlmCall]:
    r = random.Random(seed)
    pricer = Pricer()
    out = []
    for i in range(n):
        prov = r.choice(("anthropic", "openai"))
        model = r.choice(MODELS[prov])
        u = Usage(input=r.randint(0, 5000), cache_read=r.randint(0, 20000), cache_write=r.randint(0, 4000) if prov == "anthropic" else 0,
                  output=r.randint(1, 2000), convention="including")
        start = T0 + r.randrange(days * 86_400 * 10**9)
        c = LlmCall(f"{i:032x}", f"{i:016x}", "app", "app", "chat", start, start + 10**9, prov, model, None, u,
                    {"reconcile:api_key_id": f"key_{prov}_{r.randint(0, 2)}"})
        cost, note = pricer.price(c)
        out.append(replace(c, cost_usd=cost, price_note=note))
    return out


def reports(cs: list[LlmCall]) -> list[str]:
    rows = defaultdict(lambda: [0, 0, 0, 0])
    for c in cs:
        k = (c.provider, day_of(c.start_ns), c.values["reconcile:api_key_id"], c.model)
        u = c.usage
        rows[k] = [a + b for a, b in zip(rows[k], (u.input, u.cache_read, u.cache_write_total, u.output))]
    for d in sorted({k[1] for k in rows}):
        rows[("anthropic", d, "key_direct", MODELS["anthropic"][0])] = [10_000, 0, 0, 1_000]
    anth, oai = defaultdict(list), defaultdict(list)
    for (prov, d, key, model), (unc, cr, cw, out) in sorted(rows.items()):
        if prov == "anthropic":
            anth[d].append({"uncached_input_tokens": unc, "cache_read_input_tokens": cr, "output_tokens": out,
                            "cache_creation": {"ephemeral_5m_input_tokens": cw, "ephemeral_1h_input_tokens": 0},
                            "api_key_id": key, "model": model, "service_tier": "standard"})
        else:
            oai[d].append({"object": "organization.usage.completions.result", "input_tokens": unc + cr, "input_cached_tokens": cr,
                           "output_tokens": out, "num_model_requests": 1, "api_key_id": key, "model": model, "batch": False})
    a = "\n".join(json.dumps({"data": [{"starting_at": f"{d}T00:00:00Z", "ending_at": f"{d.fromordinal(d.toordinal() + 1)}T00:00:00Z",
                                        "results": res}]}) for d, res in sorted(anth.items()))
    epoch = lambda d: (d.toordinal() - 719163) * 86_400  # noqa: E731
    o = json.dumps({"object": "page", "data": [{"object": "bucket", "start_time": epoch(d), "end_time": epoch(d) + 86_400, "results": res}
                                               for d, res in sorted(oai.items())]})
    return [a, o]


def main(argv: list[str]) -> None:
    n = int(argv[1]) if len(argv) > 1 else 100_000
    days = int(argv[2]) if len(argv) > 2 else 31
    t = time.perf_counter()
    cs = calls(n, days)
    t_calls = time.perf_counter() - t
    texts = reports(cs)
    t = time.perf_counter()
    exports = [parse_usage(texts[0], "anthropic.json"), parse_usage(texts[1], "openai.json")]
    t_parse = time.perf_counter() - t
    t, c = time.perf_counter(), time.process_time()
    rec = reconcile(exports, tuple(cs))
    t_rec, c_rec = time.perf_counter() - t, time.process_time() - c
    rows = sum(len(e.usage) for e in exports)
    print(f"calls: {n:,} over {days} day(s) (made and priced in {t_calls:.2f} s)")
    print(f"export rows: {rows:,} ({sum(len(x) for x in texts) / 1e6:.1f} MB JSON), parsed in {t_parse:.3f} s")
    print(f"reconcile: {t_rec:.3f} s wall, {c_rec:.3f} s CPU ({n / c_rec:,.0f} calls per CPU second), {len(rec.groups):,} groups")
    print(rec.headline())


if __name__ == "__main__":
    main(sys.argv)
