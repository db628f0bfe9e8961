"""``auditor serve``: the OTLP sidecar (gRPC 4317, HTTP 4318) with a live report and metrics."""

from __future__ import annotations

import re
import sys
from urllib.parse import urlsplit

import click

from auditor.server.transport_limits import DEFAULT_BODY_TIMEOUT, DEFAULT_HEADER_TIMEOUT, DEFAULT_MAX_CONNECTIONS
from auditor.commands.options import schema_option

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800,
          "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


class _Amount(click.ParamType):
    """A number with a unit: a duration (30d, 12h, 90m, 3600) or a size (10GiB, 500MB, 1048576)."""

    def __init__(self, name: str, units: tuple[str, ...], default_unit: str):
        self.name, self.units, self.default_unit = name, units, default_unit

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)):
            return value
        m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*", str(value))
        unit = (m[2].lower() if m else "") or self.default_unit
        if not m or unit not in self.units or float(m[1]) <= 0:
            self.fail(f"{value!r}: expected a positive number with a unit ({', '.join(self.units)})", param, ctx)
        return float(m[1]) * _UNITS[unit]


DURATION = _Amount("duration", ("s", "m", "h", "d", "w"), "s")
SIZE = _Amount("size", ("b", "kb", "mb", "gb", "tb", "kib", "mib", "gib", "tib"), "b")


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Exposing the sidecar beyond loopback is a deliberate choice.")
@click.option("--grpc-port", type=click.IntRange(0, 65535), default=4317, show_default=True, help="OTLP/gRPC port (0: any free port).")
@click.option("--http-port", type=click.IntRange(0, 65535), default=4318, show_default=True,
              help="OTLP/HTTP port, also serving /, /api/report, /metrics, /healthz (0: any free port).")
@click.option("--data-dir", default="./.auditor", show_default=True, type=click.Path(file_okay=False),
              help="Spool and SQLite store; listen.json there names the bound ports.")
@schema_option
@click.option("--trace-idle", type=click.FloatRange(0.01), default=10.0, show_default=True, metavar="SECONDS",
              help="Audit a trace once no span of it arrived for this long.")
@click.option("--trace-max-age", type=click.FloatRange(0.01), default=300.0, show_default=True, metavar="SECONDS",
              help="Audit a trace at the latest this long after its first span (later spans re-open it).")
@click.option("--max-buffered-bytes", type=SIZE, default="1GiB", show_default=True, metavar="SIZE",
              help="Exports acknowledged but not yet audited, in bytes queued on disk; past it exports get "
                   "429 / UNAVAILABLE (retryable). Memory stays bounded by the audit workers' window.")
@click.option("--max-buffered-spans", type=click.IntRange(1), default=None,
              help="Also bound the buffer in spans (429 / UNAVAILABLE past it) [default: bytes only].")
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
@click.option("--retain-for", "retain_age", type=DURATION, default=None, metavar="DURATION",
              help="Retention by age: delete traces last audited longer ago than this (e.g. 30d, 12h) [default: keep].")
@click.option("--retain-bytes", type=SIZE, default=None, metavar="SIZE",
              help="Retention by size: keep the store under this, deleting the oldest traces first (e.g. 10GiB) [default: keep].")
@click.option("--drain-timeout", type=click.FloatRange(1), default=20.0, show_default=True, metavar="SECONDS",
              help="On SIGTERM, audit what is buffered for at most this long (under Kubernetes' 30 s grace); "
                   "the rest stays queued for the next start.")
@click.option("--alert-webhook", metavar="URL", default=None,
              help="POST a JSON message (Slack-compatible 'text' plus key, share, threshold, worst boundary, example "
                   "trace) to this http(s) URL when the live gate turns failing for a key, and when it recovers. "
                   "Only this URL is contacted.")
@click.option("--alert-window", type=DURATION, default="5m", show_default=True, metavar="DURATION",
              help="At most one alert per key and state within this window (a flapping key is not a storm).")
@click.option("--alert-interval", type=click.FloatRange(0.05), default=10.0, show_default=True, metavar="SECONDS",
              help="How often the live gate is looked at for alerts.")
def command(host, grpc_port, http_port, data_dir, schema_ref, trace_idle, trace_max_age, max_buffered_bytes, max_buffered_spans,
            max_request_bytes, workers, auth_token, allow_hosts, max_connections, header_timeout, body_timeout,
            retain_age, retain_bytes, drain_timeout, alert_webhook, alert_window, alert_interval):
    """Run the OTLP sidecar: receive traces, audit each as it completes, keep the findings.

    An export is acknowledged only once it is on disk; SIGTERM audits everything buffered
    and exits 0. A full disk refuses exports (503 / UNAVAILABLE, retryable) and loses nothing.
    """
    from auditor.server.sidecar import ServeConfig, serve
    from auditor.server.web_guard import exposure_warning, validate_token

    token = validate_token(auth_token)
    if alert_webhook is not None:
        u = urlsplit(alert_webhook)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise click.BadParameter(f"{alert_webhook!r}: expected an http:// or https:// URL", param_hint="--alert-webhook")
    warning = exposure_warning("serve", host, token)
    if warning:
        click.echo(warning, err=True)
    sys.exit(serve(
        ServeConfig(host, grpc_port, http_port, data_dir, schema_ref, trace_idle, trace_max_age,
                    max_buffered_spans, max_request_bytes, token, workers, drain_timeout=drain_timeout,
                    retain_age=retain_age, retain_bytes=None if retain_bytes is None else int(retain_bytes),
                    allow_hosts=tuple(allow_hosts), max_connections=max_connections,
                    header_timeout=header_timeout, body_timeout=body_timeout, alert_webhook=alert_webhook,
                    alert_window=alert_window, alert_interval=alert_interval, max_buffered_bytes=int(max_buffered_bytes))
    ))
