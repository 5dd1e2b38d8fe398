"""What keeps other web pages away from the service a browser can reach: a learner's laptop
running `make serve` stays safe while its owner browses the web, with or without PC_API_KEY.

- Host: a request must name a host the service is served as (localhost, 127.0.0.1, [::1],
  PC_HOST when it is one address, and PC_ALLOWED_HOSTS), on any port. A DNS-rebinding page,
  whose own name now points at 127.0.0.1, sends its own name and is refused with 400.
- Cross-site writes: a request that is not GET, HEAD or OPTIONS is refused with 403 when the
  browser says it comes from another origin. This is Go's `net/http.CrossOriginProtection`:
  `Sec-Fetch-Site` decides where the browser sends it (anything but `same-origin` or `none`
  is refused); otherwise `Origin` must name the request's own host and port (`null` never
  does); a request with neither comes from no page (curl, httpx, scripts) and passes. No JSON
  content type or custom header is required: browsers send `Origin` on every cross-origin
  request that is not GET or HEAD, and requiring either would change what curl, httpx and
  the uploads' multipart bodies send.
- Framing: every response says `X-Frame-Options: DENY` and a Content-Security-Policy with
  `frame-ancestors 'none'`; the dashboard's policy allows only the service's own scripts, and
  the Swagger UI page its one inline script, by hash.

Our own middleware, not a library's: Starlette's TrustedHostMiddleware refuses with a bare
plain-text "Invalid host header" that names neither the host received nor the hosts accepted
nor PC_ALLOWED_HOSTS; the CSRF packages (starlette-csrf, asgi-csrf) check a cookie against a
token header that curl, httpx and Swagger UI would all have to send; and no header package
hashes a page's inline script.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.auth import SAFE_METHODS
from app.core.config import ANY_HOST, Settings

# The names a machine always calls itself, as a Host header's name compares to them.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
# PC_HOST values that listen on every address and so name no host.
ALL_ADDRESSES = frozenset({"", "0.0.0.0", "::"})
# Sec-Fetch-Site values of a request a page of this origin (or the user, typing a URL) made.
OWN_SITE = frozenset({"same-origin", "none"})
DEFAULT_PORTS = {"http": 80, "https": 443}
# What a host and port never hold, and a URL parser would read as a path, a user or a fragment.
NOT_IN_HOST = frozenset("/\\?#@ ")
# How much of a header a refusal repeats: enough to recognise it, never a large input.
SHOWN_CHARS = 100

# The dashboard's pages load scripts and styles from /static only; style attributes in the
# templates need 'unsafe-inline' for styles (never for scripts); images come from the service,
# the data: favicon and blob: URLs (pictures fetched with the key when reads need it).
_POLICY = (
    "default-src 'self'; script-src {scripts}; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
PAGE_POLICY = _POLICY.format(scripts="'self'")
# A script element with no src attribute: its text is what a CSP hash covers.
INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.DOTALL)


def accepted_hosts(settings: Settings) -> frozenset[str] | None:
    """The host names a request may name, or None where PC_ALLOWED_HOSTS accepts any."""
    if ANY_HOST in settings.allowed_hosts:
        return None
    hosts = {*LOOPBACK_HOSTS, *settings.allowed_hosts}
    if settings.host.strip() not in ALL_ADDRESSES:
        hosts.add(_name(settings.host))
    return frozenset(hosts)


def _name(host: str) -> str:
    """A host name as compared here: lower case, an IP address written one way only."""
    bare = host.strip().lower().removeprefix("[").removesuffix("]")
    try:
        return str(ipaddress.ip_address(bare))
    except ValueError:
        return bare


def _shown(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _host_and_port(netloc: str, default_port: int | None) -> tuple[str, int | None] | None:
    """(name, port) of a Host header or an origin's authority; None where it does not parse."""
    if any(sign in netloc for sign in NOT_IN_HOST):
        return None
    try:
        parts = urlsplit(f"//{netloc}")
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    return _name(parts.hostname), port if port is not None else default_port


def policy_with_scripts(body: bytes) -> str:
    """The page policy, allowing exactly the inline scripts this page holds."""
    hashes = (
        base64.b64encode(hashlib.sha256(script).digest()).decode()
        for script in INLINE_SCRIPT.findall(body)
    )
    return _POLICY.format(scripts=" ".join(["'self'", *(f"'sha256-{h}'" for h in hashes)]))


class OriginGuardMiddleware:
    def __init__(
        self, app: ASGIApp, settings: Settings, inline_script_pages: Iterable[str | None] = ()
    ) -> None:
        self.app = app
        self.hosts = accepted_hosts(settings)
        # Pages whose HTML FastAPI writes with an inline script (Swagger UI and its OAuth
        # redirect page). Their script is made from the app's own settings (title, schema URL,
        # root path), never from the request, so hashing it as served allows that script and
        # no other. (None: a page the app does not serve.)
        self.inline_script_pages = frozenset(page for page in inline_script_pages if page)

    def _host_refusal(self, host: str | None) -> str | None:
        if self.hosts is None:
            return None
        parsed = _host_and_port(host, None) if host is not None else None
        if parsed is not None and parsed[0] in self.hosts:
            return None
        accepted = ", ".join(
            [*map(_shown, LOOPBACK_HOSTS), *sorted(map(_shown, self.hosts - {*LOOPBACK_HOSTS}))]
        )
        received = "no Host header" if host is None else f"Host {host[:SHOWN_CHARS]!r}"
        return (
            f"{received} is not a name this service is served as. Accepted: {accepted} (any "
            "port); to serve it under another name or address, add that to PC_ALLOWED_HOSTS "
            "(comma-separated)"
        )

    def _cross_site_refusal(self, method: str, headers: Headers) -> str | None:
        if method in SAFE_METHODS:
            return None
        site = headers.get("sec-fetch-site")
        origin = headers.get("origin")
        if site is not None:
            if site in OWN_SITE:
                return None
            sender = f"Sec-Fetch-Site: {site[:SHOWN_CHARS]}"
        elif origin is None:
            return None  # neither header: not sent by a browser on behalf of a page
        else:
            scheme = urlsplit(origin).scheme
            page = _host_and_port(origin.partition("://")[2], DEFAULT_PORTS.get(scheme))
            own = _host_and_port(headers.get("host", ""), DEFAULT_PORTS.get(scheme))
            if page is not None and page == own:
                return None
            sender = f"Origin: {origin[:SHOWN_CHARS]}"
        return (
            f"cross-site {method} refused ({sender}): another web page may not change anything "
            "here. Writes are accepted from this service's own pages and from clients that send "
            "no Origin header (curl, httpx, scripts)"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan; the service serves no websockets
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        send = self._with_headers(scope, send)
        host_refusal = self._host_refusal(headers.get("host"))
        if host_refusal is not None:
            await JSONResponse({"detail": host_refusal}, status_code=400)(scope, receive, send)
            return
        site_refusal = self._cross_site_refusal(scope["method"], headers)
        if site_refusal is not None:
            await JSONResponse({"detail": site_refusal}, status_code=403)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _with_headers(self, scope: Scope, send: Send) -> Send:
        """`send`, adding the framing and content policy headers to the response."""
        path = scope["path"].removeprefix(scope.get("root_path", ""))
        if path not in self.inline_script_pages:

            async def send_with_policy(message: Message) -> None:
                if message["type"] == "http.response.start":
                    _add_headers(message, PAGE_POLICY)
                await send(message)

            return send_with_policy

        # A page with an inline script: held back until its body is complete (a few KB), so
        # its policy can carry the script's hash.
        start: Message | None = None
        body = bytearray()

        async def send_with_hashes(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            body.extend(message.get("body", b""))
            if message.get("more_body", False):
                return
            _add_headers(start, policy_with_scripts(bytes(body)))
            await send(start)
            await send({"type": "http.response.body", "body": bytes(body)})

        return send_with_hashes


def _add_headers(start: Message, policy: str) -> None:
    headers = MutableHeaders(scope=start)
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Content-Security-Policy", policy)
