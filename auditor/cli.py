"""The command line: a thin shell. Exit 0 pass, 1 gate failed, 2 usage or unreadable input,
130 interrupted (Ctrl-C).

Every user error surfaces as one line on stderr (``auditor: error: ...``); machine output
goes to stdout or to files named by ``--format FMT:PATH`` / ``-o``.
"""

from __future__ import annotations

import importlib

import click

from auditor import __version__
from auditor.commands.options import EXIT_GATE, EXIT_OK, EXIT_USAGE

EXIT_INTERRUPTED = 130
from auditor.errors import AuditorError

# One module per command; each exposes ``command``.
COMMANDS = ("check", "baseline", "merge", "serve", "reconcile", "cost", "ui", "schema_cmd")


class Failure(click.ClickException):
    exit_code = EXIT_USAGE

    def show(self, file=None) -> None:
        click.echo(f"auditor: error: {self.message}", err=True)


class Interrupted(click.ClickException):
    """Ctrl-C: 130 as shells report SIGINT, never 1, which says the gate failed."""

    exit_code = EXIT_INTERRUPTED

    def show(self, file=None) -> None:
        click.echo("auditor: interrupted", err=True)


class AuditorGroup(click.Group):
    """The one place user errors become a one-line exit 2, for every command."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except AuditorError as e:
            raise Failure(str(e)) from None
        except RecursionError:
            raise Failure("input nested too deeply to process") from None
        except KeyboardInterrupt:
            raise Interrupted("interrupted") from None


@click.group(cls=AuditorGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="auditor")
def cli() -> None:
    """Audit OpenTelemetry traces of LLM apps and AI gateways: where cost-attribution metadata
    (tenant_id, workflow_id, ...) is lost on the way to the LLM call, and what it costs."""


for _name in COMMANDS:
    cli.add_command(importlib.import_module(f"auditor.commands.{_name}").command)


def main() -> None:
    cli(prog_name="auditor")


__all__ = ["EXIT_GATE", "EXIT_OK", "EXIT_USAGE", "cli", "main"]
