"""Helpers for the sidecar tests (no tests here): a real ``auditor serve`` subprocess on free
loopback ports, and spans made by the real OpenTelemetry SDK."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from click.testing import CliRunner
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import SpanKind

from auditor.cli import cli

ROOT = Path(__file__).resolve().parent.parent

LLM_ATTRS = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.usage.input_tokens": 1200,
    "gen_ai.usage.output_tokens": 150,
}


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


def _provider(seed: int, service: str):
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}), id_generator=SeededIds(seed))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def shop_spans(n_traces: int, seed: int = 1):
    """Traces of a chat service: the handler mints tenant_id/workflow_id; some LLM calls get
    them (clean), some lose them below a planner step (leak), some run headless (thread pool)."""
    provider, exporter = _provider(seed, "shop")
    app = provider.get_tracer("shop.app")
    llm = provider.get_tracer("opentelemetry.instrumentation.openai")
    for i in range(n_traces):
        keys = {"tenant_id": f"tenant-{i % 3}", "workflow_id": f"wf-{i % 2}"}
        with app.start_as_current_span("POST /chat", kind=SpanKind.SERVER, attributes=keys):
            if i % 3 == 0:
                with app.start_as_current_span("plan", attributes=keys):
                    with llm.start_as_current_span("chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes={**LLM_ATTRS, **keys}):
                        pass
            elif i % 3 == 1:
                with app.start_as_current_span("plan", attributes=keys):
                    with llm.start_as_current_span("chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes=LLM_ATTRS):
                        pass
            else:
                with app.start_as_current_span("answer", attributes=keys):
                    pass
        if i % 4 == 0:  # a thread-pool call that lost the context entirely: a headless LLM call
            with llm.start_as_current_span("chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes=LLM_ATTRS):
                pass
    provider.shutdown()
    return list(exporter.get_finished_spans())


def llm_only_spans(n: int, seed: int):
    """Every span an LLM call (so the report's calls list names every received span)."""
    provider, exporter = _provider(seed, "batch")
    llm = provider.get_tracer("opentelemetry.instrumentation.openai")
    for i in range(n):
        with llm.start_as_current_span("chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes={**LLM_ATTRS, "tenant_id": f"t{i % 7}"}):
            pass
    provider.shutdown()
    return list(exporter.get_finished_spans())


def write_pb(path: Path, spans) -> Path:
    path.write_bytes(encode_spans(spans).SerializeToString())
    return path


def check_json(*paths: Path) -> dict:
    """``auditor check --format json`` on files, through the CLI."""
    out = CliRunner().invoke(cli, ["check", "--format", "json", *map(str, paths)])
    assert out.exit_code in (0, 1), out.output
    return json.loads(out.stdout)


def without_run(report: dict) -> dict:
    return {k: v for k, v in report.items() if k != "run"}


class Sidecar:
    """``python -m auditor serve`` as a real process; ports come from its listen.json."""

    def __init__(self, data_dir: Path, *args: str, trace_idle: float = 0.3, grpc_port: int = 0, http_port: int = 0,
                 workers: int = 1):
        self.data_dir = data_dir
        self.args = (*args, "--workers", str(workers))
        self.trace_idle = trace_idle
        self.grpc_port = grpc_port
        self.http_port = http_port
        self.proc: subprocess.Popen | None = None
        self.headers: dict[str, str] = {}

    def start(self) -> "Sidecar":
        listen = self.data_dir / "listen.json"
        listen.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "auditor", "serve", "--data-dir", str(self.data_dir),
             "--grpc-port", str(self.grpc_port), "--http-port", str(self.http_port),
             "--trace-idle", str(self.trace_idle), *self.args],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if listen.exists():
                try:
                    info = json.loads(listen.read_text())
                except json.JSONDecodeError:
                    info = {}
                if info.get("pid") == self.proc.pid:
                    self.grpc_port, self.http_port = info["grpc"], info["http"]
                    return self
            if self.proc.poll() is not None:
                raise AssertionError(f"sidecar exited {self.proc.returncode}: {self.proc.stderr.read().decode()}")
            time.sleep(0.05)
        raise AssertionError("sidecar did not start")

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def get(self, path: str, headers: dict | None = None) -> httpx.Response:
        return httpx.get(self.http + path, headers=self.headers if headers is None else headers, timeout=30)

    def post(self, path: str, body: bytes, ctype: str, **headers) -> httpx.Response:
        h = {"content-type": ctype, **headers}
        return httpx.post(self.http + path, content=body, headers=h, timeout=30)

    def wait_audited(self, timeout: float = 30) -> dict:
        """Until every accepted span is audited and stored; returns /healthz."""
        deadline = time.monotonic() + timeout
        while True:
            h = self.get("/healthz").json()
            if h["buffered_spans"] == 0 and h["done_seq"] > h["spooled_seq"]:
                return h
            if time.monotonic() > deadline:
                raise AssertionError(f"not audited in {timeout}s: {h}")
            time.sleep(0.05)

    def report(self) -> dict:
        r = self.get("/api/report")
        assert r.status_code == 200, r.text
        return r.json()

    def metrics(self) -> dict[str, float]:
        out = {}
        for line in self.get("/metrics").text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
        return out

    def terminate(self, timeout: float = 60) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGTERM)
        _out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, err.decode()

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.communicate(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate(timeout=30)


def run_client(grpc_target: str, http_url: str, acked_path: str, batches: int, per_batch: int, seed: int) -> None:
    """A client process: export batches with the SDK exporters (gRPC and HTTP in turn); after
    each acknowledged export append its span ids to ``acked_path``; retry refused ones."""
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
    from opentelemetry.sdk.trace.export import SpanExportResult

    spans = llm_only_spans(batches * per_batch, seed)
    exporters = (HttpExporter(endpoint=http_url + "/v1/traces", timeout=5), GrpcExporter(endpoint=grpc_target, insecure=True, timeout=5))
    with open(acked_path, "a") as out:
        for i in range(batches):
            batch = spans[i * per_batch : (i + 1) * per_batch]
            deadline = time.monotonic() + 90
            while exporters[i % 2].export(batch) is not SpanExportResult.SUCCESS:
                if time.monotonic() > deadline:
                    raise SystemExit(f"batch {i} never acknowledged")
                time.sleep(0.05)
            out.write("".join(f"{s.context.span_id:016x}\n" for s in batch))
            out.flush()
