"""``auditor merge``: combine JSON results (e.g. of N shards) and render them like ``check``."""

from __future__ import annotations

import json

import click

from auditor.commands.options import emit, exit_gate, gate_options, output_options, parse_max_pct
from auditor.errors import InputError
from auditor.pipeline import Overrides, merge_results
from auditor.result_json import parts_from_json


def read_result(path: str):
    try:
        with open(path, "rb") as fh:
            doc = json.load(fh)
    except OSError as e:
        raise InputError(f"{path}: cannot open: {e.strerror or e}") from None
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: line {e.lineno} column {e.colno}: invalid JSON: {e.msg}") from None
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: offset {e.start}: expected UTF-8 JSON") from None
    parts, run = parts_from_json(doc, path)
    return path, parts, run


@click.command("merge")
@click.argument("paths", nargs=-1, required=True, type=click.Path(dir_okay=False), metavar="RESULT.json...")
@gate_options
@output_options
def command(paths, fail_on, max_pct, allow_empty, formats, output, color, verbose):
    """Merge JSON results written by 'auditor check --format json' and render them.

    Auditing N shards and merging equals auditing the whole, gate included: the schema's
    severities and gate travel in each result; --fail-on / --max-unattributed-pct override them.
    """
    result = merge_results((read_result(p) for p in paths), Overrides(fail_on, parse_max_pct(max_pct), allow_empty))
    emit(result, formats, output, color, verbose)
    exit_gate(result.gate.passed)
