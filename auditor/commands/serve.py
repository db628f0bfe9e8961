"""``auditor serve``: the OTLP sidecar (gRPC 4317, HTTP 4318) with a live report and metrics."""

from __future__ import annotations

import sys

import click

from auditor.server.http_transport import DEFAULT_BODY_TIMEOUT, DEFAULT_HEADER_TIMEOUT, DEFAULT_MAX_CONNECTIONS
from auditor.server.web_guard import exposure_warning, validate_token


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Exposing the sidecar beyond loopback is a deliberate choice.")
@click.option("--grpc-port", type=click.IntRange(0, 65535), default=4317, show_default=True, help="OTLP/gRPC port (0: any free port).")
@click.option("--http-port", type=click.IntRange(0, 65535), default=4318, show_default=True,
              help="OTLP/HTTP port, also serving /, /api/report, /metrics, /healthz (0: any free port).")
@click.option("--data-dir", default="./.auditor", show_default=True, type=click.Path(file_okay=False),
              help="Spool and SQLite store; listen.json there names the bound ports.")
@click.option("-s", "--schema", "schema_ref", default=None, metavar="REF",
              help="Attribution schema: a YAML/JSON file, 'default', or 'preset:NAME' [default].")
@click.option("--trace-idle", type=click.FloatRange(0.01), default=10.0, show_default=True, metavar="SECONDS",
              help="Audit a trace once no span of it arrived for this long.")
@click.option("--trace-max-age", type=click.FloatRange(0.01), default=300.0, show_default=True, metavar="SECONDS",
              help="Audit a trace at the latest this long after its first span (later spans re-open it).")
@click.option("--max-buffered-spans", type=click.IntRange(1), default=200_000, show_default=True,
              help="Spans accepted but not yet audited; past it exports get 429 / UNAVAILABLE (retryable).")
@click.option("--max-request-bytes", type=click.IntRange(1024), default=64 * 1024 * 1024, show_default=True,
              help="Largest export, also after gzip decompression: 413 / RESOURCE_EXHAUSTED above.")
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Audit processes; each audits the traces whose id hashes to it.")
@click.option("--auth-token", default=None, envvar="AUDITOR_AUTH_TOKEN", metavar="TOKEN",
              help="Require 'Authorization: Bearer TOKEN' on every request but /healthz (browsers sign in at /login) "
                   "[env AUDITOR_AUTH_TOKEN]. An empty value is an error.")
@click.option("--allow-host", "allow_hosts", multiple=True, metavar="NAME",
              help="A host name browsers may use to reach the pages and /api/report (repeatable); IP addresses, "
                   "localhost and the --host name always work. Guards against DNS rebinding.")
@click.option("--max-connections", type=click.IntRange(8), default=DEFAULT_MAX_CONNECTIONS, show_default=True,
              help="Open connections at most, on HTTP and on gRPC each; new ones are closed beyond it (lowered to fit the descriptor limit).")
@click.option("--header-timeout", type=click.FloatRange(0.1), default=DEFAULT_HEADER_TIMEOUT, show_default=True, metavar="SECONDS",
              help="An HTTP request's headers (a gRPC connection's handshake) must arrive within this long (408 and close).")
@click.option("--body-timeout", type=click.FloatRange(0.1), default=DEFAULT_BODY_TIMEOUT, show_default=True, metavar="SECONDS",
              help="An HTTP request body may stall at most this long between chunks (then closed).")
def command(host, grpc_port, http_port, data_dir, schema_ref, trace_idle, trace_max_age, max_buffered_spans,
            max_request_bytes, workers, auth_token, allow_hosts, max_connections, header_timeout, body_timeout):
    """Run the OTLP sidecar: receive traces, audit each as it completes, keep the findings.

    An export is acknowledged only once it is on disk; SIGTERM audits everything buffered
    and exits 0.
    """
    from auditor.cli import user_errors
    from auditor.server.sidecar import ServeConfig, serve

    @user_errors
    def run():
        token = validate_token(auth_token)
        warning = exposure_warning("serve", host, token)
        if warning:
            click.echo(warning, err=True)
        return serve(
            ServeConfig(host, grpc_port, http_port, data_dir, schema_ref, trace_idle, trace_max_age,
                        max_buffered_spans, max_request_bytes, token, workers, tuple(allow_hosts),
                        max_connections, header_timeout, body_timeout)
        )

    sys.exit(run())
