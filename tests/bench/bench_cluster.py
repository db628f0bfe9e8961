"""One process vs ``--engine dask`` (a 2-worker local cluster) on the shared synthetic corpus.

    python tests/bench/bench_cluster.py [N_SPANS] [--files K] [--workers W]

Writes N spans with /work/shared/bench/gen_synthetic.py (one OTLP protobuf message), splits it
into K files of length-prefixed records (the Collector fileexporter's framing), then in one run:

- ``auditor check --format json`` as a subprocess: wall time and peak RSS;
- ``auditor.cluster.audit_on_dask`` on a fresh LocalCluster (W worker processes, 1 thread
  each): wall time (cluster start apart), and each worker's peak RSS (sampled every 0.2 s);
- the two JSON results compared (run metadata aside): they must be equal.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: E402

GEN = Path("/work/shared/bench/gen_synthetic.py")


def split(src: Path, out_dir: Path, k: int, per_record: int = 5000) -> list[str]:
    """The one big message -> K files of length-prefixed records, trace by trace (20 spans)."""
    req = ExportTraceServiceRequest.FromString(src.read_bytes())
    files = [open(out_dir / f"part{i}.pb", "wb") for i in range(k)]
    n = 0
    for rs in req.resource_spans:
        for ss in rs.scope_spans:
            spans = list(ss.spans)
            for j in range(0, len(spans), per_record):
                rec = ExportTraceServiceRequest()
                r = rec.resource_spans.add()
                r.resource.CopyFrom(rs.resource)
                s = r.scope_spans.add()
                s.scope.CopyFrom(ss.scope)
                s.spans.extend(spans[j:j + per_record])
                data = rec.SerializeToString()
                f = files[n % k]
                f.write(len(data).to_bytes(4, "big") + data)
                n += 1
    for f in files:
        f.close()
    return [f.name for f in files]


def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rss_mib() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("spans", type=int, nargs="?", default=1_000_000)
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_cluster_"))
    big = tmp / "corpus.pb"
    subprocess.run([sys.executable, str(GEN), str(a.spans), str(big)], check=True)
    paths = split(big, tmp, a.files)
    big.unlink()
    print(f"corpus: {a.spans:,} spans in {a.files} files, {sum(os.path.getsize(p) for p in paths) / 2**20:.0f} MiB; "
          f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    t0 = time.perf_counter()
    one = subprocess.Popen([sys.executable, "-m", "auditor", "check", "--format", "json", "-o", str(tmp / "one.json"), *paths],
                           env=env, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(one.pid, 0)  # this child's own peak, not the corpus generator's
    one.returncode = os.waitstatus_to_exitcode(status)
    t_one = time.perf_counter() - t0
    rss_one = usage.ru_maxrss / 1024
    assert one.returncode in (0, 1), one.returncode
    print(f"one process : {t_one:7.1f} s  {a.spans / t_one:9,.0f} spans/s  peak RSS {rss_one:,.0f} MiB", flush=True)

    from distributed import Client, LocalCluster

    from auditor.cluster import audit_on_dask
    from auditor.plan import Plan
    from auditor.result_json import to_json

    t0 = time.perf_counter()
    with LocalCluster(n_workers=a.workers, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address="127.0.0.1:0",
                      silence_logs=40) as cluster, Client(cluster) as client:
        t_start = time.perf_counter() - t0
        # Workers are started from this process, and ru_maxrss survives fork + exec: poll their
        # resident memory instead (psutil, a dependency of distributed), every 0.2 s.
        peak: dict[str, float] = {}
        stop = threading.Event()

        def poll() -> None:
            while not stop.is_set():
                try:
                    for w, v in client.run(_rss_mib).items():
                        peak[w] = max(peak.get(w, 0.0), v)
                except Exception:  # noqa: BLE001 - a missed sample is fine
                    pass
                stop.wait(0.2)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        t0 = time.perf_counter()
        result = audit_on_dask(paths, Plan.of(None), scheduler=cluster.scheduler_address)
        t_dask = time.perf_counter() - t0
        stop.set()
        poller.join()
    per = ", ".join(f"{v:,.0f}" for v in peak.values())
    print(f"dask {a.workers} workers: {t_dask:7.1f} s  {a.spans / t_dask:9,.0f} spans/s  (cluster start {t_start:.1f} s)  "
          f"peak RSS per worker {per} MiB (sampled every 0.2 s)", flush=True)
    got = to_json(result)
    want = json.loads((tmp / "one.json").read_text())
    got.pop("run"), want.pop("run")
    got = json.loads(json.dumps(got))
    print(f"equal results: {got == want}  ({want['summary']['spans']:,} spans, {want['summary']['traces']:,} traces)")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    shutil.rmtree(tmp, ignore_errors=True)  # the corpus is about 1.2 GB at 1M spans


if __name__ == "__main__":
    main()
