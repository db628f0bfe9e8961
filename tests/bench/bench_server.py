"""Benchmark of ``auditor serve`` (prints figures; not a test).

    python tests/bench/bench_server.py [--requests 200] [--spans-per-request 500] [--workers 4]
                                       [--soak-seconds 60] [--soak-rate 4000] [--trace-idle 1]
                                       [--audit-workers 2]

Starts a real sidecar on free loopback ports, then:
  1. HTTP protobuf burst: --requests exports of --spans-per-request spans from --workers
     threads (keep-alive connections); refused exports (429) are retried, so nothing is lost;
  2. the same over gRPC;
  3. the time until every sent span is audited and stored, and the report's span count;
  4. resident memory (sidecar + worker) before and after a --soak-seconds soak at --soak-rate.
Every span has a unique id; traces are 5 spans (server root minting tenant_id and
workflow_id, two internal spans, two LLM calls of which one lost the keys). Bounded in
count and time; loopback only.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

ROOT = Path(__file__).resolve().parents[2]
EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
T0 = 1_767_225_600_000_000_000


def _kv(k, v):
    return KeyValue(key=k, value=AnyValue(int_value=v) if isinstance(v, int) else AnyValue(string_value=v))


def make_body(rng: random.Random, n_spans: int) -> bytes:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.extend(
        [_kv("service.name", "chat-api"), _kv("service.version", "1.4.2"), _kv("telemetry.sdk.name", "opentelemetry"),
         _kv("telemetry.sdk.language", "python"), _kv("host.name", "bench-1")]
    )
    app = rs.scope_spans.add()
    app.scope.name = "chat_api.handlers"
    llm = rs.scope_spans.add()
    llm.scope.name = "opentelemetry.instrumentation.openai"
    for _t in range(n_spans // 5):
        tid = rng.getrandbits(128).to_bytes(16, "big")
        ids = [rng.getrandbits(64).to_bytes(8, "big") for _ in range(5)]
        keys = [_kv("tenant_id", f"tenant-{rng.randrange(50)}"), _kv("workflow_id", f"wf-{rng.randrange(8)}")]
        start = T0 + rng.randrange(10**12)
        for i, (name, parent, scope) in enumerate(
            [("POST /v1/chat", None, app), ("retrieve", 0, app), ("plan", 0, app),
             ("chat gpt-4o-mini", 2, llm), ("chat gpt-4o-mini", 1, llm)]
        ):
            s = scope.spans.add()
            s.trace_id = tid
            s.span_id = ids[i]
            if parent is not None:
                s.parent_span_id = ids[parent]
            s.name = name
            s.kind = 2 if parent is None else (3 if scope is llm else 1)
            s.start_time_unix_nano = start + i * 1000
            s.end_time_unix_nano = start + 10_000_000 - i * 1000
            s.attributes.extend([_kv("http.route", "/v1/chat"), _kv("thread.id", 7)])
            if i < 4:
                s.attributes.extend(keys)
            if scope is llm:
                s.attributes.extend(
                    [_kv("gen_ai.operation.name", "chat"), _kv("gen_ai.provider.name", "openai"),
                     _kv("gen_ai.request.model", "gpt-4o-mini"), _kv("gen_ai.usage.input_tokens", 800 + i),
                     _kv("gen_ai.usage.output_tokens", 120)]
                )
    return req.SerializeToString()


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


class Sidecar:
    def __init__(self, data_dir: Path, trace_idle: float, max_buffered: int, workers: int):
        self.data_dir = data_dir
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "auditor", "serve", "--data-dir", str(data_dir), "--grpc-port", "0",
             "--http-port", "0", "--trace-idle", str(trace_idle), "--max-buffered-spans", str(max_buffered),
             "--workers", str(workers)],
            cwd=ROOT, stderr=subprocess.PIPE,
        )
        listen = data_dir / "listen.json"
        deadline = time.monotonic() + 60
        while not listen.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"sidecar did not start: {self.proc.stderr.read().decode()}")
            time.sleep(0.05)
        time.sleep(0.05)
        info = json.loads(listen.read_text())
        self.http_port, self.grpc_port = info["http"], info["grpc"]

    def get(self, path: str) -> bytes:
        c = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=300)
        c.request("GET", path)
        body = c.getresponse().read()
        c.close()
        return body

    def health(self) -> dict:
        return json.loads(self.get("/healthz"))

    def rss(self) -> tuple[int, int]:
        kids = children(self.proc.pid)
        return rss_kib(self.proc.pid), sum(rss_kib(k) for k in kids)

    def stop(self) -> int:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=300)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        return self.proc.returncode


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def http_sender(port: int):
    local = threading.local()

    def send(body: bytes) -> int:
        c = getattr(local, "c", None)
        if c is None:
            c = local.c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            c.request("POST", "/v1/traces", body, {"Content-Type": "application/x-protobuf"})
            r = c.getresponse()
            r.read()
            return r.status
        except (OSError, http.client.HTTPException):
            local.c = None
            return 0

    return send


def grpc_sender(port: int):
    ch = grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.max_send_message_length", 64 << 20)])
    call = ch.unary_unary(EXPORT)

    def send(body: bytes) -> int:
        try:
            call(body, timeout=60)
            return 200
        except grpc.RpcError as e:
            return 429 if e.code() is grpc.StatusCode.UNAVAILABLE else 500

    return send


def burst(send, bodies: list[bytes], workers: int, deadline: float) -> dict:
    """Send every body (retrying refused ones); latency of each accepted export."""
    lat: list[float] = []
    refused = [0]
    lock = threading.Lock()
    it = iter(bodies)

    def run():
        while True:
            with lock:
                body = next(it, None)
            if body is None or time.monotonic() > deadline:
                return
            while True:
                t = time.perf_counter()
                status = send(body)
                dt = time.perf_counter() - t
                if status == 200:
                    with lock:
                        lat.append(dt)
                    break
                with lock:
                    refused[0] += 1
                if time.monotonic() > deadline:
                    return
                time.sleep(0.2 if status == 429 else 0.05)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=run) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return {"accepted": len(lat), "refused": refused[0], "seconds": wall, "lat": lat}


def paced(send, bodies: list[bytes], rate_spans: float, spans_per: int, seconds: float) -> int:
    interval = spans_per / rate_spans
    t0 = time.monotonic()
    sent = 0
    for i, body in enumerate(bodies):
        due = t0 + i * interval
        now = time.monotonic()
        if due - now > 0:
            time.sleep(due - now)
        if now - t0 > seconds:
            break
        while send(body) != 200:
            time.sleep(0.2)
        sent += 1
    return sent


def wait_audited(s: Sidecar, timeout: float) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        h = s.health()
        if h["buffered_spans"] == 0 and h["done_seq"] > h["spooled_seq"]:
            return time.monotonic()
        time.sleep(0.1)
    raise SystemExit(f"not everything audited within {timeout}s: {s.health()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=200, help="exports per transport in the burst")
    ap.add_argument("--spans-per-request", type=int, default=500)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--soak-seconds", type=float, default=60)
    ap.add_argument("--soak-rate", type=float, default=4000, help="spans/s during the soak")
    ap.add_argument("--trace-idle", type=float, default=1.0)
    ap.add_argument("--max-buffered-spans", type=int, default=400_000)
    ap.add_argument("--audit-workers", type=int, default=2, help="the sidecar's --workers")
    ap.add_argument("--time-limit", type=float, default=600, help="upper bound for each phase, seconds")
    args = ap.parse_args()

    rng = random.Random(42)
    n = args.requests
    per = args.spans_per_request
    soak_n = int(args.soak_seconds * args.soak_rate / per) + 1 if args.soak_seconds else 0
    t = time.perf_counter()
    bodies = [make_body(rng, per) for _ in range(2 * n + soak_n)]
    print(f"generated {len(bodies)} bodies of {per} spans ({len(bodies[0]) / 1024:.0f} KiB each) in {time.perf_counter() - t:.1f}s")
    print(
        f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start; load generator: "
        f"{args.workers} threads, keep-alive; sidecar --workers {args.audit_workers}"
    )

    with tempfile.TemporaryDirectory(prefix="auditor-bench-") as tmp:
        s = Sidecar(Path(tmp), args.trace_idle, args.max_buffered_spans, args.audit_workers)
        try:
            time.sleep(1.0)
            rss0 = s.rss()
            t_start = time.monotonic()
            results = {}
            for name, send, chunk in (
                ("HTTP protobuf", http_sender(s.http_port), bodies[:n]),
                ("gRPC", grpc_sender(s.grpc_port), bodies[n : 2 * n]),
            ):
                r = burst(send, chunk, args.workers, time.monotonic() + args.time_limit)
                results[name] = r
                lat = r["lat"]
                print(
                    f"{name:14s} accepted {r['accepted'] * per / r['seconds']:>8.0f} spans/s "
                    f"({r['accepted']} x {per} spans in {r['seconds']:.1f}s; {r['refused']} refused+retried); "
                    f"ack latency p50 {_pct(lat, 0.5) * 1000:.1f} ms, p99 {_pct(lat, 0.99) * 1000:.1f} ms"
                )
            t_sent = time.monotonic()
            sent_spans = sum(r["accepted"] for r in results.values()) * per
            t_done = wait_audited(s, args.time_limit)
            print(
                f"all {sent_spans} spans audited {t_done - t_sent:.1f}s after the last ack; end to end "
                f"{sent_spans / (t_done - t_start):.0f} spans/s (first send to last stored, trace-idle {args.trace_idle}s)"
            )
            t = time.perf_counter()
            summary = json.loads(s.get("/api/report"))["summary"]
            print(
                f"report: {summary['spans']} spans, {summary['traces']} traces, findings {summary['findings']} "
                f"(built in {time.perf_counter() - t:.1f}s); lost: {sent_spans - summary['spans']}"
            )
            if soak_n:
                rss1 = s.rss()
                print(f"RSS before soak: sidecar {rss1[0] / 1024:.0f} MiB, worker {rss1[1] / 1024:.0f} MiB "
                      f"(at start {rss0[0] / 1024:.0f} / {rss0[1] / 1024:.0f} MiB)")
                soak_bodies = bodies[2 * n :]
                sent = paced(http_sender(s.http_port), soak_bodies, args.soak_rate, per, args.soak_seconds)
                wait_audited(s, args.time_limit)
                rss2 = s.rss()
                print(
                    f"soak: {sent * per} spans over {args.soak_seconds:.0f}s at {args.soak_rate:.0f} spans/s; "
                    f"RSS after: sidecar {rss2[0] / 1024:.0f} MiB, worker {rss2[1] / 1024:.0f} MiB"
                )
                summary = json.loads(s.get("/api/report"))["summary"]
                print(f"report after soak: {summary['spans']} spans; lost: {sent_spans + sent * per - summary['spans']}")
        finally:
            code = s.stop()
            print(f"SIGTERM: exit {code}")


if __name__ == "__main__":
    main()
