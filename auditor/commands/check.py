"""``auditor check``: audit trace files (or stdin) against a schema; gate CI on the result."""

from __future__ import annotations

import functools
import gc
import sys
import time
from contextlib import contextmanager

import click

from auditor import ingest
from auditor.commands.options import emit, gate_options, output_options, parse_max_pct
from auditor.engine import Compiled
from auditor.assemble import iter_traces
from auditor.commands.input_limit import max_input_bytes_option
from auditor.engine import audit_spans, audit_traces
from auditor.errors import UsageError
from auditor.model import RunInfo
from auditor.rollup import GatePolicy, finish
from auditor.schema import load_schema
from auditor.shard import Shard
from auditor.stream import TraceWindow

STREAM_WINDOW = 100


def warn(msg: str) -> None:
    click.echo(f"auditor: warning: {msg}", err=True)


def load_and_audit(paths, schema_ref, policy_args, stdin=None, shard: Shard | None = None, window: int | None = None, adapt=None):
    """Shared by check and the commands that need a full result (cost, reconcile).

    ``shard`` keeps only the traces of one shard (``--shard I/N``); ``window`` audits traces
    as they complete, ``window`` records after their last span (``--stream``). ``adapt``
    (Schema -> Schema) adds what a command needs decoded, e.g. reconcile's gateway keys.
    """
    with _no_cyclic_gc():
        return _load_and_audit(paths, schema_ref, policy_args, stdin, shard, window, adapt)


@contextmanager
def _no_cyclic_gc():
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


def _load_and_audit(paths, schema_ref, policy_args, stdin, shard, window, adapt):
    t0 = time.perf_counter()
    preloaded = None
    if schema_ref is None:
        # With adapt the spans are decoded again, so detect on a cheap first pass instead.
        schema, preloaded = _detect_schema(paths, stdin, batches=window is not None or shard is not None or adapt is not None)
    else:
        schema = load_schema(schema_ref)
    if adapt is not None:
        schema, preloaded = adapt(schema), None  # decode again with the adapted projection
    compiled = Compiled(schema)
    fail_on, max_pct = policy_args
    for key in max_pct:
        if key not in {k.name for k in schema.keys}:
            raise UsageError(f"--max-unattributed-pct: {key!r} is not a key of schema {schema.name!r}")
    if window is not None or shard is not None:
        parts, inputs = _audit_batches(paths, compiled, stdin, shard, window)
    else:
        loaded = preloaded or ingest.load(paths, compiled.projection, stdin=stdin)
        if loaded.rejected:
            first = loaded.rejected[0]
            warn(f"{len(loaded.rejected)} span(s) rejected; first: {first.where}: {first.reason}")
        parts, inputs = audit_spans(loaded.spans, compiled, loaded.rejected), loaded.inputs
    run = RunInfo(inputs=inputs, schema=schema.origin, seconds=time.perf_counter() - t0)
    return finish(parts, run, GatePolicy.from_schema(schema, fail_on, max_pct))


def _detect_schema(paths, stdin, batches: bool):
    """No --schema: the default plus the presets of the dialects the spans speak (said on stderr).

    Whole-file loads decode once with the union of every preset's projection and detect on the
    spans; batch modes (--stream, --shard) detect on a cheap first pass over the files.
    Returns the schema and, when the spans were already loaded, the Loaded result.
    """
    from dataclasses import replace

    from auditor import dialects
    from auditor.schema import compose_refs

    loaded = None
    if batches:
        if "-" in paths:
            click.echo("auditor: note: dialect detection needs a second pass, which stdin cannot give; "
                       "using schema default (pass --schema to choose presets)", err=True)
            return load_schema(None), None
        found: dict[str, int] = {}
        for source in paths:
            for batch, _bad in ingest.iter_source(source, dialects.projection(), stdin):
                for name, n in dialects.detect(batch).items():
                    found[name] = found.get(name, 0) + n
        found = {n: found[n] for n in dialects.NAMES if n in found}
    else:
        loaded = ingest.load(paths, _wide_projection(), stdin=stdin)
        found = dialects.detect(loaded.spans)
    if not found:
        return load_schema(None), loaded
    schema = compose_refs(dialects.refs(found))
    schema = replace(schema, name="+".join(["default", *found]))
    said = ", ".join(f"{n} ({c} span{'s' if c != 1 else ''})" for n, c in found.items())
    click.echo(f"auditor: dialects detected: {said}; schema {schema.origin}", err=True)
    return schema, loaded


@functools.lru_cache(maxsize=1)
def _wide_projection():
    """What every preset (and detection) reads: decode once, then choose the presets."""
    from auditor import dialects
    from auditor.schema import compose_refs

    return Compiled(compose_refs(dialects.all_refs())).projection | dialects.projection()


def _audit_batches(paths, compiled, stdin, shard: Shard | None, window: int | None):
    """Read batch by batch: keep one shard's traces, and/or audit traces as the window closes."""
    spans: list = []
    rejected: list = []
    n_rejected = 0
    tw = TraceWindow(compiled, window) if window is not None else None
    for source in paths:
        for batch, bad in ingest.iter_source(source, compiled.projection, stdin):
            if shard is not None:
                batch = [s for s in batch if shard.owns(s.trace_id)]
                bad = bad if shard.keeps_rejected else []
            if bad:
                if not rejected:
                    rejected.append(bad[0])
                n_rejected += len(bad)
            if tw is not None:
                tw.add(batch)
            else:
                spans.extend(batch)
    if rejected:
        warn(f"{n_rejected} span(s) rejected; first: {rejected[0].where}: {rejected[0].reason}")
    if tw is None:
        structural: list = []
        return audit_traces(iter_traces(spans, structural), compiled, structural, rejected=n_rejected), tuple(paths)
    if tw.late_spans:
        warn(f"{tw.late_spans} span(s) arrived more than --window {window} records after their trace was last "
             "seen and were audited apart from it; raise --window")
    return tw.finish(n_rejected), tuple(paths)


@click.command("check")
@click.argument("paths", nargs=-1, required=True, metavar="PATH... (or - for stdin)")
@max_input_bytes_option
@click.option("-s", "--schema", "schema_ref", default=None, metavar="REF",
              help="Attribution schema: a YAML/JSON file, 'default', or 'preset:NAME' [default].")
@click.option("--shard", "shard_spec", default=None, metavar="I/N",
              help="Audit only the traces of shard I of N (trace id's low 64 bits mod N); merge with 'auditor merge'.")
@click.option("--stream", is_flag=True,
              help="Audit each trace once no span of it arrived for --window records (JSON lines, records): bounded memory.")
@click.option("--window", type=click.IntRange(min=1), default=STREAM_WINDOW, show_default=True, metavar="N",
              help="With --stream: records (lines) after a trace's last span at which it counts as complete.")
@gate_options
@output_options
def command(paths, schema_ref, shard_spec, stream, window, fail_on, max_pct, formats, output, color, verbose):
    """Audit trace files: OTLP protobuf or JSON (lines), Collector file exports, gzip; '-' reads stdin.

    Exit 0 when the gate passes, 1 when it fails, 2 on bad usage or unreadable input.
    """
    from auditor.cli import EXIT_GATE, EXIT_OK, user_errors

    @user_errors
    def run():
        shard = Shard.parse(shard_spec) if shard_spec is not None else None
        result = load_and_audit(paths, schema_ref, (fail_on, parse_max_pct(max_pct)), stdin=sys.stdin.buffer,
                                shard=shard, window=window if stream else None)
        emit(result, formats, output, color, verbose)
        return result.extra["gate"].passed

    passed = run()
    sys.exit(EXIT_OK if passed else EXIT_GATE)
