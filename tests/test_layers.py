"""The data flow stays one-directional: checked mechanically on the import graph.

ingest knows nothing of rules; rules know nothing of formats; reporters only read results.
"""

import ast
from pathlib import Path

import pytest

from auditor.report import Format, RenderOptions, render

PKG = Path(__file__).resolve().parent.parent / "auditor"

FORBIDDEN = {
    "ingest": ("auditor.rules", "auditor.engine", "auditor.report", "auditor.rollup", "auditor.server", "auditor.commands"),
    "rules": ("auditor.ingest", "auditor.report", "auditor.server", "auditor.commands", "auditor.cli"),
    "report": ("auditor.ingest", "auditor.assemble", "auditor.engine", "auditor.rules.attribution", "auditor.server", "auditor.commands"),
}


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return out


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_does_not_import_downstream(layer):
    bad = []
    for f in sorted((PKG / layer).rglob("*.py")):
        for imp in imports(f):
            if imp.startswith(FORBIDDEN[layer]):
                bad.append(f"{f.relative_to(PKG.parent)} imports {imp}")
    assert bad == []


@pytest.mark.parametrize("fmt", list(Format))
def test_every_format_renders_a_result(fmt):
    from auditor.engine import audit
    from auditor.schema import load_schema
    from builders import LLM, Tree

    spans = Tree("root", {"tenant_id": "a"}, [Tree("x", {}, [Tree("chat", LLM)])]).spans()
    out = render(fmt, audit(spans, load_schema()), RenderOptions())
    assert isinstance(out, str) and len(out) > 50
