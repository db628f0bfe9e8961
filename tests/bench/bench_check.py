"""Benchmark ``auditor check`` against the decode floor: ``python tests/bench/bench_check.py``.

Generates synthetic corpora of realistic shape (20-span traces over three services, 10-30
attributes per span, long gen_ai message strings on LLM calls, about 10% of hops dropping
the attribution keys, LLM calls with cache tokens) as OTLP protobuf (the Collector
fileexporter's length-prefixed records) and OTLP JSON lines, then times, each in its own
process on the same machine in the same run:

- check: ``auditor check FILE`` (the whole process, its text report read and dropped);
- floor: decoding the same bytes (protobuf ``FromString`` or ``json.loads``) plus one pass
  over every span's attributes, which no Python auditor can beat;

and prints spans/s of both, their ratio and each process's peak RSS. ``--stream`` rows run
``check --stream`` over the JSON lines. Traces are built from a few hundred seeded
templates whose ids, times and response ids are fresh per trace, so corpora of a million
spans are written in seconds and every run sees the same bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

SPANS_PER_TRACE = 20
TRACES_PER_BATCH = 25  # 500 spans per export batch, like the SDK's BatchSpanProcessor
TEMPLATES = 400
T0 = 1_767_225_600_000_000_000
RID_PLACEHOLDER = "chatcmpl-" + "X" * 24

SERVICES = {
    "gateway": ("opentelemetry.instrumentation.fastapi", "opentelemetry.instrumentation.requests"),
    "agent": (
        "opentelemetry.instrumentation.fastapi",
        "openinference.instrumentation.langchain",
        "opentelemetry.instrumentation.openai_v2",
        "opentelemetry.instrumentation.sqlalchemy",
        "opentelemetry.instrumentation.requests",
    ),
    "retriever": ("opentelemetry.instrumentation.fastapi", "opentelemetry.instrumentation.sqlalchemy"),
}
MODELS = (
    ("openai", "gpt-4o-mini"),
    ("openai", "gpt-4o"),
    ("anthropic", "claude-3-5-sonnet-20241022"),
    ("anthropic", "claude-3-5-haiku-20241022"),
)
WORDS = (
    "the customer asked about invoice totals for last quarter and whether the discount applied "
    "to all seats or only the new ones please summarise the contract terms and list open tickets"
).split()


# ---------------------------------------------------------------- templates


@dataclass(slots=True)
class _TSpan:
    index: int
    parent: int  # -1 for the root
    service: str
    scope: str
    name: str
    kind: int
    start: int  # ns after the trace start
    end: int
    attrs: list  # [(key, python value)]


def _text(r: random.Random, n: int) -> str:
    return " ".join(r.choice(WORDS) for _ in range(n))


def _messages(r: random.Random, turns: int) -> str:
    msgs = [{"role": "system", "parts": [{"type": "text", "content": _text(r, 60)}]}]
    for i in range(turns):
        role = "user" if i % 2 == 0 else "assistant"
        msgs.append({"role": role, "parts": [{"type": "text", "content": _text(r, r.randint(20, 80))}]})
    return json.dumps(msgs)


def _padding(r: random.Random, n: int) -> list:
    pool = [
        ("thread.id", r.randint(1, 64)),
        ("thread.name", f"worker-{r.randint(1, 8)}"),
        ("code.function.name", r.choice(["handle", "run", "invoke", "call_model", "fetch"])),
        ("code.file.path", f"/srv/app/{r.choice(['api', 'agent', 'tools', 'db'])}.py"),
        ("code.line.number", r.randint(10, 900)),
        ("deployment.environment.name", "prod"),
        ("app.request_size", r.randint(100, 90000)),
        ("app.cache_hit", r.random() < 0.3),
        ("app.feature", r.choice(["search", "summary", "triage", "chat"])),
        ("app.region", r.choice(["eu-west-1", "us-east-1"])),
        ("app.retry", r.randint(0, 3)),
        ("app.score", round(r.random(), 4)),
        ("app.labels", tuple(r.choice(WORDS) for _ in range(3))),
        ("user_agent.original", "python-requests/2.32.3"),
        ("net.peer.port", 443),
        ("network.protocol.version", "1.1"),
        ("otel.status_description", ""),
        ("app.tokens_budget", r.randint(1000, 9000)),
        ("app.session", f"s-{r.getrandbits(48):012x}"),
        ("app.note", _text(r, 8)),
        ("app.queue", r.choice(["fast", "slow"])),
        ("app.batch", r.randint(1, 32)),
        ("app.priority", r.choice(["low", "high"])),
        ("app.shard", r.randint(0, 15)),
    ]
    r.shuffle(pool)
    return pool[:n]


def _template(seed: int) -> list[_TSpan]:
    """One 20-span trace: gateway -> agent (LLM calls, tools, db) -> retriever, ~10% hops leaking."""
    r = random.Random(seed)
    tenant = f"tenant-{r.randint(1, 97)}"
    workflow = r.choice(["support", "search", "billing", "triage"])
    spans: list[_TSpan] = []
    carry: list[bool] = []
    budget = 10_000_000_000

    def add(parent: int, service: str, scope: str, name: str, kind: int, attrs: list) -> int:
        i = len(spans)
        if parent < 0:
            start, end = 0, budget
            has = True
        else:
            p = spans[parent]
            start = p.start + r.randint(1, max(2, (p.end - p.start) // 4))
            end = start + r.randint(1, max(2, (p.end - start) // 2))
            has = carry[parent] and r.random() >= 0.10  # ~10% of hops drop the keys
        carry.append(has)
        a = list(attrs)
        if has:
            a += [("tenant_id", tenant), ("workflow_id", workflow)]
        a += _padding(r, max(0, r.randint(10, 30) - len(a)))
        spans.append(_TSpan(i, parent, service, scope, name, kind, start, end, a))
        return i

    http = [("http.request.method", "POST"), ("url.scheme", "https"), ("server.address", "api.example.com"),
            ("http.response.status_code", 200), ("network.peer.address", "10.0.0.12")]
    root = add(-1, "gateway", SERVICES["gateway"][0], "POST /v1/assist", 2, http + [("http.route", "/v1/assist")])
    hop = add(root, "gateway", SERVICES["gateway"][1], "POST", 3, http + [("url.full", "http://agent:8080/run")])
    agent = add(hop, "agent", SERVICES["agent"][0], "POST /run", 2, http + [("http.route", "/run")])
    chain = add(agent, "agent", SERVICES["agent"][1], "AgentExecutor", 1, [("openinference.span.kind", "CHAIN")])
    parents = [chain]
    while len(spans) < SPANS_PER_TRACE:
        left = SPANS_PER_TRACE - len(spans)
        p = r.choice(parents)
        roll = r.random()
        if roll < 0.35:
            provider, model = r.choice(MODELS)
            inp = r.randint(200, 6000)
            cr = r.randint(0, inp // 2) if r.random() < 0.6 else 0
            cw = r.randint(0, inp // 4) if provider == "anthropic" and r.random() < 0.4 else 0
            add(p, "agent", SERVICES["agent"][2], f"chat {model}", 3, [
                ("gen_ai.operation.name", "chat"),
                ("gen_ai.system", provider),
                ("gen_ai.provider.name", provider),
                ("gen_ai.request.model", model),
                ("gen_ai.response.model", model),
                ("gen_ai.response.id", RID_PLACEHOLDER),
                ("gen_ai.request.temperature", 0.2),
                ("gen_ai.request.max_tokens", 1024),
                ("gen_ai.usage.input_tokens", inp),
                ("gen_ai.usage.output_tokens", r.randint(20, 900)),
                ("gen_ai.usage.cache_read.input_tokens", cr),
                ("gen_ai.usage.cache_creation.input_tokens", cw),
                ("gen_ai.response.finish_reasons", ("stop",)),
                ("gen_ai.input.messages", _messages(r, r.randint(2, 8))),
                ("gen_ai.output.messages", _messages(r, 1)),
            ])
        elif roll < 0.55 or left < 3:
            add(p, "agent", SERVICES["agent"][3], "SELECT app.documents", 3, [
                ("db.system.name", "postgresql"),
                ("db.query.text", "SELECT id, body FROM documents WHERE tenant = $1 AND topic = ANY($2) LIMIT 20"),
                ("db.namespace", "app"),
            ])
        elif roll < 0.75:
            parents.append(add(p, "agent", SERVICES["agent"][1], f"tool:{r.choice(['search', 'lookup', 'plan'])}", 1,
                               [("openinference.span.kind", "TOOL"), ("tool.name", "search")]))
        else:
            c = add(p, "agent", SERVICES["agent"][4], "GET", 3, http + [("url.full", "http://retriever:9000/q")])
            s = add(c, "retriever", SERVICES["retriever"][0], "GET /q", 2, http + [("http.route", "/q")])
            add(s, "retriever", SERVICES["retriever"][1], "SELECT vectors", 3,
                [("db.system.name", "postgresql"), ("db.query.text", "SELECT id FROM vectors ORDER BY emb <-> $1 LIMIT 8")])
    return spans[:SPANS_PER_TRACE]


# ---------------------------------------------------------------- encoders


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _ld(field: int, payload: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def _anyvalue_pb(v) -> bytes:
    if isinstance(v, bool):
        return _varint(2 << 3) + _varint(int(v))
    if isinstance(v, int):
        return _varint(3 << 3) + _varint(v & (2**64 - 1))
    if isinstance(v, float):
        return bytes([4 << 3 | 1]) + struct.pack("<d", v)
    if isinstance(v, tuple):
        return _ld(5, b"".join(_ld(1, _anyvalue_pb(x)) for x in v))
    return _ld(1, str(v).encode())


def _kv_pb(k: str, v) -> bytes:
    return _ld(1, k.encode()) + _ld(2, _anyvalue_pb(v))


def _anyvalue_json(v) -> dict:
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    if isinstance(v, tuple):
        return {"arrayValue": {"values": [_anyvalue_json(x) for x in v]}}
    return {"stringValue": v}


@dataclass(slots=True)
class _Compiled:
    """A template with everything but ids, times and response ids pre-encoded."""

    spans: list[_TSpan]
    pb_rest: list[list[bytes]]  # per span: pieces of the encoded span between response ids
    js_rest: list[list[str]]


def _compile(t: list[_TSpan]) -> _Compiled:
    pb, js = [], []
    for s in t:
        body = _ld(5, s.name.encode()) + _varint(6 << 3) + _varint(s.kind)
        body += b"".join(_ld(9, _kv_pb(k, v)) for k, v in s.attrs)
        body += _ld(15, b"")  # empty status
        pb.append(body.split(RID_PLACEHOLDER.encode()))
        rest = json.dumps({"name": s.name, "kind": s.kind,
                           "attributes": [{"key": k, "value": _anyvalue_json(v)} for k, v in s.attrs],
                           "status": {}}, separators=(",", ":"))
        js.append(rest[1:].split(RID_PLACEHOLDER))
    return _Compiled(t, pb, js)


def _ids(r: random.Random, n: int):
    tid = r.getrandbits(128).to_bytes(16, "big")
    sids = [r.getrandbits(64).to_bytes(8, "big") for _ in range(n)]
    return tid, sids


def _rid(r: random.Random) -> str:
    return "chatcmpl-" + f"{r.getrandbits(96):024x}"


def write_corpus(path: Path, n_spans: int, fmt: str, seed: int = 7, templates: int = TEMPLATES) -> int:
    """Write ``n_spans`` spans (whole traces) as 'pb' (length-prefixed records) or 'jsonl'."""
    templates = [_compile(_template(seed * 100_003 + i)) for i in range(templates)]
    r = random.Random(seed)
    n_traces = n_spans // SPANS_PER_TRACE
    written = 0
    with open(path, "wb") as out:
        for b0 in range(0, n_traces, TRACES_PER_BATCH):
            groups: dict[tuple[str, str], list] = {}
            for ti in range(b0, min(n_traces, b0 + TRACES_PER_BATCH)):
                t = templates[r.randrange(len(templates))]
                tid, sids = _ids(r, len(t.spans))
                base = T0 + ti * 5_000_000
                for s, pbr, jsr in zip(t.spans, t.pb_rest, t.js_rest):
                    rid = _rid(r) if len(pbr) > 1 else ""
                    groups.setdefault((s.service, s.scope), []).append((tid, sids, s, pbr, jsr, base, rid))
                    written += 1
            if fmt == "pb":
                rec = _batch_pb(groups)
                out.write(struct.pack(">I", len(rec)) + rec)
            else:
                out.write(_batch_json(groups).encode() + b"\n")
    return written


def _batch_pb(groups) -> bytes:
    by_service: dict[str, list[bytes]] = {}
    for (service, scope), items in groups.items():
        spans = []
        for tid, sids, s, pbr, _jsr, base, rid in items:
            head = _ld(1, tid) + _ld(2, sids[s.index]) + (_ld(4, sids[s.parent]) if s.parent >= 0 else b"")
            head += bytes([7 << 3 | 1]) + struct.pack("<Q", base + s.start) + bytes([8 << 3 | 1]) + struct.pack("<Q", base + s.end)
            spans.append(_ld(2, head + rid.encode().join(pbr)))
        by_service.setdefault(service, []).append(_ld(1, _ld(1, scope.encode())) + b"".join(spans))
    out = []
    for service, scopes in by_service.items():
        res = _ld(1, _ld(1, _kv_pb("service.name", service)) + _ld(1, _kv_pb("deployment.environment.name", "prod")))
        out.append(_ld(1, res + b"".join(_ld(2, sc) for sc in scopes)))
    return b"".join(out)


def _batch_json(groups) -> str:
    by_service: dict[str, list[str]] = {}
    for (service, scope), items in groups.items():
        spans = []
        for tid, sids, s, _pbr, jsr, base, rid in items:
            pid = sids[s.parent].hex() if s.parent >= 0 else ""
            spans.append(
                f'{{"traceId":"{tid.hex()}","spanId":"{sids[s.index].hex()}","parentSpanId":"{pid}",'
                f'"startTimeUnixNano":"{base + s.start}","endTimeUnixNano":"{base + s.end}",' + rid.join(jsr)
            )
        by_service.setdefault(service, []).append(f'{{"scope":{{"name":"{scope}"}},"spans":[{",".join(spans)}]}}')
    rss = []
    for service, scopes in by_service.items():
        res = (f'{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"{service}"}}}},'
               f'{{"key":"deployment.environment.name","value":{{"stringValue":"prod"}}}}]}},"scopeSpans":[{",".join(scopes)}]}}')
        rss.append(res)
    return '{"resourceSpans":[' + ",".join(rss) + "]}"


# ---------------------------------------------------------------- the floor


def floor(path: str, fmt: str) -> int:
    """Decode every record and touch every span's attributes once; returns spans seen."""
    n = 0
    touched = 0
    if fmt == "pb":
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        with open(path, "rb") as fh:
            while True:
                head = fh.read(4)
                if not head:
                    break
                msg = ExportTraceServiceRequest.FromString(fh.read(struct.unpack(">I", head)[0]))
                for rs in msg.resource_spans:
                    for ss in rs.scope_spans:
                        for s in ss.spans:
                            n += 1
                            for kv in s.attributes:
                                touched += len(kv.key)
                                kv.value.WhichOneof("value")
    else:
        with open(path, "rb") as fh:
            for line in fh:
                doc = json.loads(line)
                for rs in doc["resourceSpans"]:
                    for ss in rs["scopeSpans"]:
                        for s in ss["spans"]:
                            n += 1
                            for kv in s["attributes"]:
                                touched += len(kv["key"])
                                kv["value"]
    return n


# ---------------------------------------------------------------- running


@dataclass(frozen=True, slots=True)
class Run:
    wall: float  # seconds
    cpu: float  # user + system seconds of the child: robust when other work shares the machine
    rss: int  # peak resident set, bytes
    code: int
    out: bytes


def _timed(argv: list[str]) -> Run:
    """Run one child process; its own peak RSS and CPU time come from wait4's rusage."""
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = p.stdout.read()
    _pid, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    return Run(wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss * 1024, p.returncode, out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python tests/bench/bench_check.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="100000,1000000", help="span counts, comma-separated [100000,1000000]")
    ap.add_argument("--formats", default="pb,jsonl", help="pb and/or jsonl [pb,jsonl]")
    ap.add_argument("--dir", default="/tmp/auditor-bench", help="where corpora are written (reused when present)")
    ap.add_argument("--stream-window", type=int, default=0,
                    help="also run 'check --stream' on JSON lines with this window (records); 0 = no stream rows")
    ap.add_argument("--keep", action="store_true", help="keep the corpora afterwards (and reuse them next time)")
    ap.add_argument("--check-args", default="",
                    help="arguments after 'auditor check FILE', e.g. '--format json' [none: the text report]")
    sub = sys.argv[1:] if argv is None else argv
    if sub[:1] == ["floor"]:
        print(floor(sub[1], sub[2]))
        return 0
    args = ap.parse_args(sub)
    d = Path(args.dir)
    d.mkdir(parents=True, exist_ok=True)
    sizes = [int(x) for x in args.sizes.split(",")]
    fmts = args.formats.split(",")
    py = sys.executable
    rows = []
    print(f"{'corpus':<18}{'MB':>6}  {'check s':>8}{'(cpu)':>7}{'spans/s':>10}  {'floor s':>8}{'(cpu)':>7}{'spans/s':>10}"
          f"  {'ratio':>5}{'(cpu)':>6}  {'check RSS':>9}{'floor RSS':>10}", flush=True)
    for fmt in fmts:
        for n in sizes:
            path = d / f"bench-{n}.{'pb' if fmt == 'pb' else 'jsonl'}"
            if not path.exists():
                t0 = time.perf_counter()
                tmp = path.with_suffix(path.suffix + ".tmp")
                write_corpus(tmp, n, fmt)
                tmp.rename(path)
                print(f"  (wrote {path} in {time.perf_counter() - t0:.1f}s)", flush=True)
            runs = [("check", [py, "-m", "auditor", "check", str(path), *args.check_args.split()])]
            if fmt == "jsonl" and args.stream_window:
                runs.append(("stream", [py, "-m", "auditor", "check", str(path), "--stream", "--window",
                                        str(args.stream_window), *args.check_args.split()]))
            fl = _timed([py, str(Path(__file__).resolve()), "floor", str(path), fmt])
            if fl.code != 0:
                raise SystemExit(f"floor failed: {fl.out.decode()[-2000:]}")
            for label, cmd in runs:
                ck = _timed(cmd)
                if ck.code not in (0, 1):
                    raise SystemExit(f"check failed ({ck.code}): {ck.out.decode()[-2000:]}")
                name = f"{fmt}{'+stream' if label == 'stream' else ''} {n // 1000}k"
                rows.append((fmt, label, n, ck, fl))
                print(f"{name:<18}{path.stat().st_size / 1e6:>6.0f}  {ck.wall:>8.1f}{ck.cpu:>7.1f}{n / ck.wall:>10,.0f}"
                      f"  {fl.wall:>8.1f}{fl.cpu:>7.1f}{n / fl.wall:>10,.0f}  {fl.wall / ck.wall:>5.2f}{fl.cpu / ck.cpu:>6.2f}"
                      f"  {ck.rss / 1e6:>7.0f}MB{fl.rss / 1e6:>8.0f}MB", flush=True)
    for fmt in fmts:
        for label in ("check", "stream"):
            pts = sorted(((n, ck) for f, lab, n, ck, _fl in rows if f == fmt and lab == label), key=lambda x: x[0])
            if len(pts) >= 2:
                (n0, a), (n1, b) = pts[0], pts[-1]
                print(f"{fmt} {label}: {n1 / n0:.0f}x the spans took {b.wall / a.wall:.2f}x the time "
                      f"({b.cpu / a.cpu:.2f}x the CPU); peak RSS {a.rss / 1e6:.0f} MB -> {b.rss / 1e6:.0f} MB", flush=True)
    if not args.keep:
        for p in d.glob("bench-*"):
            p.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
