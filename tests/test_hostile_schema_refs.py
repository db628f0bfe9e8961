"""A schema's JSON-Schema ``$ref`` is never fetched (no SSRF, no file reads), and one that does not
resolve is a schema error (exit 2) instead of an internal error in every trace."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest
from hostile_support import ROOT, RecordingServer, UiServer
from report_fixtures import BAGGAGE

from auditor import jsonschema_local
from auditor.errors import SchemaError
from auditor.schema import load_schema_text


def _schema(ref: str) -> str:
    return (
        "version: 1\nname: hostile\nextends: [default]\nkeys:\n  tenant_id:\n"
        f"    value: {{\"allOf\": [{{\"type\": \"string\"}}, {{\"$ref\": \"{ref}\"}}]}}\n"
    )


@pytest.fixture()
def remote():
    srv = RecordingServer()
    yield srv
    srv.close()


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "auditor", *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_check_and_schema_check_fetch_nothing_and_exit_2(remote, tmp_path):
    schema = tmp_path / "remote.yaml"
    schema.write_text(_schema(remote.url("/tenant.schema.json")))
    for args in (["check", "-s", str(schema), str(BAGGAGE)], ["schema", "check", str(schema)]):
        res = _cli(*args)
        assert res.returncode == 2, (args, res.stdout, res.stderr)
        err = res.stderr.strip()
        assert len(err.splitlines()) == 1 and "Traceback" not in err
        assert err.startswith(f"auditor: error: {schema}: $.keys.tenant_id.value.allOf[1].$ref: cannot resolve ")
        assert "nothing is fetched" in err
    assert remote.requests == []


def test_page_upload_fetches_nothing_and_says_why(remote, tmp_path):
    ui = UiServer()
    try:
        files = [("schema_file", ("remote.yaml", _schema(remote.url("/page.schema.json")).encode(), "application/yaml"))]
        r = httpx.post(ui.url, data={"trace": BAGGAGE.read_text(), "schema": "default"}, files=files, timeout=60)
        assert r.status_code == 400
        assert "cannot resolve" in r.text and "remote.yaml: $.keys.tenant_id.value.allOf[1].$ref" in r.text
    finally:
        err = ui.stop()
    assert remote.requests == []
    assert "Traceback" not in err


@pytest.mark.parametrize("ref", ["file:///etc/passwd", "/etc/passwd", "other.json", "#/$defs/missing", "urn:x:y"])
def test_every_unresolvable_ref_is_a_schema_error(ref):
    with pytest.raises(SchemaError, match=r"^up.yaml: \$.keys.tenant_id.value.allOf\[1\].\$ref: cannot resolve"):
        load_schema_text(_schema(ref), "up.yaml")


def test_local_refs_and_bundled_meta_schemas_still_work():
    v = jsonschema_local.validator({"$defs": {"t": {"type": "string", "minLength": 2}}, "$ref": "#/$defs/t"})
    assert v.is_valid("ab") and not v.is_valid("a")
    meta = jsonschema_local.validator({"$ref": "https://json-schema.org/draft/2020-12/schema"})
    assert meta.is_valid({"type": "string"}) and not meta.is_valid({"type": 5})
    # a "$ref" inside enum/const is data, not a reference
    assert jsonschema_local.validator({"enum": [{"$ref": "http://example.invalid/"}]}).is_valid({"$ref": "http://example.invalid/"})


@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n"])
def test_schema_check_on_an_empty_file_is_an_error(tmp_path, text):
    empty = tmp_path / "empty.yaml"
    empty.write_text(text)
    res = _cli("schema", "check", str(empty))
    assert res.returncode == 2
    assert res.stderr.strip() == f"auditor: error: {empty}: empty schema: expected a YAML/JSON mapping (version, name, keys, ...)"
