"""``auditor merge``: combine JSON results (e.g. of N shards) and render them like ``check``."""

from __future__ import annotations

import click

from auditor.commands.options import emit, exit_gate, gate_options, output_options
from auditor.pipeline import merge_results, read_result


@click.command("merge")
@click.argument("paths", nargs=-1, required=True, type=click.Path(dir_okay=False), metavar="RESULT.json...")
@gate_options
@output_options
def command(paths, overrides, formats, output, color, verbose):
    """Merge JSON results written by 'auditor check --format json' and render them.

    Auditing N shards and merging equals auditing the whole, gate included: the schema's
    severities and gate travel in each result; --fail-on / --max-unattributed-pct override them.
    """
    result = merge_results((read_result(p) for p in paths), overrides)
    emit(result, formats, output, color, verbose)
    exit_gate(result.gate.passed)
