"""``auditor schema``: propose a schema from traces (``infer``) and validate one (``check``)."""

from __future__ import annotations

import sys

import click

from auditor import ingest
from auditor.commands.options import route, write
from auditor.compiled import Compiled
from auditor.commands.input_limit import max_input_bytes_option
from auditor.projection import EVERYTHING
from auditor.schema import compose_refs, load_schema


@click.group("schema")
def command() -> None:
    """Propose an attribution schema from traces, or validate a schema file."""


@command.command("infer")
@click.argument("paths", nargs=-1, required=True, metavar="PATH... (or - for stdin)")
@max_input_bytes_option
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write the proposed schema here instead of stdout.")
def infer_cmd(paths, output):
    """Read traces and propose a schema: candidate keys (on roots, constant within a trace),
    their aliases, how often LLM calls carry them, and the dialects detected."""
    from auditor import dialects, infer

    loaded = ingest.load(paths, EVERYTHING, stdin=sys.stdin.buffer)
    is_llm = Compiled(compose_refs(dialects.all_refs())).is_llm
    text = infer.render(infer.infer(loaded.spans, is_llm, loaded.inputs))
    for _fmt, path in route([("yaml", None)], output):
        write(path, text)


@command.command("check")
@click.argument("ref", metavar="FILE")
def check_cmd(ref):
    """Validate a schema file (or default / preset:NAME) and its extends; exit 2 when invalid."""
    s = load_schema(ref)
    keys = ", ".join(f"{k.name} ({'required' if k.required else 'dimension'}, {len(k.sources)} source{'s' if len(k.sources) != 1 else ''})" for k in s.keys)
    click.echo(f"{ref}: valid schema {s.name!r}: {len(s.keys)} key(s): {keys or 'none'}; "
               f"{len(s.llm_calls)} LLM call selector(s); scope {s.scope}")
