import pytest

from auditor.engine import audit
from auditor.schema import compile_schema, load_schema


@pytest.fixture(scope="session")
def default_schema():
    return load_schema()


def simple_schema(scope: str = "path", may_change: bool = False, value=None, keys=("tenant_id",)):
    doc = {
        "version": 1,
        "name": "test",
        "scope": scope,
        "llm_calls": [{"attribute": "gen_ai.operation.name"}],
        "keys": {k: {"sources": [{"attribute": k}], "may_change": may_change, **({"value": value} if value else {})} for k in keys},
        "genai": {"enabled": False},
    }
    return compile_schema(doc, origin="test")


def run(spans, schema=None, **kw):
    schema = schema or simple_schema()
    return audit(spans, schema, **kw)


def codes(result, code=None):
    return [
        (f.code, f.key, f.parent_span_id, f.span_id)
        for f in result.findings
        if code is None or f.code == code
    ]
