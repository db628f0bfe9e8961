"""reports/ holds every sample scenario rendered in every format; it must match the code."""

import pytest

from auditor.regenerate_reports import render_all, scenarios, stale
from auditor.report import Format


@pytest.fixture(scope="module")
def want():
    return render_all()


def test_reports_are_current(want):
    bad = stale(want=want)
    assert bad == [], f"reports/ is stale ({', '.join(bad[:5])}): run python -m auditor.regenerate_reports"


def test_reports_cover_every_scenario_in_every_format(want):
    assert "core/baggage_dropped.html" in want and "core/threadpool.sarif" in want
    baseline = ["baseline/pull-request.html", "baseline/pull-request.md", "baseline/pull-request.sarif", "baseline/pull-request.txt"]
    assert sorted(k for k in want if k.startswith("baseline/")) == baseline
    assert len(want) == 1 + len(scenarios()) * len(Format) + len(baseline)
