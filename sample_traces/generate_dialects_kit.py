"""Shared pieces of the dialect sample generators (``generate_dialects_*.py``).

* ``FakeProvider``: a real HTTP server on 127.0.0.1 answering OpenAI ``/v1/chat/completions``
  and Anthropic ``/v1/messages`` with usage that includes cache tokens, and accepting OTLP/HTTP
  protobuf exports (``.../v1/traces``) so SDKs that export on their own (Langfuse) can be
  captured. Token counts come from a ``[[usage:...]]`` marker in the last user message, so the
  committed samples carry known counts:
  OpenAI ``[[usage:PROMPT:CACHED:COMPLETION]]`` (prompt includes cached, as OpenAI reports),
  Anthropic ``[[usage:INPUT:CACHE_READ:CACHE_WRITE:OUTPUT]]`` (input excludes cache, as Anthropic),
  plus ``[[search:N]]`` for N server-side web searches (``usage.server_tool_use``).
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
                if path.endswith("/chat/completions"):
                    self._send(200, openai_answer(req))
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


def _rid(prefix: str, req: dict) -> str:
    return prefix + hashlib.sha1(json.dumps(req, sort_keys=True).encode()).hexdigest()[:16]


def openai_answer(req: dict) -> dict:
    prompt, cached, completion = _usage_marker(_last_user_text(req.get("messages")), 3, [1000, 0, 100])
    return {
        "id": _rid("chatcmpl-", req),
        "object": "chat.completion",
        "created": CREATED,
        "model": req.get("model", "gpt-4o-mini"),
        "system_fingerprint": "fp_sample",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Done."}, "finish_reason": "stop", "logprobs": None}],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        },
    }


def anthropic_answer(req: dict) -> dict:
    text = _last_user_text(req.get("messages"))
    inp, cread, cwrite, out = _usage_marker(text, 4, [1000, 0, 0, 100])
    searches = _SEARCH.search(text)
    extra = {"server_tool_use": {"web_search_requests": int(searches.group(1))}} if searches else {}
    return {
        "id": _rid("msg_", req),
        "type": "message",
        "role": "assistant",
        "model": req.get("model", "claude-sonnet-4-5"),
        "content": [{"type": "text", "text": "Done."}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": inp,
            "cache_read_input_tokens": cread,
            "cache_creation_input_tokens": cwrite,
            "output_tokens": out,
            **extra,
        },
    }


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
