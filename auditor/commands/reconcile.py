"""``auditor reconcile``: compare provider usage / cost exports with the priced LLM calls in
traces over the same window; the difference is the spend no gateway sees."""

from __future__ import annotations

import click

from auditor.commands.options import exit_gate, note, route, schema_option, write
from auditor.commands.input_limit import max_input_bytes_option
from auditor.errors import UsageError
from auditor.pipeline import audit_files
from auditor.plan import Plan


def emit(rec, formats: tuple[str, ...], output: str | None) -> None:
    """Render every requested format of a reconciliation and write each where it goes."""
    from auditor.reconcile.render import parse_output_spec, render

    for fmt, path in route([parse_output_spec(s) for s in (formats or ("text",))], output):
        write(path, render(fmt, rec))


def run_reconcile(paths, usage_files, schema_ref=None, key_map=None, max_ungated_pct=None):
    """Load the exports first (cheap, and their errors are the likeliest), then audit the traces."""
    from dataclasses import replace

    from auditor.pricing import Pricer
    from auditor.reconcile import KeyMap, load_usage, reconcile, with_gateway_keys
    from auditor.schema import load_schema

    if list(paths).count("-") + list(usage_files).count("-") > 1:
        raise UsageError("stdin ('-') can be read once: give it as the traces or as one --usage export, not both")
    exports = [load_usage(p) for p in usage_files]
    keymap = KeyMap.load(key_map)
    result = audit_files(paths, Plan.of(schema_ref, adapt=with_gateway_keys), note=note)
    # The provider's tokens are priced by the same code and the same schema prices as the spans.
    pricer = Pricer(load_schema(schema_ref))
    rec = reconcile(exports, result.calls, keymap, pricer=pricer, max_ungated_pct=max_ungated_pct)
    return replace(rec, inputs=tuple(result.run.inputs))


@click.command("reconcile")
@click.argument("paths", nargs=-1, required=True, metavar="TRACES...")  # '-': stdin
@max_input_bytes_option
@click.option("-u", "--usage", "usage_files", multiple=True, required=True, metavar="FILE",
              help="A provider export, repeatable: Anthropic usage or cost report JSON (one page per file or "
                   "pages concatenated), the Anthropic Console cost CSV, OpenAI usage/completions or costs JSON.")
@schema_option
@click.option("--key-map", default=None, type=click.Path(dir_okay=False), metavar="FILE",
              help="YAML/JSON: gateway key hash or alias (e.g. LiteLLM metadata.user_api_key_hash) -> provider "
                   "api key id, or -> {api_key_id, workspace_id}.")
@click.option("--max-ungated-pct", type=click.FloatRange(0, 100), default=None, metavar="N",
              help="Fail (exit 1) when more than N percent of the invoiced spend has no traced call.")
@click.option("-f", "--format", "formats", multiple=True, metavar="FMT[:PATH]",
              help="Output format, repeatable: text, json, markdown, html; FMT:PATH writes to a file.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write the (first) format without its own path here instead of stdout.")
def command(paths, usage_files, schema_ref, key_map, max_ungated_pct, formats, output):
    """Compare provider usage exports with the priced LLM calls in TRACES: the ungated spend.

    Groups by UTC day, provider, model, api key / workspace / project (where both sides know
    it) and tier; a span belongs to the day its start falls in. Exit 0 when the gate passes,
    1 when the ungated share exceeds --max-ungated-pct, 2 on bad usage or unreadable input.
    """
    rec = run_reconcile(paths, usage_files, schema_ref, key_map, max_ungated_pct)
    emit(rec, formats, output)
    exit_gate(rec.summary.passed)

