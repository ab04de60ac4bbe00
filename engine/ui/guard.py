"""What every request and response of the UI passes through: GET only, the token when one is
required, and headers that keep a browser from running or framing anything not ours.

A plain ASGI middleware, so it wraps every route, static files and errors alike.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from ipaddress import ip_address
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

COOKIE = "gitward_ui_token"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
HEADERS = (
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
)


def is_loopback(host: str) -> bool:
    """Whether `host` (an address or `localhost`) reaches only this machine."""
    if host == "localhost":
        return True
    try:
        return ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Guard:
    """Refuses any method but GET (405) and, when `token` is set, any request without it (401).

    The token comes as `Authorization: Bearer T`, or once as `?token=T`: that answer sets it in
    an HttpOnly, SameSite=Strict cookie and redirects to the address without it, so the token
    stays out of the history and of every link. Tokens are compared in constant time.
    """

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token.encode() if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *HEADERS]
            await send(message)

        if scope["method"] != "GET":
            await _plain(send_with_headers, 405, "only GET: this UI is read-only",
                         [(b"allow", b"GET")])
            return
        if self.token is not None:
            query = parse_qsl(scope.get("query_string", b"").decode("latin-1"))
            given = dict(query).get("token")
            if given is not None:
                if not self._matches(given.encode()):
                    await _plain(send_with_headers, 401, "wrong token", _challenge())
                    return
                rest = urlencode([(k, v) for k, v in query if k != "token"])
                cookie = f"{COOKIE}={quote(given, safe='')}; HttpOnly; SameSite=Strict; Path=/"
                await _plain(send_with_headers, 303, "signed in",
                             [(b"location", (scope["path"] + (f"?{rest}" if rest else "")).encode()),
                              (b"set-cookie", cookie.encode())])
                return
            if not self._matches(_presented(scope)):
                await _plain(send_with_headers, 401,
                             "a token is required: open this address with ?token=T once, or send "
                             "Authorization: Bearer T", _challenge())
                return
        await self.app(scope, receive, send_with_headers)

    def _matches(self, given: bytes) -> bool:
        assert self.token is not None
        return hmac.compare_digest(given, self.token)


def _presented(scope: Scope) -> bytes:
    """The token a request carries in its Authorization header or its cookie (b"" if none)."""
    for name, value in scope.get("headers", []):
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            return bytes(value[7:].strip())
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            jar: SimpleCookie = SimpleCookie()
            jar.load(value.decode("latin-1"))
            if COOKIE in jar:
                return unquote(jar[COOKIE].value).encode()
    return b""


def _challenge() -> list[tuple[bytes, bytes]]:
    return [(b"www-authenticate", b'Bearer realm="gitward"')]


async def _plain(send: Send, status: int, text: str, headers: list[tuple[bytes, bytes]]) -> None:
    body = f"{text}\n".encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})
