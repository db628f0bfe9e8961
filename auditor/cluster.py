"""``auditor check --engine dask``: the same audit on a Dask cluster.

Dask does the distributed work; this module only feeds it the pipeline's own pieces:

1. inputs -> units of work: a file, a Parquet row group (a Parquet dataset is a directory or a
   glob of files), or one hash part of a ClickHouse table (``clickhouse://...&part=I/N``);
2. each unit decoded on a worker with ``plan.projection`` (``ingest.iter_source`` /
   ``clickhouse.iter_parquet``: the decoders every door uses);
3. spans grouped by trace id across workers by Dask's own shuffle (``Bag.groupby`` with
   ``shuffle="tasks"``), so every trace lands whole in one partition;
4. per partition, ``assemble.build`` for each trace and ``engine.audit_traces`` -> ``Parts``;
5. the parts merged exactly (``rollup.merge_all``) and judged (``pipeline.conclude``).

No rule, policy or merge is re-implemented here: the result equals ``check`` on one process.
Without ``--scheduler`` a local cluster (processes, listening on 127.0.0.1 only, its HTTP
status server on a free port) is started and stopped; with an address the
run joins an existing cluster, whose workers need this package installed (same version).
"""

from __future__ import annotations

import glob as _glob
import os
import sys
import time
from dataclasses import dataclass
from typing import Iterable

from auditor import ingest
from auditor.assemble import build
from auditor.engine import audit_traces
from auditor.errors import InputError, UsageError
from auditor.ingest import clickhouse, clickhouse_server, limits
from auditor.model import AuditResult, Parts, Rejected, Span
from auditor.pipeline import Note, Overrides, _quiet, conclude, note_rejected
from auditor.plan import Plan
from auditor.rollup import merge_all

ENGINES = ("dask",)


@dataclass(frozen=True, slots=True)
class Unit:
    """One task's input: a file, a Parquet row group, or a ClickHouse part."""

    source: str
    row_group: int | None = None

    def __str__(self) -> str:
        return self.source if self.row_group is None else f"{self.source} (row group {self.row_group})"


def units(paths: Iterable[str], clickhouse_parts: int) -> tuple[list[Unit], tuple[str, ...]]:
    """Inputs -> units, and the input names the result lists. A directory is a dataset (its
    files, recursively, in name order); a pattern with * ? [ is a glob; a Parquet file is split
    by row group; a ClickHouse URL into ``clickhouse_parts`` parts by trace id hash."""
    out: list[Unit] = []
    names: list[str] = []
    for p in paths:
        if p == "-":
            raise UsageError("--engine: stdin cannot be distributed; give files, a directory, a glob or a clickhouse:// URL")
        if clickhouse_server.is_url(p):
            names.append(p)
            sep = "&" if "?" in p else "?"
            out.extend(Unit(f"{p}{sep}part={i}/{clickhouse_parts}") for i in range(clickhouse_parts))
            continue
        if os.path.isdir(p):
            files = sorted(os.path.join(d, f) for d, _, fs in os.walk(p) for f in fs if not f.startswith((".", "_")))
        elif any(ch in p for ch in "*?["):
            files = sorted(f for f in _glob.glob(p, recursive=True) if os.path.isfile(f))
            if not files:
                raise InputError(f"{p}: no file matches")
        else:
            files = [p]
        for f in files:
            names.append(f)
            try:
                with open(f, "rb") as fh:
                    head = fh.read(4)
            except OSError as e:
                raise InputError(f"{f}: cannot open: {e.strerror or e}") from None
            if head == clickhouse.PARQUET_MAGIC:
                out.extend(Unit(f, g) for g in range(clickhouse.parquet_row_groups(f, f)))
            else:
                out.append(Unit(f))
    return out, tuple(names)


def _decode(part: Iterable[Unit], projection, max_bytes: int) -> list[Span | Rejected]:
    """Worker side: a partition of units -> spans, and Rejected records (counted apart)."""
    limits.set_max_input_bytes(max_bytes)
    out: list[Span | Rejected] = []
    for u in part:
        if u.row_group is not None:
            batches = clickhouse.iter_parquet(u.source, projection, u.source, row_groups=[u.row_group])
        else:
            batches = ingest.iter_source(u.source, projection)
        for spans, bad in batches:
            out.extend(spans)
            out.extend(bad)
    return out


def _audit(groups: Iterable[tuple[str, list[Span]]], plan: Plan) -> list[Parts]:
    """Worker side: whole traces of one partition -> their Parts (one per partition)."""
    return [audit_traces((build(tid, spans) for tid, spans in groups), plan)]


def _trace_id(s: Span) -> str:
    return s.trace_id


def _is_span(x) -> bool:
    return isinstance(x, Span)


def _is_rejected(x) -> bool:
    return isinstance(x, Rejected)


def audit_on_dask(
    paths: Iterable[str],
    plan: Plan,
    *,
    scheduler: str | None = None,
    workers: int = 2,
    partitions: int | None = None,
    overrides: Overrides | None = None,
    note: Note = _quiet,
    progress: bool = False,
) -> AuditResult:
    try:
        import dask.bag as db
        from distributed import Client, LocalCluster
    except ImportError:
        raise UsageError("--engine dask needs dask[distributed]: pip install 'trace-attribution-auditor[dask]'") from None
    t0 = time.perf_counter()
    cluster = None
    try:
        if scheduler:
            try:
                client = Client(scheduler, timeout="30s")
            except (OSError, TimeoutError) as e:
                raise UsageError(f"--scheduler {scheduler}: cannot connect: {e}") from None
        else:
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   host="127.0.0.1", dashboard_address="127.0.0.1:0", silence_logs=40)
            client = Client(cluster)
        with client:
            n_workers = max(1, len(client.scheduler_info().get("workers", {})) or workers)
            todo, names = units(paths, clickhouse_parts=max(4, 4 * n_workers))
            if not todo:
                raise InputError(f"{', '.join(paths)}: no input files")
            nparts = partitions or max(n_workers * 4, min(len(todo), 256))
            items = db.from_sequence(todo, npartitions=len(todo)).map_partitions(
                _decode, plan.projection, limits.max_input_bytes())
            spans = items.filter(_is_span)
            rejected = items.filter(_is_rejected)
            grouped = spans.groupby(_trace_id, npartitions=nparts, shuffle="tasks")
            parts_bag = grouped.map_partitions(_audit, plan)
            futures = client.compute([*parts_bag.to_delayed(), rejected], optimize_graph=True)
            if progress:
                _progress(futures)
            done = client.gather(futures)
            parts: list[Parts] = [p for chunk in done[:-1] for p in chunk]
            bad: list[Rejected] = list(done[-1])
    finally:
        if cluster is not None:
            cluster.close()
    note_rejected(bad[:1], len(bad), note)
    merged = merge_all([plan.empty_parts(len(bad)), *parts])
    return conclude(merged, plan, names, time.perf_counter() - t0, overrides, note)


def _progress(futures) -> None:
    """A progress bar on stderr (tqdm) while the cluster audits its partitions."""
    from distributed import as_completed
    from tqdm import tqdm

    with tqdm(total=len(futures), desc="auditing on the cluster", unit="partition", file=sys.stderr, leave=False) as bar:
        for _ in as_completed(futures):
            bar.update(1)
