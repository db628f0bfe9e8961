"""``auditor ui``: the paste / upload page alone, without the OTLP sidecar."""

from __future__ import annotations

import click

from auditor.server.transport_limits import DEFAULT_BODY_TIMEOUT, DEFAULT_HEADER_TIMEOUT, DEFAULT_MAX_CONNECTIONS


@click.command("ui")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option("--max-body-bytes", default=32 * 1024 * 1024, show_default=True, type=click.IntRange(1),
              help="Largest request body accepted (pasted text plus uploads), also after gzip decompression.")
@click.option("--max-concurrent", default=2, show_default=True, type=click.IntRange(1, 64),
              help="Submissions audited at once; more get 503 with Retry-After.")
@click.option("--auth-token", default=None, envvar="AUDITOR_AUTH_TOKEN", metavar="TOKEN",
              help="Require this token: 'Authorization: Bearer TOKEN', or sign in at /login from a browser "
                   "[env AUDITOR_AUTH_TOKEN]. An empty value is an error.")
@click.option("--allow-host", "allow_hosts", multiple=True, metavar="NAME",
              help="A host name browsers may use to reach the page (repeatable); IP addresses, localhost and the "
                   "--host name always work. Guards against DNS rebinding.")
def command(host: str, port: int, max_body_bytes: int, max_concurrent: int, auth_token: str | None,
            allow_hosts: tuple[str, ...]) -> None:
    """Serve the web page: paste or upload traces, pick a schema, get the HTML report."""
    import asyncio

    import uvicorn

    from auditor.server.http_transport import quiet_accept_errors, uvicorn_config
    from auditor.server.ui import ui_app
    from auditor.server.web_guard import WebGuard, allowed_hosts, exposure_warning, validate_token

    token = validate_token(auth_token)
    warning = exposure_warning("ui", host, token)
    if warning:
        click.echo(warning, err=True)
    app = WebGuard(ui_app(max_body_bytes=max_body_bytes, max_concurrent=max_concurrent), token,
                   allowed_hosts(host, allow_hosts))
    config = uvicorn_config(app, host=host, port=port, max_connections=DEFAULT_MAX_CONNECTIONS,
                            header_timeout=DEFAULT_HEADER_TIMEOUT, body_timeout=DEFAULT_BODY_TIMEOUT)
    click.echo(f"auditor ui: serving http://{host}:{port}/ (Ctrl-C to stop)", err=True)

    async def main():
        quiet_accept_errors(asyncio.get_running_loop())
        await uvicorn.Server(config).serve()

    asyncio.run(main())
