"""``auditor check``: audit trace files (or stdin) against a schema; gate CI on the result."""

from __future__ import annotations

import gc
import sys
from contextlib import contextmanager

import click

from auditor.commands.progress import progress_bar
from auditor.commands.options import (emit, exit_gate, gate_options, jobs_for, jobs_option, note, output_options,
                                      schema_option)
from auditor.pipeline import audit_files
from auditor.plan import Plan
from auditor.commands.input_limit import max_input_bytes_option
from auditor.errors import UsageError
from auditor.shard import Shard

STREAM_WINDOW = 100


@contextmanager
def no_cyclic_gc():
    """An audit allocates millions of records that form no reference cycles; the cyclic
    collector would re-scan them over and over (a quarter of the run at 100k spans, more as the
    heap grows) and free nothing. Reference counting still frees everything as usual."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


@click.command("check")
@click.argument("paths", nargs=-1, required=True, metavar="PATH... (or - for stdin)")
@max_input_bytes_option
@schema_option
@click.option("--shard", "shard_spec", default=None, metavar="I/N",
              help="Audit only the traces of shard I of N (trace id's low 64 bits mod N); merge with 'auditor merge'.")
@click.option("--stream", is_flag=True,
              help="Audit each trace once no span of it arrived for --window records (JSON lines, records): bounded memory.")
@click.option("--window", type=click.IntRange(min=1), default=STREAM_WINDOW, show_default=True, metavar="N",
              help="With --stream: records (lines) after a trace's last span at which it counts as complete.")
@jobs_option
@click.option("--engine", type=click.Choice(["local", "dask"]), default="local", show_default=True,
              help="Where to audit: this process, or a Dask cluster (spans grouped by trace id across workers).")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="With --engine dask: join this scheduler (tcp://host:8786) instead of starting a local cluster.")
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True,
              help="With --engine dask and no --scheduler: worker processes of the local cluster.")
@gate_options
@output_options
def command(paths, schema_ref, shard_spec, stream, window, jobs, engine, scheduler, workers, overrides, formats, output, color,
            verbose):
    """Audit trace files: OTLP protobuf or JSON (lines), Collector file exports, ClickHouse otel_traces
    (Parquet / JSONEachRow exports, or clickhouse://HOST:PORT/DB?table=otel_traces&since=..&until=..), gzip;
    '-' reads stdin.

    Exit 0 when the gate passes, 1 when it fails, 2 on bad usage or unreadable input.
    """
    shard = Shard.parse(shard_spec) if shard_spec is not None else None
    if engine == "dask" or scheduler:
        if shard is not None or stream or jobs is not None:
            raise UsageError("--engine dask partitions the work itself: drop --shard / --stream / --jobs")
        from auditor.cluster import audit_on_dask

        with no_cyclic_gc():
            result = audit_on_dask(paths, Plan.of(schema_ref), scheduler=scheduler, workers=workers,
                                   overrides=overrides, note=note, progress=sys.stderr.isatty())
        emit(result, formats, output, color, verbose)
        exit_gate(result.gate.passed)
        return
    if jobs is None and (shard is not None or stream):
        jobs = 1  # audit_files refuses --jobs with them
    with no_cyclic_gc(), progress_bar("decoding", "span") as progress:
        result = audit_files(paths, Plan.of(schema_ref), stdin=sys.stdin.buffer, shard=shard,
                             window=window if stream else None, overrides=overrides, note=note, progress=progress,
                             jobs=jobs_for(jobs, paths))
    emit(result, formats, output, color, verbose)
    exit_gate(result.gate.passed)
