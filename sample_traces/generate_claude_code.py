"""Generate Claude Code telemetry samples with the real OpenTelemetry SDK (logs and traces).

    python sample_traces/generate_claude_code.py     # rewrites sample_traces/claude_code/*

What Claude Code exports, as documented (read 2026-11-22):

- https://code.claude.com/docs/en/monitoring-usage (also served as
  https://docs.anthropic.com/en/docs/claude-code/monitoring-usage):
  * Standard attributes on all metrics and events: ``session.id``, ``app.version`` (off by
    default), ``organization.id``, ``user.account_uuid``, ``user.account_id``, ``user.id``
    (anonymous installation id), ``user.email`` (OAuth only), ``terminal.type``. Events also
    carry ``prompt.id`` (one UUID per user prompt; never on metrics).
  * Events go over the logs signal. ``claude_code.api_request`` (one per model request):
    ``event.name`` = "api_request", ``event.timestamp`` (ISO 8601), ``event.sequence``,
    ``model``, ``cost_usd`` (an estimate), ``duration_ms``, ``input_tokens``, ``output_tokens``,
    ``cache_read_tokens``, ``cache_creation_tokens``, ``request_id``, ``speed``, ``query_source``,
    ``effort``. Others: ``claude_code.user_prompt``, ``claude_code.tool_result``,
    ``claude_code.api_error`` (model, error, status_code, duration_ms, attempt), ...
  * ``OTEL_RESOURCE_ATTRIBUTES`` (doc example ``department=engineering,team.id=platform,
    cost_center=eng-123``) "will be included in all metrics and events": it is the resource.
  * Traces (beta, ``CLAUDE_CODE_ENHANCED_TELEMETRY_BETA=1``): a ``claude_code.interaction``
    root per prompt with ``claude_code.llm_request`` and ``claude_code.tool`` children (a tool
    has ``claude_code.tool.blocked_on_user`` and ``claude_code.tool.execution``). Every span
    carries the standard attributes and ``span.type`` = its name. ``llm_request``: ``model``,
    ``gen_ai.system`` = anthropic, ``gen_ai.request.model``, ``input_tokens``,
    ``output_tokens``, ``cache_read_tokens``, ``cache_creation_tokens``, ``request_id``,
    ``gen_ai.response.id``, ``duration_ms``, ``ttft_ms``, ``attempt``, ``success``,
    ``stop_reason``; no cost. ``interaction``: ``user_prompt`` (redacted),
    ``user_prompt_length``, ``interaction.sequence``, ``interaction.duration_ms``.
- A public capture of real exports ("observed-telemetry.md - claude-code", Claude Code
  2.1.289): log scope ``com.anthropic.claude_code.events``, log body = "claude_code.<event>"
  with ``event.name`` the bare name, severity unset; span scope
  ``com.anthropic.claude_code.tracing``; resource ``service.name`` = claude-code; records
  written during a traced prompt carry the active span's trace and span ids.
- Resource attributes of Claude Code (Bardin08/cc-otel docs/metrics-reference.md, citing the
  same page): service.name=claude-code, service.version, os.type, os.version, host.arch.

Token counts follow Anthropic's usage block: ``input_tokens`` EXCLUDES cache reads and writes.

The sample: five developers and one API-key session (no user), seven sessions. Dave's machine
lacks the administrator's team and cost_center resource attributes; Erin's has none at all;
the API-key session carries no user. One of Bob's records reports a cost that disagrees
with list price. Sessions a2 and d1 also export beta traces; their api_request records carry
the llm_request span's trace context, so logs + traces together must count each call once.
Ids and timestamps are fixed so the committed files are reproducible.
"""

from __future__ import annotations

import base64
import json
import os
import random
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

from google.protobuf.json_format import MessageToDict
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator

OUT = Path(__file__).resolve().parent / "claude_code"
T0 = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z
VERSION = "2.0.14"
EVENTS_SCOPE = "com.anthropic.claude_code.events"
TRACING_SCOPE = "com.anthropic.claude_code.tracing"
ORG = "9f1c2d3e-0000-4000-8000-00000000a11c"

SONNET, HAIKU, OPUS = "claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001", "claude-opus-4-1-20250805"
# USD per million tokens (Anthropic list price): input, output, cache read, cache write (5 min).
LIST = {
    SONNET: (Decimal(3), Decimal(15), Decimal("0.30"), Decimal("3.75")),
    HAIKU: (Decimal(1), Decimal(5), Decimal("0.10"), Decimal("1.25")),
    OPUS: (Decimal(15), Decimal(75), Decimal("1.5"), Decimal("18.75")),
}


@dataclass(frozen=True)
class Call:
    model: str
    input: int  # uncached input (Anthropic convention)
    output: int
    cache_read: int
    cache_creation: int
    duration_ms: int
    query_source: str = "repl_main_thread"
    misreported: bool = False  # the record's cost_usd disagrees with list price

    def list_price(self) -> Decimal:
        i, o, cr, cw = LIST[self.model]
        return (self.input * i + self.output * o + self.cache_read * cr + self.cache_creation * cw) / 1_000_000

    def reported(self) -> float:
        if self.misreported:  # priced cache reads as fresh input: a 10x overestimate on them
            i, o, cr, cw = LIST[self.model]
            return float((self.input * i + self.output * o + self.cache_read * i + self.cache_creation * cw) / 1_000_000)
        return float(self.list_price())


@dataclass(frozen=True)
class Session:
    key: str
    developer: dict  # standard user attributes (user.email, user.account_uuid, ...)
    resource_attributes: str  # the machine's OTEL_RESOURCE_ATTRIBUTES
    terminal: str
    prompts: tuple[tuple[Call, ...], ...]
    traced: bool = False  # CLAUDE_CODE_ENHANCED_TELEMETRY_BETA=1 on this machine


def _dev(name: str, n: int) -> dict:
    return {
        "user.email": f"{name}@example.com",
        "user.account_uuid": f"0000000{n}-aaaa-4bbb-8ccc-{name:0>12}"[:36],
        "user.account_id": f"user_01{name.upper():X<10}",
        "organization.id": ORG,
        "user.id": f"{n:064x}",
    }


ALICE, BOB, CAROL, DAVE, ERIN = (_dev(n, i) for i, n in enumerate(("alice", "bob", "carol", "dave", "erin"), 1))
PLATFORM_API = "department=engineering,team.id=platform,cost_center=eng-100,repository=acme/api"

SESSIONS: tuple[Session, ...] = (
    Session("a1", ALICE, PLATFORM_API, "vscode", (
        (Call(SONNET, 1200, 800, 20000, 4000, 5200), Call(HAIKU, 800, 50, 0, 0, 600, "compact")),
        (Call(SONNET, 300, 1500, 24000, 0, 7400), Call(SONNET, 50, 200, 24500, 1000, 2100)),
    )),
    Session("a2", ALICE, PLATFORM_API, "vscode", (
        (Call(SONNET, 200, 900, 25000, 2000, 6100), Call(SONNET, 100, 400, 27000, 0, 3300)),
    ), traced=True),
    Session("b1", BOB, "department=engineering,team.id=platform,cost_center=eng-100,repository=acme/web", "iTerm.app", (
        (Call(HAIKU, 5000, 700, 10000, 3000, 1900), Call(HAIKU, 400, 300, 13000, 0, 1200, misreported=True)),
    )),
    Session("c1", CAROL, "department=data,team.id=data,cost_center=eng-200,repository=acme/etl", "tmux", (
        (Call(OPUS, 2000, 4000, 60000, 20000, 41000),),
        (Call(OPUS, 500, 6000, 80000, 5000, 52000), Call(OPUS, 300, 3000, 85000, 0, 30500)),
    )),
    Session("d1", DAVE, "repository=acme/api", "cursor", (
        (Call(SONNET, 1000, 1200, 15000, 5000, 8800), Call(SONNET, 200, 600, 20000, 0, 4100)),
    ), traced=True),
    Session("e1", ERIN, "", "vscode", (
        (Call(SONNET, 3000, 2000, 0, 8000, 12000), Call(SONNET, 100, 500, 8000, 0, 2500)),
    )),
    # An API key on a shared CI runner: no OAuth, so no user.email / account / organization.
    Session("k1", {"user.id": f"{99:064x}"}, PLATFORM_API, "non-interactive", (
        (Call(HAIKU, 2000, 300, 5000, 0, 1500), Call(HAIKU, 1000, 200, 7000, 1000, 1300)),
    )),
)


class SeededIds(IdGenerator):
    def __init__(self, seed: int):
        self._r = random.Random(seed)
        self._lock = threading.Lock()

    def generate_span_id(self) -> int:
        with self._lock:
            return self._r.getrandbits(64) or 1

    def generate_trace_id(self) -> int:
        with self._lock:
            return self._r.getrandbits(128) or 1


def session_id(s: Session) -> str:
    return f"5e55{s.key.encode().hex():0>4}-0000-4000-8000-{int.from_bytes(s.key.encode(), 'big'):012x}"


def resource(s: Session) -> Resource:
    """The machine's resource, parsed from its OTEL_RESOURCE_ATTRIBUTES by the SDK itself."""
    old = os.environ.get("OTEL_RESOURCE_ATTRIBUTES")
    os.environ["OTEL_RESOURCE_ATTRIBUTES"] = s.resource_attributes
    try:
        return Resource.create({
            "service.name": "claude-code",
            "service.version": VERSION,
            "service.instance.id": f"{s.developer['user.id'][-8:]}-{s.key}",
            "os.type": "darwin" if s.terminal != "non-interactive" else "linux",
            "host.arch": "arm64" if s.terminal != "non-interactive" else "amd64",
        })
    finally:
        if old is None:
            os.environ.pop("OTEL_RESOURCE_ATTRIBUTES", None)
        else:
            os.environ["OTEL_RESOURCE_ATTRIBUTES"] = old


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def emit(log_processors, span_processors=()) -> None:
    """Emit every session's events (and beta spans) through the given SDK processors.

    One LoggerProvider (and TracerProvider) per session, as each developer's machine runs its
    own Claude Code with its own resource.
    """
    t = T0
    for n, s in enumerate(SESSIONS):
        res = resource(s)
        lp = LoggerProvider(resource=res)
        for p in log_processors:
            lp.add_log_record_processor(p)
        logger = lp.get_logger(EVENTS_SCOPE, VERSION)
        tp = TracerProvider(resource=res, id_generator=SeededIds(100 + n))
        for p in span_processors:
            tp.add_span_processor(p)
        tracer = tp.get_tracer(TRACING_SCOPE, VERSION)
        std = {"session.id": session_id(s), **s.developer, "terminal.type": s.terminal}
        seq = 0

        def event(name: str, at: int, attrs: dict) -> None:
            nonlocal seq
            seq += 1
            logger.emit(
                timestamp=at,
                observed_timestamp=at,
                body=f"claude_code.{name}",
                attributes={**std, "event.name": name, "event.timestamp": _iso(at), "event.sequence": seq, **attrs},
            )

        for pi, prompt in enumerate(s.prompts):
            prompt_id = f"{n:08x}-{pi:04x}-4000-8000-{n * 100 + pi:012x}"
            ev = {"prompt.id": prompt_id}
            t += 1_000_000_000
            start = t
            event("user_prompt", t, {**ev, "prompt_length": 40 + 7 * pi, "prompt": "<REDACTED>"})
            root = tracer.start_span("claude_code.interaction", start_time=t) if s.traced else None
            if root is not None:
                root.set_attributes({**std, "span.type": "claude_code.interaction", "user_prompt": "<REDACTED>",
                                     "user_prompt_length": 40 + 7 * pi, "interaction.sequence": pi + 1})
            for ci, c in enumerate(prompt):
                t += 50_000_000
                begin, t = t, t + c.duration_ms * 1_000_000
                rid = f"req_011{s.key}{pi}{ci}" + "x" * 12
                token = None
                if root is not None:
                    llm = tracer.start_span("claude_code.llm_request", context=trace.set_span_in_context(root), start_time=begin)
                    llm.set_attributes({
                        **std, "span.type": "claude_code.llm_request", "model": c.model, "gen_ai.system": "anthropic",
                        "gen_ai.request.model": c.model, "query_source": c.query_source, "speed": "normal",
                        "llm_request.context": "interaction", "duration_ms": c.duration_ms, "ttft_ms": c.duration_ms // 4,
                        "input_tokens": c.input, "output_tokens": c.output, "cache_read_tokens": c.cache_read,
                        "cache_creation_tokens": c.cache_creation, "request_id": rid, "gen_ai.response.id": rid,
                        "attempt": 1, "success": True, "stop_reason": "end_turn" if ci == len(prompt) - 1 else "tool_use",
                    })
                    token = otel_context.attach(trace.set_span_in_context(llm))
                event("api_request", t, {
                    **ev, "model": c.model, "cost_usd": c.reported(), "duration_ms": c.duration_ms,
                    "input_tokens": c.input, "output_tokens": c.output, "cache_read_tokens": c.cache_read,
                    "cache_creation_tokens": c.cache_creation, "request_id": rid, "speed": "normal",
                    "query_source": c.query_source,
                })
                if root is not None:
                    otel_context.detach(token)
                    llm.end(end_time=t)
            if s.key == "d1":  # a failed request: an event, not a cost
                t += 10_000_000
                event("api_error", t, {**ev, "model": SONNET, "error": "Overloaded", "status_code": 529,
                                       "duration_ms": 900, "attempt": 1, "speed": "normal"})
            t += 20_000_000
            tool_start = t
            t += 300_000_000
            event("tool_result", t, {**ev, "tool_name": "Edit", "tool_use_id": f"toolu_{s.key}{pi}", "success": "true",
                                     "duration_ms": 300, "decision_type": "accept", "decision_source": "config"})
            if root is not None:
                ctx = trace.set_span_in_context(root)
                tool = tracer.start_span("claude_code.tool", context=ctx, start_time=tool_start)
                tool.set_attributes({**std, "span.type": "claude_code.tool", "tool_name": "Edit", "duration_ms": 300})
                tctx = trace.set_span_in_context(tool)
                blocked = tracer.start_span("claude_code.tool.blocked_on_user", context=tctx, start_time=tool_start)
                blocked.set_attributes({**std, "span.type": "claude_code.tool.blocked_on_user", "duration_ms": 0,
                                        "decision": "accept", "source": "config"})
                blocked.end(end_time=tool_start + 1_000_000)
                ex = tracer.start_span("claude_code.tool.execution", context=tctx, start_time=tool_start + 1_000_000)
                ex.set_attributes({**std, "span.type": "claude_code.tool.execution", "duration_ms": 299, "success": True})
                ex.end(end_time=t)
                tool.end(end_time=t)
                root.set_attribute("interaction.duration_ms", (t - start) // 1_000_000)
                root.end(end_time=t)
        lp.force_flush()
        tp.force_flush()


def logs_json(msg) -> dict:
    """ExportLogsServiceRequest -> OTLP JSON (hex ids, integer enums), as the file exporter writes."""
    doc = MessageToDict(msg, use_integers_for_enums=True, preserving_proto_field_name=False)
    for rl in doc.get("resourceLogs", ()):
        for sl in rl.get("scopeLogs", ()):
            for r in sl.get("logRecords", ()):
                for f in ("traceId", "spanId"):
                    if r.get(f):
                        r[f] = base64.b64decode(r[f]).hex()
    return doc


def generate() -> tuple[object, object]:
    """(ExportLogsServiceRequest, ExportTraceServiceRequest) of the whole sample."""
    logs, spans = InMemoryLogRecordExporter(), InMemorySpanExporter()
    emit([SimpleLogRecordProcessor(logs)], [SimpleSpanProcessor(spans)])
    return encode_logs(logs.get_finished_logs()), encode_spans(spans.get_finished_spans())


def expected_costs() -> dict[str, Decimal]:
    """List-price spend per session key, from the token counts above (the tests pin literals)."""
    return {s.key: sum((c.list_price() for p in s.prompts for c in p), Decimal(0)) for s in SESSIONS}


if __name__ == "__main__":
    from auditor.ingest.otlp_json_writer import to_otlp_json

    OUT.mkdir(parents=True, exist_ok=True)
    log_msg, trace_msg = generate()
    (OUT / "logs.otlp.json").write_text(json.dumps(logs_json(log_msg), indent=1) + "\n")
    (OUT / "logs.pb").write_bytes(log_msg.SerializeToString(deterministic=True))
    (OUT / "traces.otlp.json").write_text(json.dumps(to_otlp_json(trace_msg), indent=1) + "\n")
    (OUT / "traces.pb").write_bytes(trace_msg.SerializeToString(deterministic=True))
    for k, v in expected_costs().items():
        print(f"{k}: ${v}")
    print(f"wrote {sorted(p.name for p in OUT.iterdir())}")
