"""The one path from sources to a result: sources -> plan (schema, dialect detection) ->
audit -> policy -> result.

``check``, ``check --shard`` + ``merge``, ``cost``, ``reconcile``, the sidecar's workers and
the upload page all go through here (the sidecar's workers feed ``engine.audit_traces`` with
``Plan.projection`` and ``Plan.for_trace``, exactly as ``audit_files`` does), so the same
traces give the same JSON wherever they enter. Diagnostics go to ``note`` (the CLI prints them
on stderr; the page and the sidecar have their own channels); nothing here prints.
"""

from __future__ import annotations

import json
import os
import stat
import time
from dataclasses import dataclass, field, replace
from functools import partial
from typing import BinaryIO, Callable, Iterable, Mapping, TypeVar

from auditor import baseline, forked, ingest
from auditor.baseline import BaselineRef
from auditor.assemble import iter_traces
from auditor.engine import audit_spans, audit_traces
from auditor.errors import InputError, UsageError
from auditor.model import AuditResult, Parts, Rejected, RunInfo
from auditor.plan import Plan
from auditor.result_json import parts_from_json
from auditor.rollup import PartsMismatch, finish, merge_all
from auditor.rules.tool import TOOL002
from auditor.shard import Shard
from auditor.stream import TraceWindow

Note = Callable[[str], None]
T = TypeVar("T")


def _quiet(_msg: str) -> None:
    pass


@dataclass(frozen=True, slots=True)
class Overrides:
    """The command line's gate flags: they win over the schema's ``gate:``."""

    fail_on: str | None = None
    max_unattributed_pct: Mapping[str, float] = field(default_factory=dict)
    allow_empty: bool = False
    baseline: BaselineRef | None = None  # --baseline: gate on what is new or worse than it


def judge(parts: Parts, run: RunInfo, overrides: Overrides | None = None) -> AuditResult:
    """Parts -> result under the parts' policy, with the command line's gate flags applied,
    and judged against a baseline report when one is given."""
    if overrides is not None and (overrides.fail_on or overrides.max_unattributed_pct or overrides.allow_empty):
        unknown = [k for k in overrides.max_unattributed_pct if parts.key_order and k not in parts.key_order]
        if unknown:
            raise UsageError(f"--max-unattributed-pct: {unknown[0]!r} is not a key of the schema "
                             f"(keys: {', '.join(parts.key_order)})")
        parts = replace(parts, policy=parts.policy.overridden(overrides.fail_on, overrides.max_unattributed_pct, overrides.allow_empty))
    result = finish(parts, run)
    if overrides is not None and overrides.baseline is not None:
        result = baseline.apply(result, overrides.baseline)
    return result


def judge_traces(
    parts_by_trace: Mapping[str, Parts], empty: Parts, run: RunInfo, render: Callable[[AuditResult], T],
) -> tuple[AuditResult, T]:
    """Per-trace parts (the sidecar's store) -> one result and its rendering (e.g. the JSON).
    Should one trace's parts break the result or its rendering, each trace is tried alone: the
    ones that fail are left out and reported as TOOL002, so one poison value never takes the
    report down for everyone. Costs nothing while every trace is sound."""
    result = finish(merge_all([empty, *parts_by_trace.values()]), run)
    try:
        return result, render(result)
    except Exception:  # noqa: BLE001 - isolated below, trace by trace
        pass
    sound, broken = [], []
    for tid, p in parts_by_trace.items():
        try:
            render(finish(merge_all([empty, p]), run))
            sound.append(p)
        except Exception as e:  # noqa: BLE001
            broken.append(TOOL002.finding(tid, "", f"reporting this trace failed ({type(e).__name__}: {str(e)[:200]}); "
                                                   "it is left out of every figure. Please report it."))
    result = finish(merge_all([empty, *sound, replace(empty, findings=tuple(broken))]), run)
    return result, render(result)


def audit_files(
    paths: Iterable[str],
    plan: Plan,
    *,
    stdin: BinaryIO | None = None,
    shard: Shard | None = None,
    window: int | None = None,
    overrides: Overrides | None = None,
    note: Note = _quiet,
    progress: Callable[[int], object] | None = None,
    jobs: int = 1,
) -> AuditResult:
    """Files (or '-' for stdin) -> result. ``shard`` keeps one shard's traces (``--shard I/N``);
    ``window`` audits traces as they complete, ``window`` records after their last span.
    ``jobs`` > 1 audits the files in that many forked workers, one shard each, merged exactly
    (files only: see ``parallel_inputs``). ``progress`` is told how many spans each decoded
    batch held (the CLI's progress bar)."""
    t0 = time.perf_counter()
    paths = tuple(paths)
    if jobs > 1:
        if window is not None or shard is not None:
            raise UsageError("--jobs splits the traces into shards itself: drop --shard / --stream")
        _refuse_unparallel(paths)
        if not forked.can_fork():
            raise UsageError("--jobs needs processes started by fork, which this platform lacks: use --jobs 1")
    if window is None and paths and all(ingest.clickhouse_server.is_url(p) for p in paths):
        window = 1  # rows arrive ordered by trace id, in batches of whole traces: audit each batch as it comes
    if window is not None or shard is not None:
        parts, _ = _audit_batches(paths, plan, stdin, shard, window, note, progress)
    elif jobs > 1:
        parts = _audit_in_workers(paths, plan, jobs, note, progress)
    else:
        loaded = _load(paths, plan, stdin, progress)
        note_rejected(loaded.rejected, len(loaded.rejected), note)
        parts = audit_spans(loaded.spans, plan, loaded.rejected)
        paths = loaded.inputs
    return conclude(parts, plan, paths, time.perf_counter() - t0, overrides, note)


def conclude(parts: Parts, plan: Plan, inputs: tuple[str, ...], seconds: float, overrides: Overrides | None = None,
             note: Note = _quiet) -> AuditResult:
    """Merged parts of a run -> its result: what it says on stderr, then ``judge``. The cluster
    engine (``auditor.cluster``) ends here too."""
    _note_dialects(plan, parts, note)
    if not parts.counts.spans:
        note(f"warning: no spans in {', '.join(inputs)}: the gate fails unless --allow-empty")
    return judge(parts, RunInfo(inputs=inputs, schema=plan.describe(parts), seconds=seconds), overrides)


def audit_bytes(sources: Iterable[tuple[str, bytes]], plan: Plan, overrides: Overrides | None = None) -> AuditResult:
    """In-memory sources (the upload page) -> result; InputError for anything unreadable."""
    t0 = time.perf_counter()
    sources = tuple(sources)
    spans: list = []
    rejected: list[Rejected] = []
    for name, data in sources:
        if not data.strip():
            raise InputError(f"{name}: empty input (expected OTLP JSON or protobuf trace data)")
        s, r = ingest.decode_bytes(data, name, plan.projection)
        spans.extend(s)
        rejected.extend(r)
    if not spans:
        raise InputError(f"{', '.join(n for n, _ in sources)}: no spans found (expected OTLP trace data)")
    parts = audit_spans(spans, plan, rejected)
    run = RunInfo(inputs=tuple(n for n, _ in sources), schema=plan.describe(parts), seconds=time.perf_counter() - t0)
    return judge(parts, run, overrides)


def merge_results(parts_and_runs: Iterable[tuple[str, Parts, RunInfo]], overrides: Overrides | None = None) -> AuditResult:
    """Results of shards (read back from their JSON) -> the result of the whole."""
    items = list(parts_and_runs)
    if not items:
        raise UsageError("merge: no results given")
    first_where, first, _ = items[0]
    for where, p, _ in items[1:]:
        if p.policy != first.policy or p.key_order != first.key_order:
            what = "policy (the schema's severity: or gate:)" if p.policy != first.policy else "schema keys"
            raise InputError(f"{where}: audited with a different {what} than {first_where}; merge results of one schema")
    try:
        parts = merge_all([p for _, p, _ in items])
    except PartsMismatch as e:  # pragma: no cover - checked above with file names
        raise InputError(str(e)) from None
    runs = [r for _, _, r in items]
    run = RunInfo(
        inputs=tuple(i for r in runs for i in r.inputs),
        schema=next((r.schema for r in runs if r.schema), ""),
        seconds=sum(r.seconds for r in runs),
    )
    return judge(parts, run, overrides)


def read_result(path: str) -> tuple[str, Parts, RunInfo]:
    """A JSON report written by ``check --format json`` (or ``auditor baseline``), as parts."""
    try:
        with open(path, "rb") as fh:
            doc = json.load(fh)
    except OSError as e:
        raise InputError(f"{path}: cannot open: {e.strerror or e}") from None
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: line {e.lineno} column {e.colno}: invalid JSON: {e.msg}") from None
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: offset {e.start}: expected UTF-8 JSON") from None
    except RecursionError:
        raise InputError(f"{path}: JSON nested too deeply") from None
    parts, run = parts_from_json(doc, path)
    return path, parts, run


def read_baseline(path: str, tolerance_pct: float = 0.0) -> BaselineRef:
    """An earlier report, judged under the policy it was written with."""
    if not 0 <= tolerance_pct <= 100:
        raise UsageError(f"--baseline-tolerance-pct {tolerance_pct:g}: expected a number of percentage points between 0 and 100")
    _, parts, run = read_result(path)
    return BaselineRef(path, finish(parts, run), tolerance_pct)


def _load(paths, plan: Plan, stdin, progress) -> ingest.Loaded:
    if progress is None:
        return ingest.load(paths, plan.projection, stdin=stdin)
    spans: list = []
    rejected: list[Rejected] = []
    for source in paths:
        for batch, bad in ingest.iter_source(source, plan.projection, stdin):
            spans.extend(batch)
            rejected.extend(bad)
            progress(len(batch) + len(bad))
    return ingest.Loaded(spans, rejected, tuple(paths))


@dataclass(frozen=True, slots=True)
class RejectedSpans:
    """How many spans a read rejected, and the first of them with its place in the input (input,
    batch, ``Rejected.order``): shards that each counted some name the first of all."""

    count: int = 0
    first: tuple[tuple, Rejected] | None = None

    def __add__(self, other: "RejectedSpans") -> "RejectedSpans":
        firsts = [f for f in (self.first, other.first) if f is not None]
        return RejectedSpans(self.count + other.count, min(firsts, key=lambda f: f[0]) if firsts else None)

    def note(self, note: Note) -> None:
        note_rejected([self.first[1]] if self.first else [], self.count, note)


def _audit_batches(paths, plan: Plan, stdin, shard: Shard | None, window: int | None, note: Note,
                   progress=None) -> tuple[Parts, RejectedSpans]:
    """Read batch by batch: keep one shard's traces, and/or audit traces as the window closes.
    Says what it rejected (``note``) and returns it, for workers' parents to say once."""
    spans: list = []
    first_bad = None
    n_rejected = 0
    tw = TraceWindow(plan, window) if window is not None else None
    projection = plan.projection
    if shard is not None:  # decoders that can skip other shards' spans early do (OTLP protobuf, JSON)
        projection = replace(projection, shard=(shard.index, shard.count))
    for at, source in enumerate(paths):
        for n, (batch, bad) in enumerate(ingest.iter_source(source, projection, stdin)):
            if shard is not None:
                batch = [s for s in batch if shard.owns(s.trace_id)]
                bad = [r for r in bad if shard.keeps(r)]
            if progress is not None:
                progress(len(batch) + len(bad))
            if bad:
                if first_bad is None:
                    first_bad = ((at, n, bad[0].order), bad[0])
                n_rejected += len(bad)
            if tw is not None:
                tw.add(batch)
            else:
                spans.extend(batch)
    rejected = RejectedSpans(n_rejected, first_bad)
    rejected.note(note)
    if tw is None:
        return audit_traces(iter_traces(spans), plan, rejected=n_rejected), rejected
    if tw.late_spans:
        note(f"warning: {tw.late_spans} span(s) arrived more than --window {window} records after their trace was last "
             "seen and were audited apart from it; raise --window")
    return tw.finish(n_rejected), rejected


AUTO_JOBS_MIN_BYTES = 16 * 1024 * 1024


def auto_jobs(paths: tuple[str, ...]) -> int:
    """``--jobs`` left out: the usable CPUs (at most ``forked.MAX_AUTO_JOBS``) for OTLP files
    (protobuf or JSON lines: ``ingest.skips_other_shards``) of 16 MB or more in all. One
    process otherwise: for less (a worker's start and the merge would cost more than they
    save); for other formats, whose decoders cannot skip other shards' spans, so every worker
    would decode everything (JSON lines at 100k spans on 2 CPUs, before its decoder skipped:
    3% faster for 60% more CPU); for stdin and URLs; where processes cannot be forked."""
    if not forked.can_fork() or not parallel_inputs(paths) or not all(ingest.skips_other_shards(p) for p in paths):
        return 1
    if sum(os.path.getsize(p) for p in paths) < AUTO_JOBS_MIN_BYTES:
        return 1
    return min(forked.usable_cpus(), forked.MAX_AUTO_JOBS)


def parallel_inputs(paths: tuple[str, ...]) -> bool:
    """Inputs each worker can read again on its own: regular files."""
    return bool(paths) and all(p != "-" and os.path.isfile(p) for p in paths)


def _refuse_unparallel(paths: tuple[str, ...]) -> None:
    """``--jobs`` on an input a worker cannot read again: the first such input, named. A path
    that cannot be opened at all gets the error the one-process read gives it."""
    for p in paths:
        if p == "-":
            what = "stdin can be read only once"
        elif ingest.clickhouse_server.is_url(p):
            what = f"{p} is a URL (ClickHouse streams its rows once)"
        else:
            try:
                mode = os.stat(p).st_mode
            except OSError as e:
                raise InputError(f"{p}: cannot open: {e.strerror or e}") from None
            if stat.S_ISREG(mode):
                continue
            if stat.S_ISDIR(mode):
                raise InputError(f"{p}: cannot open: Is a directory")
            what = f"{p} is not a regular file (a pipe, socket or device is read once)"
        raise UsageError(f"--jobs reads every input once per worker: {what}; use --jobs 1")


def _audit_in_workers(paths: tuple[str, ...], plan: Plan, jobs: int, note: Note, progress) -> Parts:
    """``check --shard i/jobs`` for every i at once, in forked workers, merged as ``merge`` does:
    the same parts as one process. Each worker reads every file but decodes only its traces'
    spans where the decoder can tell them early (OTLP protobuf and JSON)."""
    before = [_version(p) for p in paths]
    done = forked.run([partial(_audit_shard, paths, plan, Shard(i, jobs)) for i in range(jobs)], progress)
    sum((bad for _, bad in done), RejectedSpans()).note(note)
    for p, was in zip(paths, before):
        if _version(p) != was:
            note(f"warning: {p} changed while {jobs} workers read it, each on its own: they may have read different "
                 "versions of it; audit it once it is complete, or with --jobs 1")
    return merge_all([parts for parts, _ in done])


def _version(path: str) -> tuple[int, int, int] | None:
    """What tells a file's contents changed: its inode, size and modification time."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def _audit_shard(paths: tuple[str, ...], plan: Plan, shard: Shard, tick: Callable[[int], None]) -> tuple[Parts, RejectedSpans]:
    return _audit_batches(paths, plan, None, shard, None, _quiet, tick)


def note_rejected(first: list[Rejected], n: int, note: Note) -> None:
    if n:
        note(f"warning: {n} span(s) rejected; first: {first[0].where}: {first[0].reason}")


def _note_dialects(plan: Plan, parts: Parts, note: Note) -> None:
    if not plan.detecting:
        unread = plan.unread_dialects(name for name, _ in parts.dialects)
        if unread:
            said = ", ".join(f"{n} ({dict(parts.dialects)[n]} trace{'s' if dict(parts.dialects)[n] != 1 else ''})" for n in unread)
            note(f"warning: spans speak {said}, which schema {plan.name} does not read: add "
                 f"extends: [{', '.join('preset:' + n for n in unread)}] or drop --schema to detect dialects per trace")
        return
    if parts.dialects:
        said = ", ".join(f"{name} ({n} trace{'s' if n != 1 else ''})" for name, n in parts.dialects)
        note(f"dialects detected: {said}; each trace is read by the default schema plus its dialects' presets")
