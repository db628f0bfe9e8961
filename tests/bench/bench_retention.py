"""Soak of ``auditor serve`` with retention on: disk use of the data dir stays bounded (prints
figures; not a test).

    python tests/bench/bench_retention.py [--seconds 120] [--rate 3000] [--retain-bytes 16MiB]

Starts a real sidecar (2 workers, trace-idle 0.5 s, ``--retain-bytes``), posts 500-span
OTLP/HTTP protobuf exports (fresh ids each, the shape of bench_server.py) at --rate spans/s
for --seconds, and samples the data dir's size on disk (every file: queue, store, WALs) each
2 s. Prints the samples, the peak, the spans sent and what /healthz says retention removed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from bench_server import make_body  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def du(d: Path) -> int:
    return sum(p.stat().st_blocks * 512 for p in d.rglob("*") if p.is_file())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--rate", type=int, default=3000)
    ap.add_argument("--retain-bytes", default="16MiB")
    a = ap.parse_args()
    rng = random.Random(19)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        proc = subprocess.Popen(
            [sys.executable, "-m", "auditor", "serve", "--data-dir", str(data), "--grpc-port", "0", "--http-port", "0",
             "--trace-idle", "0.5", "--workers", "2", "--retain-bytes", a.retain_bytes],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stderr=subprocess.PIPE,
        )
        try:
            while True:
                try:
                    info = json.loads((data / "listen.json").read_text())
                    if info["pid"] == proc.pid:
                        break
                except (OSError, ValueError, KeyError):
                    time.sleep(0.1)
            url = f"http://127.0.0.1:{info['http']}"
            client = httpx.Client(timeout=60)
            t0 = time.monotonic()
            sent, samples, next_sample = 0, [], t0
            while (now := time.monotonic()) - t0 < a.seconds:
                if sent < (now - t0) * a.rate:
                    r = client.post(url + "/v1/traces", content=make_body(rng, 500),
                                    headers={"content-type": "application/x-protobuf"})
                    if r.status_code == 200:
                        sent += 500
                    else:
                        time.sleep(float(r.headers.get("retry-after", "0.2")))
                else:
                    time.sleep(0.01)
                if now >= next_sample:
                    samples.append((round(now - t0), du(data)))
                    print(f"t={samples[-1][0]:4d}s sent={sent:8d} data dir {samples[-1][1] / 2**20:6.1f} MiB", flush=True)
                    next_sample += 2
            health = client.get(url + "/healthz").json()
        finally:
            proc.terminate()
            proc.wait(60)
    peak = max(b for _t, b in samples)
    half = [b for t, b in samples if t >= a.seconds / 2]
    print(f"\n{sent} spans in {a.seconds:g}s at up to {a.rate}/s with --retain-bytes {a.retain_bytes}: data dir peak "
          f"{peak / 2**20:.1f} MiB, second half {min(half) / 2**20:.1f}-{max(half) / 2**20:.1f} MiB; "
          f"retention removed {health['window']['evicted_traces']} traces ({health['window']['evicted_spans']} spans)")


if __name__ == "__main__":
    main()
