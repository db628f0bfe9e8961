"""Who may use the web side of the sidecar and of ``auditor ui``: one ASGI guard for both.

- **Host allow-list** (DNS rebinding): a page on ``evil.example`` whose name is made to resolve
  to 127.0.0.1 is same-origin with us in the victim's browser, but its requests still say
  ``Host: evil.example``. Pages and the read side answer only to IP literals (which cannot be
  rebound), ``localhost``, the name the server was bound to and names given with
  ``--allow-host``. OTLP exports come from exporters that address us by any name (a compose
  service, a Kubernetes service), so they are held to this only when a browser sends them.
- **Cross-site requests** (CSRF): a state-changing request from a browser must be
  same-origin: ``Sec-Fetch-Site`` (when sent) must be ``same-origin`` or ``none``, and
  ``Origin`` (when sent) must be this server. Clients that send neither (curl, exporters,
  scripts) are not browsers and cannot be driven by another site.
- **Authentication**: with a token, every route but ``/healthz`` and ``/login`` needs
  ``Authorization: Bearer TOKEN`` (scheme case-insensitive) or the session cookie that
  ``/login`` sets once the token is typed into its form (HttpOnly, SameSite=Strict; its value
  is an HMAC of the token, never the token). A browser asking for a page without it is sent
  to ``/login``; anything else gets 401.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import ipaddress
from collections.abc import Iterable
from urllib.parse import parse_qs, urlsplit

from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response

COOKIE = "auditor_session"
LOGIN = "/login"
_MAX_LOGIN_BODY = 8192
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_LOOPBACK_NAMES = ("localhost",)


# ------------------------------------------------------------------ tokens


def bearer_ok(header: str | bytes | None, token: str | None) -> bool:
    """``Authorization: Bearer TOKEN``; the scheme is case-insensitive (RFC 9110 section 11.1)."""
    if token is None:
        return True
    if header is None:
        return False
    if isinstance(header, bytes):
        header = header.decode("latin-1")
    scheme, _, cred = header.strip().partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(cred.strip().encode(), token.encode())


def session_value(token: str) -> str:
    return hmac.new(token.encode(), b"auditor browser session v1", hashlib.sha256).hexdigest()


def _cookie(headers: dict[bytes, bytes], name: str) -> str | None:
    raw = headers.get(b"cookie")
    if not raw:
        return None
    for part in raw.decode("latin-1").split(";"):
        k, _, v = part.strip().partition("=")
        if k == name:
            return v
    return None


def validate_token(token: str | None, flag: str = "--auth-token") -> str | None:
    """An empty token (``--auth-token "$UNSET_VAR"``) must not quietly mean "no auth"."""
    from auditor.errors import UsageError

    if token is None:
        return None
    if not token.strip():
        raise UsageError(f"{flag}: empty token (is the variable you meant to pass unset?); omit the flag to run without auth")
    if any(c.isspace() or ord(c) < 32 for c in token):
        raise UsageError(f"{flag}: the token cannot contain whitespace or control characters")
    return token


def exposed(host: str) -> bool:
    """True unless ``host`` only listens on loopback."""
    if host in _LOOPBACK_NAMES:
        return False
    try:
        return not ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return True


def exposure_warning(command: str, host: str, token: str | None) -> str | None:
    if token is None and exposed(host):
        return (
            f"auditor {command}: WARNING: listening on {host} without --auth-token: anyone who can reach this "
            "address can send traces and read every report. Set --auth-token (or AUDITOR_AUTH_TOKEN), or bind "
            "to 127.0.0.1."
        )
    return None


# ------------------------------------------------------------------ hosts and origins


def allowed_hosts(bound: str, extra: Iterable[str] = ()) -> frozenset[str]:
    names = {n.lower() for n in _LOOPBACK_NAMES}
    names.update(h.strip().lower().rstrip(".") for h in extra if h.strip())
    if bound and not _is_ip(bound.strip("[]")):
        names.add(bound.lower().rstrip("."))
    return frozenset(names)


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


def _hostname(host_header: str) -> str:
    h = host_header.strip().lower()
    if h.startswith("["):
        return h[1:].split("]", 1)[0]
    return h.rsplit(":", 1)[0] if h.count(":") == 1 else h


def host_ok(host_header: str | None, allowed: frozenset[str]) -> bool:
    if not host_header:
        return False
    name = _hostname(host_header).rstrip(".")
    return _is_ip(name) or name in allowed or name.endswith(".localhost")


def same_origin(headers: dict[bytes, bytes], scheme: str) -> bool:
    """Sec-Fetch-Site, when the browser sends it, is authoritative (a page cannot set it);
    else Origin must name this server; a client sending neither is not a browser."""
    site = headers.get(b"sec-fetch-site")
    if site is not None:
        return site.decode("latin-1").lower() in ("same-origin", "none")
    origin = headers.get(b"origin")
    if origin is None:
        return True
    o = origin.decode("latin-1").strip().lower()
    host = headers.get(b"host", b"").decode("latin-1").strip().lower()
    if o == "null" or not host:
        return False
    parts = urlsplit(o)
    return parts.scheme == scheme and parts.netloc == host


def is_browser(headers: dict[bytes, bytes]) -> bool:
    return b"origin" in headers or b"sec-fetch-site" in headers or b"sec-fetch-mode" in headers


# ------------------------------------------------------------------ the guard


class WebGuard:
    """ASGI middleware in front of the sidecar's HTTP app or the page (see the module doc).

    ``exports``: paths that answer 401 themselves (as OTLP Status messages) and are exempt
    from the Host check for non-browser clients; ``open_paths``: no auth (health checks).
    """

    def __init__(self, app, token: str | None, hosts: frozenset[str], exports: Iterable[str] = (),
                 open_paths: Iterable[str] = ("/healthz",)):
        self.app = app
        self.token = token
        self.hosts = hosts
        self.exports = frozenset(exports)
        self.open = frozenset(open_paths)
        self.session = session_value(token) if token else None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or ())
        path = scope.get("path") or "/"
        method = scope.get("method", "GET").upper()
        browser = is_browser(headers)
        host = headers.get(b"host", b"").decode("latin-1")
        refusal = None
        if (path not in self.exports or browser) and not host_ok(host, self.hosts):
            refusal = PlainTextResponse(
                f"Host {host[:100]!r} is not allowed: use the address the server listens on, or start it "
                "with --allow-host NAME", 421)
        elif method in _UNSAFE and not same_origin(headers, scope.get("scheme", "http")):
            refusal = PlainTextResponse("cross-site request refused", 403)
        elif path == LOGIN and self.token is not None:
            refusal = await self._login(scope, receive, method, headers)
        elif path not in self.exports and path not in self.open and not self._authorized(headers):
            if browser or b"text/html" in headers.get(b"accept", b""):
                target = path + ("?" + scope["query_string"].decode("latin-1") if scope.get("query_string") else "")
                refusal = RedirectResponse(f"{LOGIN}?{_qs_next(target)}", 303)
            else:
                refusal = JSONResponse({"error": "missing or wrong bearer token"}, 401,
                                       headers={"WWW-Authenticate": 'Bearer realm="auditor"'})
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _authorized(self, headers: dict[bytes, bytes]) -> bool:
        if self.token is None:
            return True
        if bearer_ok(headers.get(b"authorization"), self.token):
            return True
        cookie = _cookie(headers, COOKIE)
        return cookie is not None and hmac.compare_digest(cookie.encode(), self.session.encode())

    async def _login(self, scope, receive, method: str, headers) -> Response:
        nxt = _safe_next(parse_qs(scope.get("query_string", b"").decode("latin-1")).get("next", ["/"])[0])
        if method == "GET":
            return _login_page(nxt)
        if method != "POST":
            return PlainTextResponse("method not allowed", 405)
        body = b""
        while True:
            msg = await receive()
            if msg["type"] != "http.request":
                break
            body += msg.get("body", b"")
            if len(body) > _MAX_LOGIN_BODY:
                return PlainTextResponse("login form too large", 413)
            if not msg.get("more_body"):
                break
        form = parse_qs(body.decode("utf-8", "replace"))
        typed = (form.get("token") or [""])[0]
        if not bearer_ok(f"Bearer {typed}", self.token):
            return _login_page(nxt, "Wrong token.", 401)
        resp = RedirectResponse(nxt, 303)
        resp.set_cookie(COOKIE, self.session, httponly=True, samesite="strict", path="/",
                        secure=scope.get("scheme") == "https")
        return resp


def _qs_next(target: str) -> str:
    from urllib.parse import urlencode

    return urlencode({"next": target})


def _safe_next(nxt: str) -> str:
    """Only a path on this server: no scheme, no host, no '//' (an open redirect otherwise)."""
    if not nxt.startswith("/") or nxt.startswith("//") or "\\" in nxt or any(ord(c) < 32 for c in nxt):
        return "/"
    return nxt


_LOGIN_CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"


def _login_page(nxt: str, error: str = "", status: int = 200) -> HTMLResponse:
    from urllib.parse import urlencode

    action = html.escape(f"{LOGIN}?{urlencode({'next': nxt})}")
    err = f'<p class="error" id="error" role="alert">{html.escape(error)}</p>' if error else ""
    page = (
        "<!DOCTYPE html><html lang=en><meta charset=utf-8><title>auditor: sign in</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:28em;margin:4em auto}"
        "input{font:inherit;width:100%;padding:6px;margin:8px 0}.error{color:#b42318;font-weight:600}</style>"
        "<h1>Trace attribution auditor</h1><p>This server needs its access token (the value of --auth-token).</p>"
        f'{err}<form method="post" action="{action}"><label for="token">Token</label>'
        '<input type="password" id="token" name="token" autocomplete="current-password" autofocus required>'
        '<button type="submit" id="sign-in">Sign in</button></form>'
    )
    return HTMLResponse(page, status, headers={
        "Content-Security-Policy": _LOGIN_CSP, "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin", "Cache-Control": "no-store",
    })
