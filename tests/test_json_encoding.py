"""The JSON report's encoder (orjson, with json.dumps where they would differ) writes exactly
what ``json.dumps(doc, indent=2, ensure_ascii=False) + "\\n"`` writes, byte for byte."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor.pipeline import audit_files
from auditor.plan import Plan
from auditor.regenerate_reports import scenarios
from auditor.report import json_report
from auditor.report.json_report import _orjson_safe, dumps
from auditor.result_json import to_json

ROOT = Path(__file__).resolve().parent.parent


def reference(doc) -> str:
    return json.dumps(doc, indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def same_or_same_error(doc) -> None:
    try:
        want = reference(doc)
    except Exception as e:  # noqa: BLE001 - the encoder must fail the same way
        with pytest.raises(type(e)):
            dumps(doc)
        return
    assert dumps(doc) == want


@pytest.mark.parametrize("path", scenarios(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_sample_document_encodes_as_json_dumps_does_and_takes_the_fast_path(path):
    doc = to_json(audit_files([str(path)], Plan.detect()))
    assert _orjson_safe(doc)
    assert dumps(doc) == reference(doc)


GOLDEN = sorted(ROOT.glob("reports/*/*.json")) + sorted(ROOT.glob("sample_traces/*/*.expected.json"))


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: str(p.relative_to(ROOT)))
def test_committed_json_files_reencode_byte_identical(path):
    text = path.read_text(encoding="utf-8")
    assert dumps(json.loads(text)) == text


FLOATS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e-4, 9.999999999999999e-05, 1e16, 9999999999999998.0, 1.5e-05, 12.34, 100.0, math.nan]),
)
INTS = st.one_of(st.integers(-(2**70), 2**70), st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1]))
TEXT = st.one_of(st.text(), st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x7F)), st.sampled_from(["\ud800", "a\udfffb", "\u2028\x7f\x00"]))
LEAVES = st.one_of(st.none(), st.booleans(), INTS, FLOATS, TEXT)
KEYS = st.one_of(TEXT, st.integers(0, 3).map(lambda i: ["a", "b", "c", "d"][i]))


def _docs(children):
    return st.one_of(
        st.lists(children, max_size=5),
        st.lists(children, max_size=3).map(tuple),
        st.dictionaries(KEYS, children, max_size=5),
        st.dictionaries(st.one_of(st.integers(0, 3), st.none(), st.booleans()), children, max_size=2),  # keys json.dumps converts
    )


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.recursive(LEAVES, _docs, max_leaves=40))
def test_any_json_like_document_encodes_as_json_dumps_does(doc):
    same_or_same_error(doc)


def test_what_orjson_would_write_differently_takes_json_dumps():
    for doc in ({"pct": 1.5e-05}, [1e16], {"a": [{"b": math.inf}]}, {"x": math.nan}, {"big": 2**64}, {1: "a"}, ["\ud800"]):
        assert dumps(doc) == reference(doc), doc


def test_unencodable_values_still_raise_as_before():
    with pytest.raises(TypeError):
        dumps({"cost": Decimal("1.5")})
    loop: list = []
    loop.append(loop)
    with pytest.raises(ValueError):
        dumps(loop)


# ---------------------------------------------------------------- written in pieces


@pytest.mark.parametrize("slice_", [1, 3])
@pytest.mark.parametrize("path", scenarios()[:12], ids=lambda p: f"{p.parent.name}/{p.name}")
def test_the_report_written_a_slice_at_a_time_is_the_whole_document(path, slice_, monkeypatch):
    monkeypatch.setattr(json_report, "SLICE", slice_)
    result = audit_files([str(path)], Plan.detect())
    chunks = list(json_report.render_chunks(result))
    assert "".join(chunks) == reference(to_json(result))
    assert len(chunks) >= 5 + len(result.findings) // slice_


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.recursive(LEAVES, _docs, max_leaves=12), max_size=7), st.integers(1, 4))
def test_a_top_level_list_in_slices_reads_as_in_the_whole(items, slice_):
    doc = {"before": 1, "findings": items, "after": [2]}
    try:
        want = reference(doc)
    except Exception:  # noqa: BLE001 - unencodable: the whole raises too
        return
    old = json_report.SLICE
    json_report.SLICE = slice_
    try:
        got = '{\n  "before": 1,\n  "findings": ' + "".join(json_report.list_chunks(items)) + ',\n  "after": [\n    2\n  ]\n}\n'
    finally:
        json_report.SLICE = old
    assert got == want


def test_a_failed_rendering_leaves_no_file_it_created(tmp_path):
    from auditor.commands.options import write

    def pieces():
        yield "{\n"
        raise RuntimeError("broken")

    out = tmp_path / "r.json"
    with pytest.raises(RuntimeError):
        write(str(out), pieces())
    assert not out.exists()
    write(str(out), iter(["a", "b", "c"]))
    assert out.read_text() == "abc"
