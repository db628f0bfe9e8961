"""A self-contained HTML page (or section) for the reconciliation: jinja2, autoescaped."""

from __future__ import annotations

from functools import lru_cache

import jinja2

from auditor.reconcile.result import Reconciliation, money


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("auditor.reconcile.render", "templates"),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["usd"] = money
    return env


def render_section(rec: Reconciliation) -> str:
    """The reconciliation as one ``<section>``, for embedding in another report."""
    return _env().get_template("reconcile_section.html.j2").render(rec=rec, s=rec.summary)


def render(rec: Reconciliation) -> str:
    return _env().get_template("reconcile.html.j2").render(rec=rec, section=render_section(rec))
