"""``auditor baseline``: record what the traces say today, for ``check --baseline`` tomorrow."""

from __future__ import annotations

import sys

import click

from auditor.commands.input_limit import max_input_bytes_option
from auditor.commands.options import emit, jobs_for, jobs_option, note, schema_option
from auditor.pipeline import audit_files
from auditor.plan import Plan


@click.command("baseline")
@click.argument("paths", nargs=-1, required=True, metavar="PATH... (or - for stdin)")
@max_input_bytes_option
@schema_option
@jobs_option
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, writable=True), metavar="OLD.json",
              help="Where to write the baseline (the JSON report of this audit).")
def command(paths, schema_ref, jobs, output):
    """Audit trace files and write the result as a baseline for 'auditor check --baseline OLD.json'.

    The baseline is the ordinary JSON report (any 'check --format json' output serves too).
    Exit 0 whatever it finds (it records the state you accept), 2 on bad usage or input.
    """
    result = audit_files(paths, Plan.of(schema_ref), stdin=sys.stdin.buffer, note=note, jobs=jobs_for(jobs, paths))
    emit(result, ("json",), output, None, False)
    note(f"baseline written to {output}: {len(result.findings)} finding(s) in {len(result.groups)} group(s), "
         f"{len(result.boundaries)} leaking boundar{'y' if len(result.boundaries) == 1 else 'ies'}")
