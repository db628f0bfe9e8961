"""Shared pieces of the dialect sample generators (``generate_dialects_*.py``).

* ``FakeProvider``: a real HTTP server on 127.0.0.1 answering OpenAI ``/v1/chat/completions``
  and Anthropic ``/v1/messages`` with usage that includes cache tokens, and accepting OTLP/HTTP
  protobuf exports (``.../v1/traces``) so SDKs that export on their own (Langfuse) can be
  captured. Token counts come from a ``[[usage:...]]`` marker in the last user message, so the
  committed samples carry known counts:
  OpenAI ``[[usage:PROMPT:CACHED:COMPLETION]]`` (prompt includes cached, as OpenAI reports),
  Anthropic ``[[usage:INPUT:CACHE_READ:CACHE_WRITE:OUTPUT]]`` (input excludes cache, as Anthropic),
  plus ``[[search:N]]`` for N server-side web searches (``usage.server_tool_use``).
  A ``<<script:JSON>>`` marker (system prompt first, then user messages) makes a real tool loop:
  JSON is a list of turns ``{"usage": [...], "tools": [[NAME, {ARGS}], ...]}``; the answer to a
  request is turn k, k = the assistant tool-call turns already in the conversation, so an agent
  calls the tools, gets their results and is answered again; the last turn (no tools) ends it.
  OpenAI chat completions and Anthropic messages may be streamed (``"stream": true``): SSE as each
  provider sends it, usage in OpenAI's last chunk and in Anthropic's message_start / message_delta.
* ``install_clock``: a fake clock (1 ms per reading) so timestamps nest and never tie.
* ``SeededIds``: reproducible trace and span ids.
* ``write``: spans (or OTLP protobuf requests) to ``sample_traces/dialects/NAME.otlp.json``.

The generators need the ``[samples]`` extra, in their own virtualenv:
    python -m venv /work/venv-samples && /work/venv-samples/bin/pip install -e '.[samples]'
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace.id_generator import IdGenerator

from auditor.ingest.otlp_json_writer import to_otlp_json

OUT = Path(__file__).resolve().parent / "dialects"
T0 = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z
CREATED = 1_767_225_600

_USAGE = re.compile(r"\[\[usage:([0-9:]+)\]\]")
_SEARCH = re.compile(r"\[\[search:([0-9]+)\]\]")
_SCRIPT = re.compile(r"<<script:(.*?)>>", re.S)


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


class Clock:
    def __init__(self):
        self.t = T0
        self._lock = threading.Lock()

    def __call__(self) -> int:
        with self._lock:
            self.t += 1_000_000
            return self.t


def install_clock() -> Clock:
    """Make the OTel SDK read our clock for span start/end times."""
    import opentelemetry.sdk.trace as sdk_trace

    clock = Clock()
    sdk_trace.time_ns = clock
    return clock


def _last_user_text(messages) -> str:
    for m in reversed(messages or []):
        if m.get("role") == "user":
            c = m.get("content")
            if isinstance(c, list):
                return " ".join(p.get("text", "") for p in c if isinstance(p, dict))
            return str(c)
    return ""


def _usage_marker(text: str, n: int, default: list[int]) -> list[int]:
    m = _USAGE.search(text)
    if not m:
        return default
    nums = [int(x) for x in m.group(1).split(":")]
    return (nums + [0] * n)[:n]


class FakeProvider:
    """OpenAI- and Anthropic-shaped answers plus an OTLP/HTTP sink, on 127.0.0.1."""

    def __init__(self):
        self.otlp: list[bytes] = []
        self.requests: list[tuple[str, dict, dict]] = []
        provider = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):  # keep generator output quiet
                pass

            def do_GET(self):
                self._send(200, {"status": "ok"})

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                path = self.path.split("?", 1)[0]
                if path.endswith("/v1/traces"):
                    if (self.headers.get("content-encoding") or "").lower() == "gzip":
                        body = gzip.decompress(body)
                    provider.otlp.append(body)
                    self._send(200, b"", "application/x-protobuf")
                    return
                try:
                    req = json.loads(body or b"{}")
                except ValueError:
                    req = {}
                provider.requests.append((path, dict(self.headers), req))
                if path.endswith("/chat/completions") and req.get("stream"):
                    self._send(200, openai_stream(req), "text/event-stream")
                elif path.endswith("/chat/completions"):
                    self._send(200, openai_answer(req))
                elif path.endswith("/messages") and req.get("stream"):
                    self._send(200, anthropic_stream(req), "text/event-stream")
                elif path.endswith("/messages"):
                    self._send(200, anthropic_answer(req))
                else:
                    self._send(200, {})

            def _send(self, code, payload, ctype="application/json"):
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("content-type", ctype)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def otlp_requests(self) -> list[ExportTraceServiceRequest]:
        out = []
        for body in self.otlp:
            req = ExportTraceServiceRequest()
            req.ParseFromString(body)
            out.append(req)
        return out


def _texts(content) -> str:
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return str(content or "")


def script_turn(req: dict) -> dict | None:
    """The scripted turn this request is at (see the module docstring), or None without a script."""
    messages = req.get("messages") or []
    system = [_texts(req.get("system"))] + [_texts(m.get("content")) for m in messages if m.get("role") in ("system", "developer")]
    users = [_texts(m.get("content")) for m in messages if m.get("role") == "user"]
    for text in system + users:
        m = _SCRIPT.search(text)
        if m:
            break
    else:
        return None
    turns = json.loads(m.group(1))
    done = 0
    for msg in messages:
        if msg.get("role") != "assistant":
            continue
        content = msg.get("content")
        if msg.get("tool_calls") or (isinstance(content, list) and any(isinstance(p, dict) and p.get("type") == "tool_use" for p in content)):
            done += 1
    return turns[min(done, len(turns) - 1)]


def _call_id(req: dict, i: int) -> str:
    return "call_" + hashlib.sha1((json.dumps(req, sort_keys=True) + str(i)).encode()).hexdigest()[:12]


def _rid(prefix: str, req: dict) -> str:
    return prefix + hashlib.sha1(json.dumps(req, sort_keys=True).encode()).hexdigest()[:16]


def openai_answer(req: dict) -> dict:
    turn = script_turn(req)
    if turn is not None:
        prompt, cached, completion = (list(turn.get("usage") or []) + [0, 0, 0])[:3]
    else:
        prompt, cached, completion = _usage_marker(_last_user_text(req.get("messages")), 3, [1000, 0, 100])
    message: dict = {"role": "assistant", "content": "Done."}
    finish = "stop"
    if turn and turn.get("tools"):
        message = {"role": "assistant", "content": None, "tool_calls": [
            {"id": _call_id(req, i), "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}
            for i, (name, args) in enumerate(turn["tools"])
        ]}
        finish = "tool_calls"
    elif turn and turn.get("text"):
        message["content"] = turn["text"]
    return {
        "id": _rid("chatcmpl-", req),
        "object": "chat.completion",
        "created": CREATED,
        "model": req.get("model", "gpt-4o-mini"),
        "system_fingerprint": "fp_sample",
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        },
    }


def openai_stream(req: dict) -> bytes:
    """The same answer as server-sent chunks, as OpenAI streams it (usage in a last, empty chunk)."""
    full = openai_answer(req)
    msg, finish = full["choices"][0]["message"], full["choices"][0]["finish_reason"]
    head = {k: full[k] for k in ("id", "created", "model", "system_fingerprint")}

    def chunk(delta, fin=None, usage=None, choices=True):
        c = {**head, "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "finish_reason": fin, "logprobs": None}] if choices else []}
        if usage is not None:
            c["usage"] = usage
        return "data: " + json.dumps(c) + "\n\n"

    parts = [chunk({"role": "assistant", "content": ""})]
    if msg.get("tool_calls"):
        for i, tc in enumerate(msg["tool_calls"]):
            parts.append(chunk({"tool_calls": [{"index": i, "id": tc["id"], "type": "function", "function": {"name": tc["function"]["name"], "arguments": ""}}]}))
            parts.append(chunk({"tool_calls": [{"index": i, "function": {"arguments": tc["function"]["arguments"]}}]}))
    else:
        parts.append(chunk({"content": msg["content"]}))
    parts.append(chunk({}, finish))
    if (req.get("stream_options") or {}).get("include_usage"):
        parts.append(chunk(None, usage=full["usage"], choices=False))
    parts.append("data: [DONE]\n\n")
    return "".join(parts).encode()


def anthropic_answer(req: dict) -> dict:
    turn = script_turn(req)
    text = _last_user_text(req.get("messages"))
    if turn is not None:
        inp, cread, cwrite, out = (list(turn.get("usage") or []) + [0, 0, 0, 0])[:4]
    else:
        inp, cread, cwrite, out = _usage_marker(text, 4, [1000, 0, 0, 100])
    searches = _SEARCH.search(text or "")
    extra = {"server_tool_use": {"web_search_requests": int(searches.group(1))}} if searches else {}
    content: list = [{"type": "text", "text": (turn or {}).get("text") or "Done."}]
    stop = "end_turn"
    if turn and turn.get("tools"):
        content = [{"type": "tool_use", "id": "toolu_" + _call_id(req, i)[5:], "name": name, "input": args} for i, (name, args) in enumerate(turn["tools"])]
        stop = "tool_use"
    return {
        "id": _rid("msg_", req),
        "type": "message",
        "role": "assistant",
        "model": req.get("model", "claude-sonnet-4-5"),
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {
            "input_tokens": inp,
            "cache_read_input_tokens": cread,
            "cache_creation_input_tokens": cwrite,
            "output_tokens": out,
            **extra,
        },
    }


def anthropic_stream(req: dict) -> bytes:
    """The same answer as Anthropic's server-sent events (usage in message_start and message_delta)."""
    full = anthropic_answer(req)
    usage = full["usage"]
    events = [("message_start", {"type": "message_start", "message": {**full, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}})]
    for i, block in enumerate(full["content"]):
        if block["type"] == "text":
            events += [
                ("content_block_start", {"type": "content_block_start", "index": i, "content_block": {"type": "text", "text": ""}}),
                ("content_block_delta", {"type": "content_block_delta", "index": i, "delta": {"type": "text_delta", "text": block["text"]}}),
            ]
        else:
            events += [
                ("content_block_start", {"type": "content_block_start", "index": i, "content_block": {**block, "input": {}}}),
                ("content_block_delta", {"type": "content_block_delta", "index": i, "delta": {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}}),
            ]
        events.append(("content_block_stop", {"type": "content_block_stop", "index": i}))
    events += [
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": full["stop_reason"], "stop_sequence": None}, "usage": {"output_tokens": usage["output_tokens"]}}),
        ("message_stop", {"type": "message_stop"}),
    ]
    return "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events).encode()


def write_spans(name: str, spans) -> Path:
    """Finished SDK spans -> OTLP JSON, sorted by trace and start time."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    spans = sorted(spans, key=lambda s: (s.context.trace_id, s.start_time, s.context.span_id))
    return write_request(name, encode_spans(spans))


def write_request(name: str, msg: ExportTraceServiceRequest) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.otlp.json"
    path.write_text(json.dumps(to_otlp_json(msg), indent=1) + "\n")
    return path


def merge_requests(reqs) -> ExportTraceServiceRequest:
    out = ExportTraceServiceRequest()
    for r in reqs:
        out.resource_spans.extend(r.resource_spans)
    return out
