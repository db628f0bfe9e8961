"""Debian's headless chromium (through chromium-driver) on the real page and real reports.

The page is served by ``auditor ui`` in its own process (real uvicorn on a free 127.0.0.1
port); reports are opened from disk. Screenshots go to $AUDITOR_SCREENSHOTS when set.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from report_fixtures import BAGGAGE, THREADPOOL_PB, XSS_NAME, XSS_VALUE, leak_json_bytes, leak_result
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from auditor.pipeline import audit_files
from auditor.plan import Plan
from auditor.report import html_report

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
DRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--window-size=1280,1600", "--hide-scrollbars",
)


def _driver(profile: Path, javascript: bool = True) -> webdriver.Chrome:
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for f in FLAGS:
        opts.add_argument(f)
    opts.add_argument(f"--user-data-dir={profile}")
    if not javascript:
        opts.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    return webdriver.Chrome(service=Service(DRIVER), options=opts)


@pytest.fixture(scope="module")
def browser():
    profile = Path(tempfile.mkdtemp(prefix="auditor-chromium-"))
    d = _driver(profile)
    yield d
    d.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def server():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "auditor", "ui", "--host", "127.0.0.1", "--port", str(port), "--max-body-bytes", "2000000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"auditor ui did not start: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}/"
    proc.terminate()
    proc.wait(timeout=10)


def shot(driver, name: str, tmp_path: Path) -> None:
    path = tmp_path / f"{name}.png"
    driver.save_screenshot(str(path))
    assert path.stat().st_size > 10_000
    out = os.environ.get("AUDITOR_SCREENSHOTS")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(out) / path.name)


def text(driver, css: str) -> str:
    return driver.find_element(By.CSS_SELECTOR, css).text


def no_script_ran(driver) -> None:
    try:
        driver.switch_to.alert
        raise AssertionError("an alert opened")
    except NoAlertPresentException:
        pass
    assert driver.execute_script("return typeof window.__xss") == "undefined"


def test_paste_and_upload_show_the_leak_and_headline(browser, server, tmp_path):
    browser.get(server)
    shot(browser, "ui-form", tmp_path)
    area = browser.find_element(By.ID, "trace")
    browser.execute_script("arguments[0].value = arguments[1]", area, BAGGAGE.read_text())  # a paste
    browser.find_element(By.ID, "files").send_keys(str(THREADPOOL_PB))
    assert text(browser, "#file-list") == f"threadpool.pb.gz ({THREADPOOL_PB.stat().st_size} bytes)"
    Select(browser.find_element(By.ID, "schema")).select_by_value("default")
    browser.find_element(By.ID, "submit").click()
    WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.ID, "headline"))
    shot(browser, "ui-report", tmp_path)

    expected = audit_files([str(BAGGAGE), str(THREADPOOL_PB)], Plan.of("default"))
    assert len(expected.calls) == 12
    assert text(browser, "#gate") == "Gate failed"
    assert text(browser, "#card-calls .big") == "12"
    assert text(browser, "#card-spend .big") == "$0.021451"
    for i in (1, 2):
        assert text(browser, f"#card-key-{i} .big") == "97.4%"  # $0.020893 of $0.021451
        assert text(browser, f"#card-key-{i} .sub").startswith("$0.020893 of spend · 7 of 12 calls")
    assert text(browser, "#boundary-1 .hop") == (
        "web-frontend / web_frontend.app : POST→scoring-service / scoring_service.app : POST /score"
    )
    assert text(browser, "#boundary-1 .money") == "$0.020160 unattributed below"
    assert text(browser, "#inputs dd") == "pasted text, threadpool.pb.gz"


def test_standalone_report_from_disk_expands_and_filters(browser, tmp_path):
    result = audit_files([str(BAGGAGE)], Plan.of(None))
    page = tmp_path / "report.html"
    page.write_text(html_report.render(result), encoding="utf-8")
    browser.get(page.as_uri())
    leak = browser.find_element(By.CSS_SELECTOR, "#example-1 li.leak")
    assert not leak.is_displayed()
    browser.find_element(By.CSS_SELECTOR, "#example-1 > summary").click()
    assert leak.is_displayed()
    assert leak.find_element(By.CSS_SELECTOR, ".lost").text == "tenant_id, workflow_id lost here"
    assert leak.find_element(By.CSS_SELECTOR, ".sname").text == "POST /score"
    below = browser.find_elements(By.CSS_SELECTOR, "#example-1 li.below .sname")
    assert [b.text for b in below] == ["score_lead", "chat gpt-4o"]
    # collapse the hop's subtree, then open it again
    browser.find_element(By.CSS_SELECTOR, "#example-1 li.leak > details > summary").click()
    assert not below[0].is_displayed()
    browser.find_element(By.CSS_SELECTOR, "#example-1 li.leak > details > summary").click()
    assert below[0].is_displayed()
    assert text(browser, "#f-shown") == "2 of 2 shown"  # one row per (code, key, boundary), not per span
    Select(browser.find_element(By.ID, "f-key")).select_by_visible_text("tenant_id")
    assert text(browser, "#f-shown") == "1 of 2 shown"
    rows = browser.find_elements(By.CSS_SELECTOR, "#findings-table tbody tr")
    assert [r.get_attribute("data-key") for r in rows if r.is_displayed()] == ["tenant_id"]
    assert [c.text for c in rows[0].find_elements(By.CSS_SELECTOR, "td.num")][0] == "3 in 3 traces"
    shot(browser, "report-expanded", tmp_path)


def test_hostile_names_and_values_never_execute(browser, server, tmp_path):
    page = tmp_path / "xss.html"
    page.write_text(html_report.render(leak_result()), encoding="utf-8")
    browser.get(page.as_uri())
    browser.find_element(By.ID, "expand-all").click()
    time.sleep(0.3)
    no_script_ran(browser)
    assert text(browser, "#example-1 li.leak .sname") == XSS_NAME
    assert f"tenant_id={XSS_VALUE}" in text(browser, "#example-1 li:not(.leak):not(.below) .row")
    shot(browser, "report-hostile", tmp_path)

    # the same trace through the page
    browser.get(server)
    area = browser.find_element(By.ID, "trace")
    browser.execute_script("arguments[0].value = arguments[1]", area, leak_json_bytes().decode())
    browser.find_element(By.ID, "submit").click()
    WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.ID, "headline"))
    browser.find_element(By.ID, "expand-all").click()
    time.sleep(0.3)
    no_script_ran(browser)
    assert text(browser, "#boundary-1 .hop").endswith(XSS_NAME)


def test_paste_and_submit_works_without_javascript(server, tmp_path):
    profile = Path(tempfile.mkdtemp(prefix="auditor-chromium-nojs-"))
    d = _driver(profile, javascript=False)
    try:
        d.get(server)
        assert not d.find_element(By.ID, "drop-hint").is_displayed()  # the script did not run
        d.find_element(By.ID, "trace").send_keys(leak_json_bytes().decode())
        d.find_element(By.ID, "submit").click()
        WebDriverWait(d, 30).until(lambda x: x.find_elements(By.ID, "headline"))
        assert text(d, "#gate") == "Gate failed"
        assert text(d, "#card-calls .big") == "1"
        assert not d.find_element(By.ID, "filters").is_displayed()  # filters need the script
        assert len(d.find_elements(By.CSS_SELECTOR, "#findings-table tbody tr")) == 2
        shot(d, "report-nojs", tmp_path)
    finally:
        d.quit()
        shutil.rmtree(profile, ignore_errors=True)
