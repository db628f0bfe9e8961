"""``auditor merge``: combine JSON results (e.g. of N shards) and render them like ``check``."""

from __future__ import annotations

import json
import sys

import click

from auditor.commands.options import emit, gate_options, output_options, parse_max_pct
from auditor.errors import InputError
from auditor.model import Counts, Parts, RunInfo
from auditor.result_json import parts_from_json
from auditor.rollup import GatePolicy, finish, merge_parts


def read_result(path: str) -> tuple[Parts, RunInfo]:
    try:
        with open(path, "rb") as fh:
            doc = json.load(fh)
    except OSError as e:
        raise InputError(f"{path}: cannot open: {e.strerror or e}") from None
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: line {e.lineno} column {e.colno}: invalid JSON: {e.msg}") from None
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: offset {e.start}: expected UTF-8 JSON") from None
    return parts_from_json(doc, path)


def merge_files(paths, policy: GatePolicy):
    parts = Parts(Counts())
    inputs: tuple[str, ...] = ()
    schema = ""
    seconds = 0.0
    for p in paths:
        part, run = read_result(p)
        parts = merge_parts(parts, part)
        inputs += run.inputs
        schema = schema or run.schema
        seconds += run.seconds
    return finish(parts, RunInfo(inputs, schema, seconds), policy)


@click.command("merge")
@click.argument("paths", nargs=-1, required=True, type=click.Path(dir_okay=False), metavar="RESULT.json...")
@gate_options
@output_options
def command(paths, fail_on, max_pct, formats, output, color, verbose):
    """Merge JSON results written by 'auditor check --format json' and render them.

    Auditing N shards and merging equals auditing the whole.
    """
    from auditor.cli import EXIT_GATE, EXIT_OK, user_errors

    @user_errors
    def run():
        result = merge_files(paths, GatePolicy(fail_on or "error", parse_max_pct(max_pct)))
        emit(result, formats, output, color, verbose)
        return result.extra["gate"].passed

    sys.exit(EXIT_OK if run() else EXIT_GATE)
