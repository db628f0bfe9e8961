"""The root cause of a leak or a headless call, named from evidence in the trace's own spans.

A boundary's class says where context had to cross; the mechanism says what dropped it and
how to patch it: a thread pool, an asyncio task started outside the request, a scope that
closed before deferred work ran, a gateway's metadata allow-list, a receiver that extracts
traceparent but not baggage, a queue hop. Only the spans of one trace are read (thread.*,
code.*, span kinds, the remote-parent flag, timing, scopes, gateway metadata), so the
mechanism is a property of the per-trace finding and the shard merge stays exact. Without
evidence the answer is ``unknown``, never a guess.
"""

from __future__ import annotations

from functools import lru_cache

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from auditor.model import fast_pickle

if TYPE_CHECKING:
    from auditor.model import Span

UNKNOWN = "unknown"
THREAD_POOL = "thread-pool"
ASYNC_TASK = "async-task"
CLOSED_SCOPE = "closed-scope"
GATEWAY_ALLOW_LIST = "gateway-allow-list"
RECEIVER_NO_BAGGAGE = "receiver-no-baggage"
QUEUE_HOP = "queue-hop"
NAMES = (THREAD_POOL, ASYNC_TASK, CLOSED_SCOPE, GATEWAY_ALLOW_LIST, RECEIVER_NO_BAGGAGE, QUEUE_HOP, UNKNOWN)
CONFIDENCES = ("high", "medium", "low", "none")

SPAN_KIND_SERVER, SPAN_KIND_CLIENT, SPAN_KIND_PRODUCER, SPAN_KIND_CONSUMER = 2, 3, 4, 5

CODE_ATTRIBUTES = ("code.filepath", "code.file.path", "code.lineno", "code.line.number", "code.function", "code.function.name")
# LiteLLM logs only its StandardLoggingMetadata keys as metadata.<key> (conventions.md).
LITELLM_METADATA = (
    "metadata.user_api_key_hash", "metadata.user_api_key_alias", "metadata.user_api_key_team_id",
    "metadata.user_api_key_user_id", "metadata.user_api_key_end_user_id", "metadata.requester_metadata",
    "metadata.spend_logs_metadata", "metadata.requester_ip_address", "metadata.tags",
)
# What the evidence is read from; decoders keep these (auditor.compiled adds them to the projection).
ATTRIBUTES = CODE_ATTRIBUTES + LITELLM_METADATA + (
    "thread.id", "thread.name", "messaging.system", "messaging.operation", "messaging.operation.type",
    "messaging.destination.name", "metadata", "langfuse.trace.metadata", "openinference.span.kind",
)

# Thread names the standard library gives executor workers: ThreadPoolExecutor-0_1 (the
# default thread_name_prefix) and asyncio_0 (the event loop's default executor).
_POOL = re.compile(r"ThreadPoolExecutor-\d+_\d+")
_LOOP_EXECUTOR = re.compile(r"asyncio_\d+")
_MAIN = "MainThread"
# Timing is evidence only within one service (one clock), and only for a plausible deferral: a
# child starting more than an hour after its parent ended says the clocks disagree, not why.
MAX_DEFERRAL_NS = 3600 * 10**9

Location = tuple[str, int | None, str | None]


@fast_pickle
@dataclass(frozen=True, slots=True)
class Mechanism:
    """What dropped the context, how sure, on which evidence, and the patch that fixes it.
    ``location`` is the code (OTel code.* attributes) of the span where the patch goes."""

    name: str
    confidence: str  # high | medium | low | none (unknown)
    evidence: str
    patch: str
    location: Location | None = None

    def to_json(self) -> dict:
        loc = self.location
        return {"name": self.name, "confidence": self.confidence, "evidence": self.evidence, "patch": self.patch,
                "location": None if loc is None else {"filepath": loc[0], "lineno": loc[1], "function": loc[2]}}

    @classmethod
    def from_json(cls, d: Any) -> "Mechanism":
        """Read back from a result's JSON (hostile: a wrong shape raises TypeError/KeyError)."""
        if not isinstance(d, dict) or not isinstance(d.get("location") or {}, dict):
            raise TypeError("mechanism: expected an object")
        loc = d.get("location")
        return cls(str(d["name"]), str(d["confidence"]), str(d["evidence"]), str(d["patch"]),
                   None if loc is None else (str(loc["filepath"]), loc["lineno"], loc["function"]))

    def line(self) -> str:
        if self.name == UNKNOWN:
            return f"cause: unknown: {self.evidence} {self.patch}"
        return f"cause: {self.name} ({self.confidence}): {self.evidence} Patch: {self.patch}"


PATCHES = {
    THREAD_POOL: (
        "Run the work in a copy of the caller's context: ctx = contextvars.copy_context(); "
        "executor.submit(ctx.run, fn, *args) (for run_in_executor: loop.run_in_executor(None, ctx.run, fn, *args), "
        "or asyncio.to_thread, which copies it), or install opentelemetry-instrumentation-threading "
        "(ThreadingInstrumentor().instrument()) so executors carry the OTel context and its baggage."
    ),
    ASYNC_TASK: (
        "Start the task inside the request's context (asyncio.create_task copies the context current when it is "
        "called), or hand the task the context explicitly: asyncio.create_task(coro, context=ctx) with "
        "ctx = contextvars.copy_context() taken in the request, or attach the request's captured OTel context "
        "(context.attach(ctx)) at the top of the worker for each job."
    ),
    CLOSED_SCOPE: (
        "The block that set the key had closed when the child started: keep the using_attributes / "
        "propagate_attributes block open until the deferred work (callback, stream, background task) has run, "
        "or capture the context where the work is scheduled (contextvars.copy_context()) and run the callback in it, "
        "or pass the key explicitly on the call (metadata=...)."
    ),
    GATEWAY_ALLOW_LIST: (
        "LiteLLM logs only its allow-listed metadata keys: send the key inside metadata={'spend_logs_metadata': "
        "{'tenant_id': ...}} (or requester_metadata), as a tag (metadata={'tags': ['tenant_id:...']}), or map it to "
        "a key LiteLLM keeps (a team / end-user id), and read it from there."
    ),
    RECEIVER_NO_BAGGAGE: (
        "The receiver extracted traceparent but not the baggage that carries the key: extract both "
        "(OTEL_PROPAGATORS=tracecontext,baggage, or propagate.extract(headers) with a CompositePropagator of "
        "TraceContextTextMapPropagator and W3CBaggagePropagator) and copy baggage onto spans with "
        "opentelemetry-processor-baggage's BaggageSpanProcessor; the sender must inject baggage too. Where a "
        "gateway reads the key from a header instead, forward that header on this route."
    ),
    QUEUE_HOP: (
        "Carry the key in the message: on publish propagate.inject(headers) with baggage in OTEL_PROPAGATORS "
        "(tracecontext,baggage), on consume ctx = propagate.extract(message.headers) and attach it (or set the key "
        "from the message payload on the consumer span), plus BaggageSpanProcessor on the consumer."
    ),
    UNKNOWN: (
        "To name it next time, record thread.id / thread.name and code.* attributes on spans (a SpanProcessor "
        "that stamps them on start)."
    ),
}


def code_location(a) -> Location | None:
    """The source location OTel code attributes give (old and new names), or None."""
    path = a.get("code.filepath") or a.get("code.file.path")
    func = a.get("code.function") or a.get("code.function.name")
    if not path and not func:
        return None
    line = a.get("code.lineno") or a.get("code.line.number")
    if isinstance(line, str) and line.isdigit() and len(line) < 10:  # stringified by Zipkin, Jaeger, ClickHouse
        line = int(line)
    return _location(str(path or "")[:1000], line if isinstance(line, int) and not isinstance(line, bool) else None,
                     str(func)[:200] if func else None)


@lru_cache(maxsize=65_536)  # one tuple per place, shared by every finding there, not one per finding
def _location(path: str, line: int | None, func: str | None) -> Location:
    return (path, line, func)


def _text(v: Any, n: int = 80) -> str:
    return repr(str(v)[:n])


def _thread(s: Span) -> tuple[Any, str | None]:
    a = s.attributes
    name = a.get("thread.name")
    return a.get("thread.id"), (str(name) if name is not None else None)


def _executor(name: str | None) -> str | None:
    if name is None:
        return None
    if _LOOP_EXECUTOR.fullmatch(name):
        return f"the event loop's default executor (thread {_text(name)}: loop.run_in_executor)"
    if _POOL.fullmatch(name):
        return f"a ThreadPoolExecutor worker (thread {_text(name)})"
    return None


def _mk(name: str, confidence: str, evidence: str, at: Span | None) -> Mechanism:
    return Mechanism(name, confidence, evidence, PATCHES[name], code_location(at.attributes) if at is not None else None)


def _messaging(s: Span) -> str | None:
    v = s.attributes.get("messaging.system")
    return None if v is None else str(v)


def _gateway_metadata(s: Span) -> list[str]:
    a = s.attributes
    return [k for k in LITELLM_METADATA if k in a]


def _block(p: Span) -> str:
    """Which context API most likely set the key on the parent, from its attribute family."""
    a = p.attributes
    if "langfuse.trace.metadata" in a or any(k.startswith("langfuse.trace.metadata.") for k in a):
        return "a Langfuse propagate_attributes block"
    if "metadata" in a and "openinference.span.kind" in a:
        return "an OpenInference using_attributes / using_metadata block"
    return "the block or span that set the key"


def for_hop(p: Span, c: Span) -> Mechanism:
    """The mechanism of a leak at ``p -> c`` (``p`` carries the key, ``c`` does not)."""
    msg_p, msg_c = _messaging(p), _messaging(c)
    if p.kind == SPAN_KIND_PRODUCER or c.kind == SPAN_KIND_CONSUMER or msg_c:
        both = p.kind == SPAN_KIND_PRODUCER and c.kind == SPAN_KIND_CONSUMER
        system = msg_c or msg_p
        ev = (f"a message hop: {_kind(p)} {_text(p.name)} -> {_kind(c)} {_text(c.name)}"
              + (f" over {_text(system, 40)}" if system else "")
              + ": the trace context crossed, the key did not.")
        return _mk(QUEUE_HOP, "high" if both else "medium", ev, c)
    meta = _gateway_metadata(c)
    if meta:
        return _mk(GATEWAY_ALLOW_LIST, "high",
                   f"the gateway span {_text(c.name)} ({_text(c.scope, 40)}) logged its allow-listed metadata "
                   f"({', '.join(m.removeprefix('metadata.') for m in meta[:4])}) but not the key its caller "
                   f"{_text(p.name)} carried.", p)
    if c.remote_parent or (p.service != c.service and c.kind == SPAN_KIND_SERVER):
        # The remote-parent flag and a SERVER span of another service say the same: the trace
        # context crossed a service hop (formats that drop span flags keep the kinds).
        return _mk(RECEIVER_NO_BAGGAGE, "high",
                   f"{_text(c.name)} in {_text(c.service, 60)} continues the trace of {_text(p.name)} in "
                   f"{_text(p.service, 60)} across a service hop: traceparent was extracted, the key was not "
                   "(baggage not extracted, or not sent).", c)
    (pid, pname), (cid, cname) = _thread(p), _thread(c)
    pool = _executor(cname)
    if pool is not None and cname != pname:
        return _mk(THREAD_POOL, "high",
                   f"{_text(c.name)} ran in {pool}, {_text(p.name)} on thread {_text(pname)}: the span was "
                   "parented explicitly but the context holding the key was not copied into the thread.", p)
    if pid is not None and cid is not None and str(pid) != str(cid):
        return _mk(THREAD_POOL, "medium",
                   f"{_text(c.name)} ran on another thread ({_text(cid, 40)}, {_text(cname)}) than "
                   f"{_text(p.name)} ({_text(pid, 40)}): the context holding the key was not copied.", p)
    if p.service == c.service and p.end_ns > 0 and 0 < c.start_ns - p.end_ns <= MAX_DEFERRAL_NS:
        return _mk(CLOSED_SCOPE, "high",
                   f"{_text(c.name)} started {_gap(c.start_ns - p.end_ns)} after its parent "
                   f"{_text(p.name)} ended: deferred work (a callback, stream or task) ran after {_block(p)} "
                   "had closed.", p)
    return Mechanism(UNKNOWN, "none",
                     "no thread, timing, span-kind, remote-parent or gateway evidence distinguishes the cause at this hop.",
                     PATCHES[UNKNOWN])


def for_headless(s: Span) -> Mechanism:
    """The mechanism of an LLM call that is the root of its own trace."""
    _tid, name = _thread(s)
    pool = _executor(name)
    if pool is not None:
        return _mk(THREAD_POOL, "high",
                   f"the call ran in {pool} with no parent: the request's context was not copied into the thread.", s)
    if name == _MAIN:
        return _mk(ASYNC_TASK, "low",
                   "the call ran on the main (event loop) thread with no parent, not in a worker thread: work "
                   "scheduled outside the request's context, most often an asyncio task created outside it "
                   "(a worker started at startup); a script's call looks the same (see TRACE006).", s)
    if name is not None:
        return _mk(THREAD_POOL, "medium",
                   f"the call ran on thread {_text(name)} (not the main thread) with no parent: a thread started "
                   "without the request's context.", s)
    return Mechanism(UNKNOWN, "none",
                     "the span records no thread (thread.name) or other evidence of how its context was lost.",
                     PATCHES[UNKNOWN])


def in_job(m: Mechanism) -> Mechanism:
    """A headless call's mechanism where its service serves no request (TRACE006): on the main
    thread that is the job's own call, not a task that lost a request's context."""
    if m.name != ASYNC_TASK:
        return m
    return Mechanism(UNKNOWN, "none", "the call ran on the main thread of a service that serves no request: a job's "
                     "own call; no request context was there to lose.", PATCHES[UNKNOWN], m.location)


def _gap(ns: int) -> str:
    if ns >= 1_000_000:
        return f"{ns // 1_000_000} ms"
    return f"{ns // 1000} µs" if ns >= 1000 else f"{ns} ns"


def _kind(s: Span) -> str:
    return {1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}.get(s.kind, "UNSPECIFIED")
