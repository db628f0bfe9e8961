"""``auditor ui``: the paste / upload page alone, without the OTLP sidecar."""

from __future__ import annotations

import click


@click.command("ui")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option("--max-body-bytes", default=32 * 1024 * 1024, show_default=True, type=click.IntRange(1),
              help="Largest request body accepted (pasted text plus uploads).")
def command(host: str, port: int, max_body_bytes: int) -> None:
    """Serve the web page: paste or upload traces, pick a schema, get the HTML report."""
    import uvicorn

    from auditor.server.ui import ui_app

    click.echo(f"auditor ui: serving http://{host}:{port}/ (Ctrl-C to stop)", err=True)
    uvicorn.run(ui_app(max_body_bytes=max_body_bytes), host=host, port=port, log_level="warning")
