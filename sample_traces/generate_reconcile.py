"""Generate the reconcile scenario: traces (real OpenTelemetry SDK) and the provider exports
for the same window, written to the providers' documented shapes.

    python sample_traces/generate_reconcile.py
        # rewrites sample_traces/reconcile/* and tests/fixtures/usage/*

Window: 2026-01-01 and 2026-01-02 (UTC days). A LiteLLM proxy serves two apps:
  support-bot   virtual key "support-bot": Anthropic claude-sonnet-4-5 on provider key
                apikey_01GatewayProd and OpenAI gpt-4o-mini on key_SupportGw. Its spans carry
                LiteLLM's metadata.usage_object, so cache tokens are split correctly.
  lead-scorer   virtual key "lead-scorer": claude-sonnet-4-5 on apikey_01LeadScorer, through
                a proxy configured without usage_object: its spans carry only the
                cache-inclusive input count (cache reads and writes read as plain input).
Ungated (on the invoice, in no trace):
  apikey_01DevLaptop  a developer's direct key (Claude Code) in the default workspace:
                      claude-sonnet-4-5 and claude-haiku-4-5 (haiku is used ONLY there);
  key_BatchJobs       an OpenAI batch job (gpt-4.1-mini, project proj_Analytics).
Bucket edges: one traced call starts at 2026-01-01T23:59:59.5Z, one exactly at
2026-01-02T00:00:00Z, and one at 2026-01-03T00:00:00Z (after the exports' last bucket).

Costs in the cost exports are computed here from the public list prices (USD per million
tokens, the PRICES table), independently of the auditor's pricing code.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import SpanKind

from auditor.ingest.otlp_json_writer import to_otlp_json

ROOT = Path(__file__).resolve().parent
TRACES = ROOT / "reconcile"
FIXTURES = ROOT.parent / "tests" / "fixtures" / "usage"

SONNET = "claude-sonnet-4-5-20250929"
HAIKU = "claude-haiku-4-5-20251001"
MINI = "gpt-4o-mini-2024-07-18"
MINI41 = "gpt-4.1-mini-2025-04-14"
# USD per million tokens: uncached input, cache read, cache write 5m, output.
PRICES = {
    SONNET: (Decimal("3"), Decimal("0.30"), Decimal("3.75"), Decimal("15")),
    HAIKU: (Decimal("1"), Decimal("0.10"), Decimal("1.25"), Decimal("5")),
    MINI: (Decimal("0.15"), Decimal("0.075"), None, Decimal("0.60")),
    MINI41: (Decimal("0.40"), Decimal("0.10"), None, Decimal("1.60")),
}
BATCH = Decimal("0.5")

WS_PROD = "wrkspc_01Prod"
K_GW, K_SCORE, K_DEV = "apikey_01GatewayProd", "apikey_01LeadScorer", "apikey_01DevLaptop"
OK_GW, OK_BATCH = "key_SupportGw", "key_BatchJobs"
P_SUPPORT, P_ANALYTICS = "proj_SupportBot", "proj_Analytics"
VKEY_SUPPORT = hashlib.sha256(b"sk-litellm-support-bot").hexdigest()  # LiteLLM stores the key's hash
VKEY_SCORER = hashlib.sha256(b"sk-litellm-lead-scorer").hexdigest()


def ns(d: int, h: int = 0, m: int = 0, s: int = 0, frac_ns: int = 0) -> int:
    t = datetime(2026, 1, d, h, m, s, tzinfo=timezone.utc)
    return int(t.timestamp()) * 10**9 + frac_ns


@dataclass(frozen=True)
class Call:
    app: str  # support-bot | lead-scorer
    provider: str
    model: str
    start: int
    uncached: int
    cache_write: int
    cache_read: int
    output: int


CALLS = [
    Call("support-bot", "anthropic", SONNET, ns(1, 9, 0), 1200, 4000, 0, 300),
    Call("support-bot", "anthropic", SONNET, ns(1, 9, 5), 800, 0, 4000, 250),
    Call("support-bot", "anthropic", SONNET, ns(1, 23, 59, 59, 500_000_000), 500, 0, 4000, 200),
    Call("lead-scorer", "anthropic", SONNET, ns(1, 10, 0), 1000, 3000, 0, 100),
    Call("lead-scorer", "anthropic", SONNET, ns(1, 10, 1), 1000, 0, 3000, 120),
    Call("support-bot", "openai", MINI, ns(1, 11, 0), 976, 0, 1024, 150),
    Call("support-bot", "openai", MINI, ns(1, 12, 0), 1500, 0, 0, 100),
    Call("support-bot", "anthropic", SONNET, ns(2, 0, 0), 600, 0, 4000, 180),
    Call("support-bot", "anthropic", SONNET, ns(2, 14, 0), 900, 2000, 0, 220),
    Call("lead-scorer", "anthropic", SONNET, ns(2, 15, 0), 500, 0, 3000, 90),
    Call("support-bot", "openai", MINI, ns(2, 16, 0), 1200, 0, 0, 80),
    Call("support-bot", "anthropic", SONNET, ns(3, 0, 0), 100, 0, 0, 10),  # after the window
]
KEY_OF = {("support-bot", "anthropic"): K_GW, ("lead-scorer", "anthropic"): K_SCORE, ("support-bot", "openai"): OK_GW}

# Usage no trace sees: (day, key, workspace/project, model, uncached, cache write 5m, cache read, output, batch)
DIRECT = [
    (1, K_DEV, None, SONNET, 5000, 10000, 40000, 2000, False),
    (1, K_DEV, None, HAIKU, 20000, 0, 0, 4000, False),
    (2, K_DEV, None, HAIKU, 10000, 0, 0, 1000, False),
    (1, OK_BATCH, P_ANALYTICS, MINI41, 100000, 0, 0, 20000, True),
]


# ---------------------------------------------------------------- traces


class SeededIds(IdGenerator):
    def __init__(self, seed: int):
        self._r = random.Random(seed)

    def generate_span_id(self) -> int:
        return self._r.getrandbits(64) or 1

    def generate_trace_id(self) -> int:
        return self._r.getrandbits(128) or 1


def litellm_span(tracer, c: Call, n: int) -> None:
    """The proxy's two spans per request, with the attributes LiteLLM's OTel callback writes."""
    with tracer.start_as_current_span("Received Proxy Server Request", kind=SpanKind.SERVER, start_time=c.start - 2_000_000,
                                      end_on_exit=False) as root:
        root.set_attribute("http.route", "/chat/completions" if c.provider == "openai" else "/v1/messages")
        span = tracer.start_span("litellm_request", start_time=c.start)
        total_in = c.uncached + c.cache_write + c.cache_read
        vkey = VKEY_SUPPORT if c.app == "support-bot" else VKEY_SCORER
        attrs = {
            "gen_ai.system": c.provider,
            "gen_ai.request.model": c.model.rsplit("-", 1)[0] if c.provider == "anthropic" else "gpt-4o-mini",
            "gen_ai.response.model": c.model,
            "gen_ai.response.id": f"{'msg' if c.provider == 'anthropic' else 'chatcmpl'}-{c.app}-{n}",
            "llm.request.type": "chat",
            "gen_ai.usage.input_tokens": total_in,  # LiteLLM's prompt_tokens: cache tokens included
            "gen_ai.usage.output_tokens": c.output,
            "gen_ai.usage.total_tokens": total_in + c.output,
            "metadata.user_api_key_hash": vkey,
            "metadata.user_api_key_alias": c.app,
            "metadata.user_api_key_team_id": "team-" + c.app,
        }
        if c.app == "support-bot":
            usage = {"prompt_tokens": total_in, "completion_tokens": c.output, "total_tokens": total_in + c.output}
            if c.provider == "anthropic":
                usage.update(cache_creation_input_tokens=c.cache_write, cache_read_input_tokens=c.cache_read)
            else:
                usage["prompt_tokens_details"] = {"cached_tokens": c.cache_read, "audio_tokens": None}
            attrs["metadata.usage_object"] = repr(usage)  # LiteLLM sends a Python repr, not JSON
        span.set_attributes(attrs)
        span.end(end_time=c.start + 800_000_000)
        root.end(end_time=c.start + 805_000_000)


def write_traces() -> None:
    exp = InMemorySpanExporter()
    tp = TracerProvider(resource=Resource({"service.name": "litellm-proxy", "deployment.environment": "sample"}), id_generator=SeededIds(7))
    tp.add_span_processor(SimpleSpanProcessor(exp))
    tracer = tp.get_tracer("litellm")
    for n, c in enumerate(CALLS):
        litellm_span(tracer, c, n)
    spans = sorted(exp.get_finished_spans(), key=lambda s: (s.start_time, s.context.trace_id))
    TRACES.mkdir(parents=True, exist_ok=True)
    (TRACES / "litellm_proxy.otlp.json").write_text(json.dumps(to_otlp_json(encode_spans(spans)), indent=1) + "\n")


# ---------------------------------------------------------------- provider exports


def provider_rows():
    """(day, provider, key, workspace/project, model, uncached, cw5m, cache read, output, batch, requests)."""
    agg: dict[tuple, list[int]] = {}
    for c in CALLS:
        d = datetime.fromtimestamp(c.start // 10**9, tz=timezone.utc).day
        if d > 2:
            continue  # the provider's export covers days 1 and 2 only
        key = KEY_OF[(c.app, c.provider)]
        ws = WS_PROD if c.provider == "anthropic" else P_SUPPORT
        k = (d, c.provider, key, ws, c.model, False)
        a = agg.setdefault(k, [0, 0, 0, 0, 0])
        for i, v in enumerate((c.uncached, c.cache_write, c.cache_read, c.output, 1)):
            a[i] += v
    for d, key, ws, model, unc, cw, cr, out, batch in DIRECT:
        provider = "anthropic" if model.startswith("claude") else "openai"
        agg[(d, provider, key, ws, model, batch)] = [unc, cw, cr, out, 7]
    return sorted((k + tuple(v)) for k, v in agg.items())


def day_iso(d: int) -> str:
    return date(2026, 1, d).isoformat() + "T00:00:00Z"


def cost(model: str, unc: int, cw: int, cr: int, out: int, batch: bool) -> dict[str, Decimal]:
    p_in, p_cr, p_cw, p_out = PRICES[model]
    m = BATCH if batch else Decimal(1)
    parts = {"uncached": p_in * unc, "cache_read": p_cr * cr, "output": p_out * out}
    if cw:
        parts["cache_write_5m"] = p_cw * cw
    return {k: v * m / Decimal(1_000_000) for k, v in parts.items() if v}


def anthropic_usage_pages() -> list[dict]:
    pages = []
    rows = [r for r in provider_rows() if r[1] == "anthropic"]
    for d in (1, 2):
        results = [
            {
                "uncached_input_tokens": unc,
                "cache_creation": {"ephemeral_1h_input_tokens": 0, "ephemeral_5m_input_tokens": cw},
                "cache_read_input_tokens": cr,
                "output_tokens": out,
                "server_tool_use": {"web_search_requests": 0},
                "api_key_id": key,
                "workspace_id": ws,
                "model": model,
                "service_tier": "standard",
                "context_window": "0-200k",
            }
            for (day, _, key, ws, model, _b, unc, cw, cr, out, _n) in rows if day == d
        ]
        pages.append({
            "data": [{"starting_at": day_iso(d), "ending_at": day_iso(d + 1), "results": results}],
            "has_more": d == 1,
            "next_page": "page_MjAyNi0wMS0wMlQwMDowMDowMFo=" if d == 1 else None,
        })
    return pages


def anthropic_cost_report() -> dict:
    """Grouped by workspace_id and description: one line per model, tier and token type."""
    token_types = {
        "uncached": ("uncached_input_tokens", "Input Tokens"),
        "cache_read": ("cache_read_input_tokens", "Cache Read Input Tokens"),
        "cache_write_5m": ("cache_creation.ephemeral_5m_input_tokens", "Cache Write 5m Input Tokens"),
        "output": ("output_tokens", "Output Tokens"),
    }
    data = []
    for d in (1, 2):
        lines: dict[tuple, Decimal] = {}
        for (day, provider, _key, ws, model, b, unc, cw, cr, out, _n) in provider_rows():
            if day != d or provider != "anthropic":
                continue
            for part, usd in cost(model, unc, cw, cr, out, b).items():
                k = (ws, model, part)
                lines[k] = lines.get(k, Decimal(0)) + usd
        results = []
        for (ws, model, part), usd in sorted(lines.items(), key=lambda kv: (kv[0][0] or "", kv[0][1], kv[0][2])):
            tt, label = token_types[part]
            name = "Claude Sonnet 4.5" if model == SONNET else "Claude Haiku 4.5"
            results.append({
                "currency": "USD",
                "amount": str((usd * 100).normalize()),  # cents, as a decimal string
                "workspace_id": ws,
                "description": f"{name} Usage - {label}",
                "cost_type": "tokens",
                "context_window": "0-200k",
                "model": model,
                "service_tier": "standard",
                "token_type": tt,
            })
        data.append({"starting_at": day_iso(d), "ending_at": day_iso(d + 1), "results": results})
    return {"data": data, "has_more": False, "next_page": None}


def console_cost_csv() -> str:
    names = {SONNET: "Claude Sonnet 4.5", HAIKU: "Claude Haiku 4.5"}
    tts = {"uncached": "input_no_cache", "cache_read": "input_cache_read", "cache_write_5m": "input_cache_write_5m", "output": "output"}
    key_names = KEY_NAMES
    lines = ["usage_date_utc,model,workspace,api_key,usage_type,context_window,token_type,cost_usd,list_price_usd,cost_type,inference_geo,speed,api_key_id,api_key_status"]
    for (day, provider, key, ws, model, b, unc, cw, cr, out, _n) in provider_rows():
        if provider != "anthropic":
            continue
        for part, usd in cost(model, unc, cw, cr, out, b).items():
            amount = str(usd.normalize())
            lines.append(
                f"2026-01-0{day},{names[model]},{'Production' if ws else 'Default'},{key_names[key]},message,≤ 200k,"
                f"{tts[part]},{amount},{amount},token,not_available,,{key},active"
            )
    return "\n".join(lines) + "\n"


KEY_NAMES = {K_GW: "litellm-prod", K_SCORE: "lead-scorer", K_DEV: "alice-laptop"}


def console_usage_csv() -> str:
    """The Console's usage export: tokens per day, keys and workspaces by name."""
    lines = ["usage_date_utc,model_version,api_key,workspace,usage_type,context_window,usage_input_tokens_no_cache,"
             "usage_input_tokens_cache_write_5m,usage_input_tokens_cache_write_1h,usage_input_tokens_cache_read,"
             "usage_output_tokens,web_search_count,inference_geo,speed"]
    for (day, provider, key, ws, model, b, unc, cw, cr, out, _n) in provider_rows():
        if provider == "anthropic":
            lines.append(f"2026-01-0{day},{model},{KEY_NAMES[key]},{'Production' if ws else 'Default'},standard,0-200k,"
                         f"{unc},{cw},0,{cr},{out},0,not_available,")
    return "\n".join(lines) + "\n"


def openai_usage() -> dict:
    data = []
    for d in (1, 2):
        results = [
            {
                "object": "organization.usage.completions.result",
                "input_tokens": unc + cr,  # OpenAI counts cached tokens inside input_tokens
                "output_tokens": out,
                "input_cached_tokens": cr,
                "input_audio_tokens": 0,
                "output_audio_tokens": 0,
                "num_model_requests": n,
                "project_id": ws,
                "user_id": None,
                "api_key_id": key,
                "model": model,
                "batch": b,
            }
            for (day, provider, key, ws, model, b, unc, cw, cr, out, n) in provider_rows() if day == d and provider == "openai"
        ]
        data.append({"object": "bucket", "start_time": ns(d) // 10**9, "end_time": ns(d + 1) // 10**9, "results": results})
    return {"object": "page", "data": data, "has_more": False, "next_page": None}


def openai_costs() -> dict:
    """Grouped by project_id and line_item (``"<model>, input"`` / ``cached input`` / ``output``)."""
    kinds = {"uncached": "input", "cache_read": "cached input", "output": "output"}
    data = []
    for d in (1, 2):
        results = []
        for (day, provider, _key, ws, model, b, unc, cw, cr, out, _n) in provider_rows():
            if day != d or provider != "openai":
                continue
            for part, usd in cost(model, unc, cw, cr, out, b).items():
                kind = ("batch " if b else "") + kinds[part]
                results.append({
                    "object": "organization.costs.result",
                    "amount": {"value": float(usd), "currency": "usd"},
                    "line_item": f"{model}, {kind}",
                    "project_id": ws,
                    "organization_id": "org-sample",
                })
        data.append({"object": "bucket", "start_time": ns(d) // 10**9, "end_time": ns(d + 1) // 10**9, "results": results})
    return {"object": "page", "data": data, "has_more": False, "next_page": None}


def key_map() -> str:
    return (
        "# LiteLLM virtual key (its hash, as metadata.user_api_key_hash carries it) -> the provider key\n"
        "# the proxy's deployment uses, per provider (one virtual key can reach several providers).\n"
        f"anthropic:\n  {VKEY_SUPPORT}: {K_GW}\n  {VKEY_SCORER}: {K_SCORE}\n"
        f"openai:\n  {VKEY_SUPPORT}: {OK_GW}\n"
    )


def write_exports() -> None:
    FIXTURES.mkdir(parents=True, exist_ok=True)
    p1, p2 = anthropic_usage_pages()
    (FIXTURES / "anthropic_usage_page1.json").write_text(json.dumps(p1, indent=2) + "\n")
    (FIXTURES / "anthropic_usage_page2.json").write_text(json.dumps(p2, indent=2) + "\n")
    (FIXTURES / "anthropic_usage_pages.json").write_text(json.dumps(p1) + "\n" + json.dumps(p2) + "\n")
    (FIXTURES / "anthropic_cost_report.json").write_text(json.dumps(anthropic_cost_report(), indent=2) + "\n")
    (FIXTURES / "anthropic_console_cost.csv").write_text(console_cost_csv())
    (FIXTURES / "openai_usage_completions.json").write_text(json.dumps(openai_usage(), indent=2) + "\n")
    (FIXTURES / "openai_costs.json").write_text(json.dumps(openai_costs(), indent=2) + "\n")
    (FIXTURES / "key_map.yaml").write_text(key_map())
    (FIXTURES / "anthropic_console_usage.csv").write_text(console_usage_csv())
    (FIXTURES / "key_map_names.yaml").write_text(
        "# The Console's usage CSV names keys, not ids: map the LiteLLM aliases to key names.\n"
        f"support-bot: {KEY_NAMES[K_GW]}\nlead-scorer: {KEY_NAMES[K_SCORE]}\n"
    )


if __name__ == "__main__":
    write_traces()
    write_exports()
    print(f"wrote {sorted(p.name for p in TRACES.iterdir())} and {sorted(p.name for p in FIXTURES.iterdir())}")
