"""Real chromium against the guarded page: another site's auto-submitting form is refused, and a
browser signs in to a sidecar started with --auth-token (items 4 and 7 of #13)."""

from __future__ import annotations

import shutil
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hostile_support import UiServer
from report_fixtures import BAGGAGE
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from test_browser_ui import _driver
from test_server_support import Sidecar

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def browser():
    profile = Path(tempfile.mkdtemp(prefix="auditor-chromium-"))
    d = _driver(profile)
    yield d
    d.quit()
    shutil.rmtree(profile, ignore_errors=True)


class EvilSite:
    """Another origin (a different port of 127.0.0.1) serving a form that posts to the page."""

    def __init__(self, target: str):
        trace = BAGGAGE.read_text().replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
        page = (
            "<!doctype html><meta charset=utf-8><title>evil</title>"
            f'<form id=f method=post action="{target}" enctype="multipart/form-data">'
            f'<textarea name=trace>{trace}</textarea><input name=schema value=default></form>'
            "<script>document.getElementById('f').submit()</script>"
        ).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_a_cross_site_form_cannot_drive_the_page(browser):
    ui = UiServer()
    evil = EvilSite(ui.url)
    try:
        browser.get(evil.url)
        WebDriverWait(browser, 30).until(lambda d: d.current_url.startswith(ui.url))
        body = browser.find_element(By.TAG_NAME, "body").text
        assert "cross-site request refused" in body
        assert "Gate failed" not in body and "LLM spend" not in body
        # the page itself still works from its own origin
        browser.get(ui.url)
        browser.execute_script("arguments[0].value = arguments[1]", browser.find_element(By.ID, "trace"), BAGGAGE.read_text())
        browser.find_element(By.ID, "submit").click()
        WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.ID, "gate"))
    finally:
        evil.close()
        ui.stop()


def test_a_browser_signs_in_to_a_sidecar_with_a_token(browser, tmp_path):
    s = Sidecar(tmp_path, "--auth-token", "s3cret").start()
    try:
        browser.get(s.http + "/live")
        WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.ID, "token"))
        assert "/login" in browser.current_url
        browser.find_element(By.ID, "token").send_keys("wrong")
        browser.find_element(By.ID, "sign-in").click()
        WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.ID, "error"))
        browser.find_element(By.ID, "token").send_keys("s3cret")
        browser.find_element(By.ID, "sign-in").click()
        WebDriverWait(browser, 30).until(lambda d: d.current_url.endswith("/live") and not d.find_elements(By.ID, "token"))
        assert browser.execute_script("return document.cookie") == ""  # HttpOnly: not readable by scripts
        browser.get(s.http + "/")
        assert browser.find_elements(By.ID, "audit-form")
        browser.get(s.http + "/api/report")
        assert '"summary"' in browser.find_element(By.TAG_NAME, "body").text
    finally:
        s.stop()
