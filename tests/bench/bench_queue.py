"""Benchmark: the durable queue designs of issue 19, same run, alternated (prints figures; not a test).

    python tests/bench/bench_queue.py [--spans 100000] [--batch 500] [--clients 4] [--rounds 3]
                                      [--designs sqlite,spool]

For each round and each design, starts a real ``auditor serve`` on a fresh data dir with
``AUDITOR_QUEUE=<design>`` (sqlite: the SQLite queue table; spool: the hand-written segment
spool with the issue-19 fixes; both existed side by side at commit e062705, where the README's
figures were taken; since then only the SQLite queue is left and the variable is ignored), runs the shared load tool (/work/shared/bench/otlp_load.py:
acknowledged spans/s and p50/p99 ack latency), then waits until /api/report counts every
span (audited end to end). Only the design is varied; everything else is the same.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOAD = Path(os.environ.get("OTLP_LOAD", "/work/shared/bench/otlp_load.py"))


def _start(data: Path, design: str) -> subprocess.Popen:
    env = {**os.environ, "AUDITOR_QUEUE": design, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "auditor", "serve", "--data-dir", str(data), "--grpc-port", "0", "--http-port", "0",
         "--trace-idle", "0.5", "--workers", "2"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            info = json.loads((data / "listen.json").read_text())
            if info["pid"] == proc.pid:
                proc.http = f"http://127.0.0.1:{info['http']}"  # type: ignore[attr-defined]
                return proc
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    raise SystemExit("sidecar did not start")


def _spans(url: str) -> int:
    with urllib.request.urlopen(url + "/api/report", timeout=120) as r:
        return json.load(r)["summary"]["spans"]


def one(design: str, spans: int, batch: int, clients: int) -> dict:
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        proc = _start(Path(tmp) / "data", design)
        try:
            t0 = time.perf_counter()
            out = subprocess.run([sys.executable, str(LOAD), proc.http + "/v1/traces", str(spans), str(batch), str(clients)],
                                 capture_output=True, text=True, check=True).stdout
            while _spans(proc.http) < spans:
                time.sleep(0.2)
            audited = time.perf_counter() - t0
        finally:
            proc.terminate()
            proc.wait(60)
    m = re.search(r"([\d.]+) spans/s accepted; p50 ([\d.]+) ms p99 ([\d.]+) ms", out)
    return {"design": design, "accepted_per_s": float(m[1]), "p50_ms": float(m[2]), "p99_ms": float(m[3]),
            "audited_per_s": spans / audited, "line": out.strip()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spans", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--designs", default="sqlite", help="sqlite,spool at commit e062705")
    a = ap.parse_args()
    designs = a.designs.split(",")
    results: dict[str, list[dict]] = {d: [] for d in designs}
    for r in range(a.rounds):
        for d in designs if r % 2 == 0 else designs[::-1]:  # alternated: drift on a shared machine hits both
            res = one(d, a.spans, a.batch, a.clients)
            results[d].append(res)
            print(f"round {r + 1} {d:6}: {res['line']}; audited end to end {res['audited_per_s']:.0f} spans/s", flush=True)
    print(f"\nmedians over {a.rounds} rounds ({a.spans} spans, {a.batch}-span requests, {a.clients} clients):")
    for d, rs in results.items():
        med = {k: statistics.median(x[k] for x in rs) for k in ("accepted_per_s", "p50_ms", "p99_ms", "audited_per_s")}
        print(f"  {d:6}: {med['accepted_per_s']:.0f} spans/s acknowledged, p50 {med['p50_ms']:.1f} ms, "
              f"p99 {med['p99_ms']:.1f} ms; audited end to end {med['audited_per_s']:.0f} spans/s")


if __name__ == "__main__":
    main()
