"""Keeping what the portal served inert, and the archive to those who may read it.

Everything from the portal is text to be escaped (Jinja2 autoescape), except
the stored body HTML: it was cut to an allow-list by nh3 when it was written,
and is cut again on the way out with the very same rules, so that a row
written by an older, laxer version (or edited by hand) cannot inject markup.
On top, every response forbids scripts outright (CSP without script-src),
and a raw page is served only into a sandbox (CSP `sandbox`, no scripts, an
opaque origin).
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl, urlencode, urlsplit

from markupsafe import Markup

from pipeline.reading.html import sanitize_body_html

TOKEN_ENV = "PORTAL_ARCHIVE_WEB_TOKEN"
TOKEN_COOKIE = "portal_archive_token"

# Pages: no script at all, nothing from elsewhere. Images in article bodies are
# not loaded either (remote or relative): reading the archive must not call the
# portal, and the only pictures the browser draws itself are inline SVG.
PAGE_CSP = ("default-src 'none'; style-src 'self'; img-src data:; frame-src 'self'; "
            "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
# A raw page as fetched, for the sandboxed frame: no script, no plugin, no
# request anywhere, an opaque origin; framed only by the browser itself.
RAW_CSP = ("sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
           "form-action 'none'; base-uri 'none'; frame-ancestors 'self'")
COMMON_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
)


def sanitized_body(body_html: str) -> Markup:
    """The stored body HTML through the archive's own allow-list, again."""
    return Markup(sanitize_body_html(body_html or ""))


def safe_href(url: str | None) -> str | None:
    """A portal URL fit for an href: http(s) only, else None (shown as text instead)."""
    if not url:
        return None
    try:
        scheme = urlsplit(url.strip()).scheme.lower()
    except ValueError:
        return None
    return url.strip() if scheme in ("http", "https") else None


def decode_raw(body: bytes, encoding: str | None) -> str:
    """A raw page's text for display; damaged bytes (quarantined pages) become U+FFFD."""
    for candidate in (encoding, "gb18030"):
        if candidate:
            try:
                return body.decode(candidate, errors="replace")
            except LookupError:
                continue
    return body.decode("utf-8", errors="replace")


def is_loopback(host: str) -> bool:
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve anywhere


class WebError(ValueError):
    """The web browser cannot start as asked; the message says why."""


def check_binding(host: str, token: str | None) -> str | None:
    """The token to require: none is needed on loopback, one is required on any other address."""
    token = (token or "").strip() or None
    if token is None and not is_loopback(host):
        raise WebError(f"refusing to serve the archive on {host} without a token: set {TOKEN_ENV} "
                       "(every request must then carry it), or bind to 127.0.0.1")
    return token


class Guard:
    """ASGI middleware: the token (when one is set), the Host check (when none is), security headers.

    A token is accepted as `Authorization: Bearer …`, as the cookie a browser
    gets by opening any page once with `?token=…`, and nothing else. Without a
    token the server is loopback-only, and a Host header naming anything but
    the loopback keeps DNS-rebinding pages from reading it.
    """

    LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}

    def __init__(self, app, token: str | None, bound_host: str = "127.0.0.1"):
        self.app = app
        self.token = token.encode() if token else None
        # The cookie holds a digest of the token, never the token itself.
        self.cookie = (hmac.new(self.token, b"portal-archive web cookie", hashlib.sha256).hexdigest().encode()
                       if token else None)
        self.hosts = self.LOOPBACK_HOSTS | {bound_host.strip("[]").lower()}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        if self.token is None and not self._host_allowed(headers.get(b"host", b"")):
            return await self._refuse(scope, send, 400, "unexpected Host header")
        if self.token is not None:
            query = scope.get("query_string", b"").decode("latin-1")
            given = dict(parse_qsl(query)).get("token")
            if given is not None:
                return await self._login(scope, send, given, query)
            if not self._authorized(headers):
                return await self._refuse(scope, send, 401, "this archive needs a token: open it with "
                                          "?token=… once, or send Authorization: Bearer …")

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in COMMON_HEADERS if k not in names]
                if b"content-security-policy" not in names:
                    extra.append((b"content-security-policy", PAGE_CSP.encode()))
                if b"x-frame-options" not in names:
                    extra.append((b"x-frame-options", b"DENY"))
                message = {**message, "headers": list(message.get("headers", [])) + extra}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _host_allowed(self, host: bytes) -> bool:
        name = host.decode("latin-1").strip().lower()
        if name.startswith("["):
            name = name[1:name.find("]")] if "]" in name else name
        else:
            name = name.rsplit(":", 1)[0] if name.count(":") == 1 else name
        return name in self.hosts

    def _authorized(self, headers: dict) -> bool:
        auth = headers.get(b"authorization", b"")
        if auth[:7].lower() == b"bearer " and hmac.compare_digest(auth[7:].strip(), self.token):
            return True
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get(b"cookie", b"").decode("latin-1"))
        except Exception:
            return False
        morsel = cookie.get(TOKEN_COOKIE)
        return morsel is not None and hmac.compare_digest(morsel.value.encode(), self.cookie)

    async def _login(self, scope, send, given: str, query: str):
        if not hmac.compare_digest(given.encode(), self.token):
            return await self._refuse(scope, send, 401, "wrong token")
        rest = urlencode([(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "token"])
        path = scope.get("raw_path") or scope.get("path", "/").encode("utf-8")
        location = path + (b"?" + rest.encode() if rest else b"")
        await send({"type": "http.response.start", "status": 303, "headers": [
            (b"location", location),
            (b"set-cookie", TOKEN_COOKIE.encode() + b"=" + self.cookie + b"; HttpOnly; SameSite=Strict; Path=/"),
            (b"cache-control", b"no-store"),
            *COMMON_HEADERS,
        ]})
        await send({"type": "http.response.body", "body": b""})

    async def _refuse(self, scope, send, status: int, reason: str):
        api = scope.get("path", "").startswith("/api/")
        if api:
            body = ('{"detail": "%s"}' % reason.replace('"', "'")).encode()
            kind = b"application/json"
        else:
            body = f"{status}: {reason}\n".encode()
            kind = b"text/plain; charset=utf-8"
        headers = [(b"content-type", kind), (b"content-length", str(len(body)).encode()),
                   (b"content-security-policy", PAGE_CSP.encode()), *COMMON_HEADERS]
        if status == 401:
            headers.append((b"www-authenticate", b"Bearer"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
