"""Issue 18's speed figures in one run (prints figures; not a test).

    python tests/bench/bench_speed.py [--sizes 100k,1m] [--formats pb,jsonl] [--repeat 1]
        [--same-instant-size 1m] [--stream-sizes 100k,1m] [--stream-formats json,text]
        [--server-spans 300k] [--skip-same-instant] [--skip-stream] [--skip-server] [--only-server]
        [--server-max-buffered-bytes SIZE]
        [--bench-dir ../shared/bench] [--keep DIR]

Corpora come from the shared yardsticks (``gen_synthetic.py``: 20-span traces, a quarter of
the spans LLM calls, traces 20 ms apart or all at one instant) and are written to a temporary
directory (never the repository), removed afterwards unless ``--keep DIR``. Every timed
command is its own process, run in this order for each corpus: floor, check (``--repeat``
times, alternated); wall, CPU and peak RSS come from the child's rusage (``os.wait4``; this
process stays small, as a forked child's peak RSS starts from its parent's).

Prints:
  1. ``auditor check CORPUS --format json -o out.json`` against the decode floor, for protobuf
     (``floor.py``) and OTLP JSON lines (the same spans, 500 a line, written by
     ``auditor.ingest.otlp_json_writer``; floor: ``json.loads`` a line plus one pass over every
     span's attributes, ``tests/bench/bench_check.py floor``), at each size: ratio = floor / check
     wall time (goal >= 0.5); the JSON-lines row also gives the ratio to floor.py on the
     protobuf twin; peak RSS of the check (goal < 1.5 GB at 1M). Each check twice: as users run
     it (``--jobs`` left out: one worker per usable CPU, at most 8, for OTLP files of 16 MB or
     more) and in one process (``--jobs 1``, as the floor is). With workers, "peak RSS" is the largest
     process's and "all processes" the sampled peak of their summed PSS (a page the fork
     shares counts once in all); CPU counts the workers too;
  2. the growth factor: check time at the largest size / at the smallest (goal: 10x spans <= 11x);
  3. the same-instant corpus (``gen_synthetic.py --same-instant``) at --same-instant-size;
  4. ``check --stream`` peak RSS over the JSON lines at each --stream-sizes (goal < 300 MB at 1M);
  5. the sidecar (``auditor serve`` on free loopback ports, --trace-idle 1, 2 audit workers):
     ``otlp_load.py`` posts --server-spans distinct spans (4 clients, 500 a request) and prints
     accepted spans/s and ack latency; audited end to end = N / (time from the load's start
     until ``/api/report`` counts N spans) (goal >= 30k spans/s, p99 ack < 100 ms); and the CPU
     seconds of the receiving process and of each audit worker until everything was stored
     (Linux), steadier than wall rates on a shared machine. ``--only-server`` runs only this
     part; ``--server-max-buffered-bytes 16MiB`` makes the burst larger than the buffer, to see
     the sustained behaviour (429s once it is full).

The machine's load average is printed at the start and the end: on a shared machine, quote
ratios measured in one run, and the load beside them.

Last profile (issue 18, 100k spans, protobuf, py-spy shares of one run after the engine cuts):
decode 25% (the attribute projection loop 13%), audit 31% (make_call 7%, cost.check 5%, evolve
5%, check_key 3.5%; nothing else above 3%), JSON 14%, imports 14%, finish 6%. What each engine
step bought, in instructions (cachegrind, not disturbed by load): ``tests/bench/bench_steps.py``.
With two workers (1M spans, protobuf, py-spy of the parent): its own shard 56%, the JSON report
23% (orjson's float walk 6%), ``finish`` 12%, receiving the other worker's parts 3%: about
13 s of 34 s stay serial after the shards.
Memory: ``check --stream`` spills findings and call records to a temporary file as batches are
audited (``auditor.spill``) and ``rollup.finish`` reads them back a trace at a time
(``auditor.joined``); plain ``check`` holds the result (at 1M: 250k call records of ~880 B,
330k findings of ~650 B).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BENCH = ROOT.parent / "shared" / "bench"
LINE_SPANS = 500


def count(s: str) -> int:
    """'100k' -> 100000, '1m' -> 1000000, '300000' -> 300000."""
    s = s.strip().lower()
    mult = {"k": 1_000, "m": 1_000_000}.get(s[-1:], 1)
    return int(float(s[:-1] if mult > 1 else s) * mult)


def label(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}k"


def env() -> dict:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(ROOT) + (os.pathsep + e["PYTHONPATH"] if e.get("PYTHONPATH") else "")
    return e


@dataclass(frozen=True, slots=True)
class Run:
    wall: float
    cpu: float  # of the child and of the workers it waited for
    rss: int  # peak resident set of the child (or of its largest worker), bytes
    code: int
    out: bytes
    tree_rss: int = 0  # peak of the PSS summed over the child and its workers, sampled every 50 ms (Linux)


def timed(argv: list[str]) -> Run:
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT, env=env())
    peak = [0]
    done = threading.Event()
    sampler = threading.Thread(target=_sample_tree_rss, args=(p.pid, peak, done), daemon=True)
    sampler.start()
    out = p.stdout.read()
    _pid, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    done.set()
    sampler.join()
    return Run(wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss * 1024, os.waitstatus_to_exitcode(status), out, peak[0])


def _sample_tree_rss(pid: int, peak: list[int], done: threading.Event) -> None:
    """The memory of ``pid`` and its descendants, summed, at its highest while sampled:
    ``check --jobs N`` holds N workers and the parent at once, which rusage (one process's
    peak) does not show. Each process counts its proportional set size (PSS: a page shared
    by k processes after the fork counts 1/k in each), so the sum is what the tree holds."""
    while not done.wait(0.05):
        children: dict[int, list[int]] = {}
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(d))
        total, todo = 0, [pid]
        while todo:
            q = todo.pop()
            total += _pss(q)
            todo.extend(children.get(q, ()))
        peak[0] = max(peak[0], total)


def _pss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def must(run: Run, what: str, ok=(0,)) -> Run:
    if run.code not in ok:
        raise SystemExit(f"{what} failed ({run.code}): {run.out.decode(errors='replace')[-2000:]}")
    return run


# ---------------------------------------------------------------- corpora


def gen_pb(bench: Path, n: int, path: Path, same_instant: bool = False) -> Path:
    if not path.exists():
        t = time.perf_counter()
        tmp = path.with_suffix(".tmp")
        cmd = [sys.executable, str(bench / "gen_synthetic.py"), str(n), str(tmp)] + (["--same-instant"] if same_instant else [])
        subprocess.run(cmd, check=True, cwd=ROOT)
        tmp.rename(path)
        print(f"  (wrote {path.name}: {path.stat().st_size / 1e6:.0f} MB in {time.perf_counter() - t:.0f}s)", flush=True)
    return path


def pb_to_jsonl(pb: Path, path: Path) -> Path:
    """The same spans as OTLP JSON lines, in a child process: this process must stay small, as
    a forked child's peak RSS (``ru_maxrss``) starts from its parent's."""
    if not path.exists():
        subprocess.run([sys.executable, __file__, "--to-jsonl", str(pb), str(path)], check=True, cwd=ROOT, env=env())
    return path


def _write_jsonl(pb: Path, path: Path) -> None:
    """LINE_SPANS spans a line (traces stay whole: the synthetic corpus writes each trace's
    20 spans together, and 500 is a multiple of 20)."""
    import orjson
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from auditor.ingest.otlp_json_writer import to_otlp_json

    t = time.perf_counter()
    req = ExportTraceServiceRequest.FromString(pb.read_bytes())
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        for rs in req.resource_spans:
            for ss in rs.scope_spans:
                spans = ss.spans
                for i in range(0, len(spans), LINE_SPANS):
                    chunk = ExportTraceServiceRequest()
                    r = chunk.resource_spans.add()
                    r.resource.CopyFrom(rs.resource)
                    r.schema_url = rs.schema_url
                    s = r.scope_spans.add()
                    s.scope.CopyFrom(ss.scope)
                    s.schema_url = ss.schema_url
                    s.spans.extend(spans[i : i + LINE_SPANS])
                    fh.write(orjson.dumps(to_otlp_json(chunk)) + b"\n")
    tmp.rename(path)
    print(f"  (wrote {path.name}: {path.stat().st_size / 1e6:.0f} MB in {time.perf_counter() - t:.0f}s)", flush=True)


# ---------------------------------------------------------------- check vs floor


def floor_cmd(bench: Path, path: Path, fmt: str) -> list[str]:
    if fmt == "pb":
        return [sys.executable, str(bench / "floor.py"), str(path)]
    return [sys.executable, str(Path(__file__).with_name("bench_check.py")), "floor", str(path), "jsonl"]


def check_cmd(path: Path, out: Path, *extra: str) -> list[str]:
    # The 1M-span corpus is one 586 MB protobuf message, refused by the default
    # --max-input-bytes (64 MiB, which bounds one message however it is decoded).
    return [sys.executable, "-m", "auditor", "check", str(path), "--max-input-bytes", "4GiB", "--format", "json",
            "-o", str(out), *extra]


def best(runs: list[Run]) -> Run:
    return min(runs, key=lambda r: r.wall)


def measure(bench: Path, path: Path, fmt: str, out: Path, repeat: int, variants: tuple[tuple[str, ...], ...] = ((),)
            ) -> tuple[Run, list[Run]]:
    """The floor and, per variant (extra check flags), the check: ``repeat`` rounds, alternated,
    the fastest of each."""
    floors: list[Run] = []
    checks: list[list[Run]] = [[] for _ in variants]
    for _ in range(repeat):
        floors.append(must(timed(floor_cmd(bench, path, fmt)), f"floor {path.name}"))
        for runs, extra in zip(checks, variants):
            runs.append(must(timed(check_cmd(path, out, *extra)), f"check {path.name}", ok=(0, 1)))
    return best(floors), [best(r) for r in checks]


def row(name: str, path: Path, fl: Run | None, ck: Run, extra: str = "") -> None:
    ratio = f"{fl.wall / ck.wall:>6.2f}x ({fl.cpu / ck.cpu:.2f}x cpu)" if fl else f"{'-':>6}"
    floor = f"{fl.wall:>7.2f}s" if fl else f"{'-':>8}"
    tree = f" (all processes {ck.tree_rss / 1e6:.0f} MB PSS)" if ck.tree_rss > ck.rss * 1.05 else ""
    print(f"{name:<30}{path.stat().st_size / 1e6:>6.0f} MB  check {ck.wall:>7.2f}s ({ck.cpu:>6.1f} cpu)  "
          f"floor {floor}  ratio {ratio}  peak RSS {ck.rss / 1e6:>6.0f} MB{tree}{extra}", flush=True)


# ---------------------------------------------------------------- sidecar


class Sidecar:
    def __init__(self, data_dir: Path, trace_idle: float, workers: int, extra: tuple[str, ...] = ()):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "auditor", "serve", "--data-dir", str(data_dir), "--grpc-port", "0", "--http-port", "0",
             "--trace-idle", str(trace_idle), "--workers", str(workers), *extra],
            cwd=ROOT, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        listen = data_dir / "listen.json"
        deadline = time.monotonic() + 60
        while not listen.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"sidecar did not start: {self.proc.stderr.read().decode(errors='replace')[-2000:]}")
            time.sleep(0.05)
        time.sleep(0.05)
        self.port = json.loads(listen.read_text())["http"]

    def get(self, path: str) -> dict:
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        try:
            c.request("GET", path)
            return json.loads(c.getresponse().read())
        finally:
            c.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def server(bench: Path, tmp: Path, n: int, trace_idle: float, workers: int, timeout: float, extra: tuple[str, ...] = ()) -> None:
    data = tmp / "sidecar"
    data.mkdir()
    s = Sidecar(data, trace_idle, workers, extra)
    try:
        time.sleep(1.0)
        url = f"http://127.0.0.1:{s.port}/v1/traces"
        # otlp_load builds its bodies before its clock starts: time the load from its own report
        load = subprocess.Popen([sys.executable, str(bench / "otlp_load.py"), url, str(n), "500", "4"],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        out = []
        t_start = None
        for line in load.stdout:
            out.append(line)
            if t_start is None and line.startswith("sent "):
                m = re.search(r"in ([0-9.]+)s", line)
                t_start = time.monotonic() - float(m.group(1))
        load.wait()
        if load.returncode != 0 or t_start is None:
            raise SystemExit(f"otlp_load failed: {''.join(out)[-2000:]}")
        t_sent = time.monotonic()
        seen = 0
        polls = 0
        while True:
            h = s.get("/healthz")
            if h["buffered_spans"] == 0 and h["done_seq"] > h["spooled_seq"]:
                t_poll = time.monotonic()
                cpu = cpu_seconds(s.proc.pid)  # before the report is built (in the receiving process)
                seen = s.get("/api/report")["summary"]["spans"]
                polls += 1
                if seen >= n:
                    break
            if time.monotonic() - t_sent > timeout:
                raise SystemExit(f"sidecar: {seen} of {n} spans audited after {timeout:.0f}s: {h}")
            time.sleep(0.1)
        print(f"sidecar, {label(n)} spans ({workers} audit workers, --trace-idle {trace_idle:g}s{''.join(' ' + a for a in extra)}): "
              f"{''.join(out).strip()}", flush=True)
        print(f"sidecar audited end to end: {n / (t_poll - t_start):,.0f} spans/s "
              f"({n} spans counted by /api/report {t_poll - t_start:.1f}s after the load's first request, "
              f"{t_poll - t_sent:.1f}s after its last ack; the trace-idle wait is part of it)", flush=True)
        if cpu:  # on a shared machine wall rates move with the neighbours; CPU per span much less
            recv, workers = cpu[0], cpu[1:]
            print(f"sidecar CPU until everything was stored: receiver {recv:.2f}s ({recv / n * 1e6:.1f} us/span), audit workers "
                  f"{' + '.join(f'{w:.2f}' for w in workers)}s ({sum(workers) / n * 1e6:.1f} us/span)", flush=True)
    finally:
        s.stop()


def cpu_seconds(pid: int) -> list[float]:
    """User + system CPU seconds of a process, then of each of its children (Linux /proc; [] elsewhere)."""
    def one(p: int) -> float | None:
        try:
            f = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")

    me = one(pid)
    if me is None:
        return []
    kids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    kids.append(int(d.name))
            except (OSError, ValueError, IndexError):
                continue
    return [me, *[c for c in (one(k) for k in sorted(kids)) if c is not None and c > 0.1]]


# ---------------------------------------------------------------- main


def main() -> int:
    if sys.argv[1:2] == ["--to-jsonl"]:
        _write_jsonl(Path(sys.argv[2]), Path(sys.argv[3]))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100k,1m", help="corpus sizes in spans for the check-vs-floor rows [100k,1m]")
    ap.add_argument("--formats", default="pb,jsonl", help="pb and/or jsonl [pb,jsonl]")
    ap.add_argument("--repeat", type=int, default=1, help="floor/check pairs per corpus, alternated; the fastest of each counts [1]")
    ap.add_argument("--same-instant-size", default="1m", help="the same-instant corpus [1m]")
    ap.add_argument("--stream-sizes", default="100k,1m", help="sizes for check --stream over JSON lines [100k,1m]")
    ap.add_argument("--stream-formats", default="json,text", help="report formats of the --stream rows [json,text]")
    ap.add_argument("--server-spans", default="300k", help="spans posted to the sidecar [300k]")
    ap.add_argument("--server-workers", type=int, default=2, help="the sidecar's --workers [2]")
    ap.add_argument("--trace-idle", type=float, default=1.0, help="the sidecar's --trace-idle [1]")
    ap.add_argument("--skip-same-instant", action="store_true")
    ap.add_argument("--skip-stream", action="store_true")
    ap.add_argument("--skip-server", action="store_true")
    ap.add_argument("--server-max-buffered-bytes", metavar="SIZE",
                    help="the sidecar's --max-buffered-bytes (e.g. 16MiB: a burst that does not fit) [its default]")
    ap.add_argument("--only-server", action="store_true", help="run only the sidecar part (5.): no corpus is generated")
    ap.add_argument("--bench-dir", type=Path, default=DEFAULT_BENCH, help=f"the shared yardsticks [{DEFAULT_BENCH}]")
    ap.add_argument("--keep", type=Path, help="write corpora here and keep them (reused next time) instead of a temp dir")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds to wait for the sidecar to audit everything [1800]")
    args = ap.parse_args()
    if args.only_server:
        args.sizes, args.formats, args.skip_same_instant, args.skip_stream, args.skip_server = "", "", True, True, False

    bench = args.bench_dir.resolve()
    for f in ("gen_synthetic.py", "floor.py", "otlp_load.py"):
        if not (bench / f).exists():
            raise SystemExit(f"{bench / f}: not found (pass --bench-dir)")
    sizes = sorted(count(s) for s in args.sizes.split(",") if s)
    fmts = [f for f in args.formats.split(",") if f]
    stream_sizes = [] if args.skip_stream else sorted(count(s) for s in args.stream_sizes.split(",") if s)
    print(f"machine: {os.cpu_count()} cores, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} at start; "
          f"python {sys.version.split()[0]}; code under test: {ROOT}", flush=True)

    tmp_ctx = None
    if args.keep:
        d = args.keep.resolve()
        d.mkdir(parents=True, exist_ok=True)
        if d == ROOT or ROOT in d.parents:
            raise SystemExit("--keep: corpora never go in the repository")
    else:
        tmp_ctx = tempfile.TemporaryDirectory(prefix="auditor-bench-speed-")
        d = Path(tmp_ctx.name)
    work = Path(tempfile.mkdtemp(prefix="run-", dir=d))
    out = work / "out.json"
    try:
        pb = {n: gen_pb(bench, n, d / f"synthetic-{n}.pb") for n in sorted(set(sizes) | set(stream_sizes))}
        jl = {}
        if "jsonl" in fmts or stream_sizes:
            jl = {n: pb_to_jsonl(pb[n], d / f"synthetic-{n}.jsonl") for n in sorted(set(sizes if "jsonl" in fmts else []) | set(stream_sizes))}

        if sizes and fmts:
            print("\n1. auditor check CORPUS --format json -o out.json vs the decode floor (ratio = floor time / check time)", flush=True)
        checks: dict[str, dict[int, Run]] = {}
        pb_floor: dict[int, Run] = {}
        for fmt in fmts:
            for n in sizes:
                path = pb[n] if fmt == "pb" else jl[n]
                # By default one worker per CPU (both are OTLP), against one process.
                other = ("--jobs", "1")
                fl, (ck, alt) = measure(bench, path, fmt, out, args.repeat, ((), other))
                checks.setdefault(fmt, {})[n] = ck
                if fmt == "pb":
                    pb_floor[n] = fl
                name = f"{'protobuf' if fmt == 'pb' else 'JSON lines'} {label(n)}"
                for run, what in ((ck, ""), (alt, " " + " ".join(other))):
                    twin = f"; vs floor.py on the protobuf twin {pb_floor[n].wall / run.wall:.2f}x" if fmt != "pb" and n in pb_floor else ""
                    row(name + what, path, fl, run, twin)

        if len(sizes) >= 2:
            print("\n2. growth", flush=True)
            lo, hi = sizes[0], sizes[-1]
            for fmt, by in checks.items():
                print(f"{'protobuf' if fmt == 'pb' else 'JSON lines'}: {hi / lo:.0f}x the spans took {by[hi].wall / by[lo].wall:.2f}x "
                      f"the time ({by[hi].cpu / by[lo].cpu:.2f}x the CPU); peak RSS {by[lo].rss / 1e6:.0f} MB -> {by[hi].rss / 1e6:.0f} MB",
                      flush=True)

        if not args.skip_same_instant:
            n = count(args.same_instant_size)
            print(f"\n3. same-instant corpus (every trace at one instant), {label(n)} spans", flush=True)
            path = gen_pb(bench, n, d / f"synthetic-{n}-same-instant.pb", same_instant=True)
            fl, (ck,) = measure(bench, path, "pb", out, args.repeat)
            row(f"protobuf same-instant {label(n)}", path, fl, ck,
                f"; {ck.wall / checks['pb'][n].wall:.2f}x the spread corpus" if n in checks.get("pb", {}) else "")
            path.unlink()

        if stream_sizes:
            print("\n4. auditor check CORPUS --stream (JSON lines, default --window) peak RSS", flush=True)
            for fmt in [f for f in args.stream_formats.split(",") if f]:
                for n in stream_sizes:
                    extra = ("--format", fmt, "-o", str(out), "--stream")
                    ck = must(timed([sys.executable, "-m", "auditor", "check", str(jl[n]), *extra]), f"stream {n}", ok=(0, 1))
                    row(f"--stream {fmt} {label(n)}", jl[n], None, ck)

        if not args.skip_server:
            print("\n5. sidecar", flush=True)
            extra = ("--max-buffered-bytes", args.server_max_buffered_bytes) if args.server_max_buffered_bytes else ()
            server(bench, work, count(args.server_spans), args.trace_idle, args.server_workers, args.timeout, extra)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if tmp_ctx is not None:
            tmp_ctx.cleanup()
    print(f"\nload average {' '.join(f'{x:.1f}' for x in os.getloadavg())} at the end", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
