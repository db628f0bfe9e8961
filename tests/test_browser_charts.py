"""The charts in Debian's headless chromium: one bar per leaking boundary, worst first, each
with its $ in the accessible label the browser computes; the concentration curve for Claude
Code data; the live page's trend from a real sidecar. Screenshots go to $AUDITOR_SCREENSHOTS."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from builders import to_json_bytes
from selenium.webdriver.common.by import By
from test_browser_ui import _driver, shot
from test_live import first_wave, late_call
from test_server_support import ROOT, Sidecar

from auditor.pipeline import audit_files
from auditor.plan import Plan
from auditor.report import html_report, summary

pytestmark = pytest.mark.browser

SAMPLES = [ROOT / "sample_traces" / "core" / "baggage_dropped.otlp.json",
           *sorted((ROOT / "sample_traces" / "dialects").glob("*.otlp.json"))]


@pytest.fixture(scope="module")
def browser():
    profile = Path(tempfile.mkdtemp(prefix="auditor-chromium-charts-"))
    d = _driver(profile)
    yield d
    d.quit()
    shutil.rmtree(profile, ignore_errors=True)


def test_boundary_bars_one_per_leak_worst_first_with_dollars_in_the_accessible_label(browser, tmp_path):
    result = audit_files([str(p) for p in SAMPLES], Plan.detect())
    assert len(result.boundaries) == 10
    page = tmp_path / "report.html"
    page.write_text(html_report.render(result), encoding="utf-8")
    browser.get(page.as_uri())
    chart = browser.find_element(By.CSS_SELECTOR, "#chart-boundaries svg")
    assert chart.is_displayed() and chart.size["width"] > 600 and chart.size["height"] > 300
    bars = browser.find_elements(By.CSS_SELECTOR, "#chart-boundaries g.bar")
    assert len(bars) == len(result.boundaries)
    widths = []
    for i, (bar, b) in enumerate(zip(bars, result.boundaries), 1):
        name = bar.accessible_name  # computed by chromium's accessibility tree
        assert name.startswith(f"#{i} {b.boundary.cls.value} boundary {b.boundary.parent} → {b.boundary.child}: ")
        assert f"{summary.money(b.unattributed_cost_usd)} unattributed below" in name
        assert bar.get_attribute("role") == "img"
        widths.append(bar.find_element(By.TAG_NAME, "rect").size["width"])
        assert bar.find_element(By.CSS_SELECTOR, "text.bvalue").text == summary.money(b.unattributed_cost_usd)
    assert widths == sorted(widths, reverse=True) and widths[0] > 10 * widths[-1] > 0
    assert browser.find_element(By.CSS_SELECTOR, "#chart-boundaries svg").get_attribute("aria-label").startswith(
        "Unattributed spend by boundary: Bar chart, 10 leaking boundaries, worst first")
    # spend by key value: the unattributed bar is there, and the data table says the same
    unattributed = [e.accessible_name for e in browser.find_elements(By.CSS_SELECTOR, "#chart-key-1 g.bar.bad")]
    assert len(unattributed) == 1 and unattributed[0].startswith("tenant_id missing, unattributed: $")
    browser.find_element(By.CSS_SELECTOR, "#chart-boundaries details > summary").click()
    cells = browser.find_elements(By.CSS_SELECTOR, "#chart-boundaries details tbody tr td:nth-child(2)")
    assert [c.text for c in cells] == [summary.money(b.unattributed_cost_usd) for b in result.boundaries]
    shot(browser, "report-charts", tmp_path)


def test_concentration_curve_for_claude_code(browser, tmp_path):
    result = audit_files([str(ROOT / "sample_traces" / "claude_code" / "logs.otlp.json")], Plan.detect())
    page = tmp_path / "cc.html"
    page.write_text(html_report.render(result), encoding="utf-8")
    browser.get(page.as_uri())
    points = browser.find_elements(By.CSS_SELECTOR, "#chart-concentration circle")
    assert len(points) == 1 + 5  # the origin and the five developers
    assert points[1].accessible_name == "top 1 of 5 developers (20%): 86.3% of spend"
    assert points[-1].accessible_name.startswith("top 5 of 5 developers (100%): ")
    assert "top 10% of developers (1 of 5): 86.3% of spend" in browser.find_element(
        By.CSS_SELECTOR, "#chart-concentration figcaption").text
    shot(browser, "report-concentration", tmp_path)


def test_live_page_trend_from_a_real_sidecar(browser, tmp_path):
    s = Sidecar(tmp_path / "d", "--schema", "default").start()
    try:
        assert s.post("/v1/traces", to_json_bytes(first_wave() + late_call(3, 4)), "application/json").status_code == 200
        s.wait_audited()
        browser.get(s.http + "/live")
        assert browser.find_element(By.ID, "gate").text == "Gate failing"
        points = browser.find_elements(By.CSS_SELECTOR, "#chart-trend g.series.s0 circle")
        assert [p.accessible_name.split(" (")[0] for p in points] == [
            "tenant_id at 00:00 UTC: 50.0% unattributed", "tenant_id at 00:01 UTC: 0.0% unattributed",
            "tenant_id at 00:03 UTC: 66.7% unattributed", "tenant_id at 00:04 UTC: 100.0% unattributed",
        ]
        assert "Audit another trace" not in browser.page_source
        assert browser.find_element(By.ID, "page-of").text.startswith("Page 1 of 1")
        shot(browser, "live", tmp_path)
    finally:
        s.stop()
