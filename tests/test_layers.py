"""The data flow stays one-directional: import-linter's contracts (pyproject.toml) on the
import graph, plus every format rendering a result.
"""

from pathlib import Path

import pytest

from auditor.report import Format, RenderOptions, render

ROOT = Path(__file__).resolve().parent.parent


def test_import_linter_contracts_are_kept(capsys):
    from importlinter.cli import lint_imports

    code = lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True)
    out = capsys.readouterr().out
    assert code == 0, out[-4000:]
    assert "Contracts: 3 kept, 0 broken." in out


@pytest.mark.parametrize("fmt", list(Format))
def test_every_format_renders_a_result(fmt):
    from auditor.engine import audit
    from auditor.schema import load_schema
    from builders import LLM, Tree

    spans = Tree("root", {"tenant_id": "a"}, [Tree("x", {}, [Tree("chat", LLM)])]).spans()
    out = render(fmt, audit(spans, load_schema()), RenderOptions())
    assert isinstance(out, str) and len(out) > 50
