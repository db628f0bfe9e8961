"""``auditor check``: audit trace files (or stdin) against a schema; gate CI on the result."""

from __future__ import annotations

import sys
import time

import click

from auditor import ingest
from auditor.commands.options import emit, gate_options, output_options, parse_max_pct
from auditor.engine import Compiled
from auditor.engine import audit_spans
from auditor.errors import UsageError
from auditor.model import RunInfo
from auditor.rollup import GatePolicy, finish
from auditor.schema import load_schema


def warn(msg: str) -> None:
    click.echo(f"auditor: warning: {msg}", err=True)


def load_and_audit(paths, schema_ref, policy_args, stdin=None):
    """Shared by check and the commands that need a full result (cost, reconcile)."""
    t0 = time.perf_counter()
    schema = load_schema(schema_ref)
    compiled = Compiled(schema)
    fail_on, max_pct = policy_args
    for key in max_pct:
        if key not in {k.name for k in schema.keys}:
            raise UsageError(f"--max-unattributed-pct: {key!r} is not a key of schema {schema.name!r}")
    loaded = ingest.load(paths, compiled.projection, stdin=stdin)
    if loaded.rejected:
        first = loaded.rejected[0]
        warn(f"{len(loaded.rejected)} span(s) rejected; first: {first.where}: {first.reason}")
    parts = audit_spans(loaded.spans, compiled, loaded.rejected)
    run = RunInfo(inputs=loaded.inputs, schema=schema.origin, seconds=time.perf_counter() - t0)
    return finish(parts, run, GatePolicy.from_schema(schema, fail_on, max_pct))


@click.command("check")
@click.argument("paths", nargs=-1, required=True, metavar="PATH... (or - for stdin)")
@click.option("-s", "--schema", "schema_ref", default=None, metavar="REF",
              help="Attribution schema: a YAML/JSON file, 'default', or 'preset:NAME' [default].")
@gate_options
@output_options
def command(paths, schema_ref, fail_on, max_pct, formats, output, color, verbose):
    """Audit trace files: OTLP protobuf or JSON (lines), Collector file exports, gzip; '-' reads stdin.

    Exit 0 when the gate passes, 1 when it fails, 2 on bad usage or unreadable input.
    """
    from auditor.cli import EXIT_GATE, EXIT_OK, user_errors

    @user_errors
    def run():
        result = load_and_audit(paths, schema_ref, (fail_on, parse_max_pct(max_pct)), stdin=sys.stdin.buffer)
        emit(result, formats, output, color, verbose)
        return result.extra["gate"].passed

    passed = run()
    sys.exit(EXIT_OK if passed else EXIT_GATE)
