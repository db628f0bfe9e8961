"""The page and the sidecar's read side against other sites and careless setups: cross-site
posts refused, a Host allow-list against DNS rebinding, auth that cannot silently turn off, a
case-insensitive Bearer scheme and a login for browsers (items 4 and 7 of #13). Real servers
on 127.0.0.1; the browser half is in test_hostile_browser.py."""

from __future__ import annotations

import subprocess
import sys

import grpc
import httpx
import pytest
from hostile_support import ROOT, UiServer
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from report_fixtures import BAGGAGE
from test_server_support import Sidecar, llm_only_spans

pytestmark = pytest.mark.slow

PB = "application/x-protobuf"
EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


@pytest.fixture(scope="module")
def ui():
    srv = UiServer()
    yield srv
    srv.stop()


def _paste(url: str, **headers) -> httpx.Response:
    return httpx.post(url, data={"trace": BAGGAGE.read_text(), "schema": "default"}, headers=headers, timeout=60)


@pytest.mark.parametrize("headers", [
    {"origin": "http://evil.example", "sec-fetch-site": "cross-site"},
    {"origin": "http://127.0.0.1:1", "sec-fetch-site": "same-site"},  # another port on this host
    {"origin": "http://evil.example"},  # an older browser: Origin only
    {"origin": "null"},  # a sandboxed frame or data: URL
])
def test_cross_site_posts_to_the_page_are_refused(ui, headers):
    r = _paste(ui.url, **headers)
    assert r.status_code == 403, r.text[:300]
    assert "Trace attribution audit" not in r.text


def test_same_origin_and_non_browser_posts_are_served(ui):
    origin = ui.url.rstrip("/")
    assert _paste(ui.url, origin=origin, **{"sec-fetch-site": "same-origin"}).status_code == 200
    assert _paste(ui.url, origin=origin).status_code == 200
    assert _paste(ui.url).status_code == 200  # curl, scripts


def test_rebound_host_names_are_refused(ui):
    assert httpx.get(ui.url, headers={"host": "evil.example"}, timeout=30).status_code == 421
    assert httpx.get(ui.url, headers={"host": f"evil.example:{ui.port}"}, timeout=30).status_code == 421
    for host in (f"127.0.0.1:{ui.port}", f"localhost:{ui.port}", "localhost"):
        assert httpx.get(ui.url, headers={"host": host}, timeout=30).status_code == 200


@pytest.fixture(scope="module")
def open_sidecar(tmp_path_factory):
    s = Sidecar(tmp_path_factory.mktemp("web-open"), "--allow-host", "auditor.internal").start()
    yield s
    s.stop()


def test_sidecar_read_side_answers_only_allowed_hosts(open_sidecar):
    s = open_sidecar
    for path in ("/api/report", "/api/trend", "/metrics", "/", "/live"):
        assert s.get(path, headers={"host": "rebound.evil.example"}).status_code == 421, path
        assert s.get(path, headers={"host": f"127.0.0.1:{s.http_port}"}).status_code == 200, path
    assert s.get("/api/report", headers={"host": f"auditor.internal:{s.http_port}"}).status_code == 200


def test_exports_by_any_name_but_not_from_a_rebound_browser(open_sidecar):
    s = open_sidecar
    body = encode_spans(llm_only_spans(2, 31)).SerializeToString()
    assert s.post("/v1/traces", body, PB, host="otel-sidecar:4318").status_code == 200  # a compose service name
    r = s.post("/v1/traces", body, PB, host="rebound.evil.example", origin="http://rebound.evil.example")
    assert r.status_code == 421


def _serve(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "auditor", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("cmd", [["serve", "--http-port", "0", "--grpc-port", "0"], ["ui", "--port", "0"]])
@pytest.mark.parametrize("token", ["", "   "])
def test_an_empty_token_is_a_usage_error(cmd, token, tmp_path):
    r = _serve(*cmd, "--auth-token", token, *(["--data-dir", str(tmp_path)] if cmd[0] == "serve" else []))
    assert r.returncode == 2
    assert r.stderr.strip().startswith("auditor: error: --auth-token: empty token")


def test_exposed_without_a_token_warns_loudly(tmp_path):
    s = Sidecar(tmp_path, "--host", "0.0.0.0").start()
    code, err = s.terminate()
    assert code == 0
    assert "WARNING: listening on 0.0.0.0 without --auth-token" in err


@pytest.fixture(scope="module")
def strict_sidecar(tmp_path_factory):
    s = Sidecar(tmp_path_factory.mktemp("web-strict"), "--auth-token", "s3cret").start()
    yield s
    s.stop()


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_bearer_scheme_is_case_insensitive_on_both_transports(strict_sidecar, scheme):
    s = strict_sidecar
    assert s.get("/api/report", headers={"authorization": f"{scheme} s3cret"}).status_code == 200
    assert s.post("/v1/traces", b"", PB, authorization=f"{scheme} s3cret").status_code == 200
    with grpc.insecure_channel(s.grpc) as ch:
        assert ch.unary_unary(EXPORT)(b"", metadata=(("authorization", f"{scheme} s3cret"),), timeout=20) == b""
    assert s.get("/api/report", headers={"authorization": f"{scheme} wrong"}).status_code == 401


def test_browsers_sign_in_with_a_form_that_sets_an_httponly_samesite_cookie(strict_sidecar):
    s = strict_sidecar
    r = s.get("/", headers={"accept": "text/html"})
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2F"
    form = s.get("/login?next=%2Flive", headers={})
    assert form.status_code == 200 and 'name="token"' in form.text and 'type="password"' in form.text
    wrong = httpx.post(s.http + "/login?next=/live", data={"token": "nope"}, timeout=30)
    assert wrong.status_code == 401 and "set-cookie" not in wrong.headers
    ok = httpx.post(s.http + "/login?next=/live", data={"token": "s3cret"}, timeout=30)
    assert ok.status_code == 303 and ok.headers["location"] == "/live"
    cookie = ok.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "s3cret" not in cookie
    jar = httpx.Cookies()
    jar.extract_cookies(ok)
    assert httpx.get(s.http + "/api/report", cookies=jar, timeout=30).status_code == 200
    assert httpx.get(s.http + "/live", cookies=jar, timeout=30).status_code == 200
    # an open redirect is not possible through next=
    ok = httpx.post(s.http + "/login?next=//evil.example/", data={"token": "s3cret"}, timeout=30)
    assert ok.headers["location"] == "/"
    # a cross-site login post is refused like any other
    r = httpx.post(s.http + "/login", data={"token": "s3cret"}, headers={"origin": "http://evil.example"}, timeout=30)
    assert r.status_code == 403
