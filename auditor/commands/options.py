"""Options and output handling shared by the commands that render a result."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from typing import Iterable

import click

from auditor.errors import UsageError
from auditor.pipeline import Overrides, auto_jobs, read_baseline
from auditor.report import Format, RenderOptions, parse_output_spec, render_chunks

FAIL_ON = click.Choice(["error", "warning", "note", "never"])
EXIT_OK, EXIT_GATE, EXIT_USAGE = 0, 1, 2


def exit_gate(passed: bool) -> None:
    sys.exit(EXIT_OK if passed else EXIT_GATE)


def note(msg: str) -> None:
    """Diagnostics go to stderr; machine output owns stdout."""
    click.echo(f"auditor: {msg}", err=True)


def schema_option(fn):
    return click.option(
        "-s", "--schema", "schema_ref", default=None, metavar="REF",
        show_default="detected: default + the dialects' presets",
        help="Attribution schema: a YAML/JSON file, 'default' (schemas/default.yaml: tenant_id, workflow_id), or "
             "'preset:NAME'. Without it each trace is read by the default schema plus the presets of the dialects "
             "its spans speak (detected; stderr says which).",
    )(fn)


def jobs_option(fn):
    return click.option(
        "--jobs", type=click.IntRange(min=1), default=None, metavar="N",
        help="Processes for the audit, one shard of the traces each, merged exactly. Default: the usable CPUs "
             "(at most 8) for OTLP files (protobuf or JSON lines) of 16 MB or more, else 1.",
    )(fn)


def jobs_for(jobs: int | None, paths: tuple[str, ...]) -> int:
    """``--jobs`` as given, or chosen for the inputs when left out."""
    return auto_jobs(tuple(paths)) if jobs is None else jobs


def output_options(fn):
    fn = click.option(
        "--color/--no-color", "color", default=None, help="Colour the text report (default: only on a terminal)."
    )(fn)
    fn = click.option("-v", "--verbose", is_flag=True, help="List every finding in the text report.")(fn)
    fn = click.option(
        "-o", "--output", type=click.Path(dir_okay=False, writable=True), default=None,
        help="Write the (first) format without its own path here instead of stdout.",
    )(fn)
    fn = click.option(
        "-f", "--format", "formats", multiple=True, metavar="FMT[:PATH]",
        help=f"Output format, repeatable: {', '.join(f.value for f in Format)}; FMT:PATH writes to a file.",
    )(fn)
    return fn


def gate_options(command):
    """The gate's flags, handed to the command as one ``overrides`` (pipeline.Overrides)."""

    @functools.wraps(command)
    def wrapper(*args, fail_on, max_pct, allow_empty, baseline_path, tolerance, **kwargs):
        ref = read_baseline(baseline_path, tolerance) if baseline_path else None
        if ref is None and tolerance:
            raise UsageError("--baseline-tolerance-pct needs --baseline")
        return command(*args, overrides=Overrides(fail_on, parse_max_pct(max_pct), allow_empty, ref), **kwargs)

    fn = wrapper
    fn = click.option(
        "--baseline-tolerance-pct", "tolerance", type=float, default=0.0, show_default=True, metavar="POINTS",
        help="With --baseline: how many percentage points a key's unattributed share may rise before the gate fails.",
    )(fn)
    fn = click.option(
        "--baseline", "baseline_path", type=click.Path(dir_okay=False), default=None, metavar="OLD.json",
        help="Gate only on what is new or worse than this earlier JSON report (auditor baseline, or check -f json): "
             "new finding groups at or above --fail-on, and keys whose unattributed share rose.",
    )(fn)
    fn = click.option(
        "--max-unattributed-pct", "max_pct", multiple=True, metavar="KEY=N",
        help="Fail when more than N percent of LLM spend lacks KEY (by cost; by calls when nothing is priced).",
    )(fn)
    fn = click.option("--fail-on", type=FAIL_ON, default=None, help="Fail on findings of this severity or worse [error].")(fn)
    fn = click.option("--allow-empty", is_flag=True,
                      help="Pass the gate on input without any span (by default an empty export fails it).")(fn)
    return fn


def parse_max_pct(specs: tuple[str, ...]) -> dict[str, float]:
    out = {}
    for spec in specs:
        key, sep, num = spec.partition("=")
        try:
            val = float(num)
        except ValueError:
            val = -1.0
        if not sep or not key or not 0 <= val <= 100:
            raise UsageError(f"--max-unattributed-pct {spec!r}: expected KEY=N with N between 0 and 100")
        out[key] = val
    return out


def route(specs: list, output: str | None) -> list:
    """Where each (format, path) goes: ``-o`` takes the first format without a path; at most
    one other format may go to stdout (path None). Every command routes through here."""
    routed = []
    output_used = stdout_taken = False
    for fmt, path in specs:
        if path is None and output is not None and not output_used:
            path, output_used = output, True
        elif path is None:
            if stdout_taken:
                raise UsageError("--format: only one format can go to stdout; give the others a path (FMT:PATH)")
            stdout_taken = True
        routed.append((fmt, path))
    return routed


def write(path: str | None, text: str | Iterable[str]) -> None:
    """Text, or its pieces as they are rendered, to stdout or to a file opened only once the
    first piece is rendered; a file this created is removed should rendering fail midway (no
    empty or partial file on failure)."""
    pieces = iter((text,) if isinstance(text, str) else text)
    first = next(pieces, "")
    if path is None or path == "-":
        click.echo(first, nl=False)
        for piece in pieces:
            click.echo(piece, nl=False)
        return
    created = not os.path.lexists(path)
    try:
        with open(path, "w", encoding="utf-8", newline="") as fh:
            fh.write(first)
            for piece in pieces:
                fh.write(piece)
    except OSError as e:
        raise UsageError(f"{path}: cannot write report: {e.strerror or e}") from None
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                os.unlink(path)
        raise


def emit(result, formats: tuple[str, ...], output: str | None, color: bool | None, verbose: bool) -> None:
    """Render every requested format of an AuditResult and write each where it goes."""
    for fmt, path in route([parse_output_spec(s) for s in (formats or ("text",))], output):
        use_color = bool(color) if color is not None else (path is None and sys.stdout.isatty() and "NO_COLOR" not in os.environ)
        write(path, render_chunks(fmt, result, RenderOptions(color=use_color and fmt is Format.TEXT, verbose=verbose)))
