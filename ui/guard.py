"""The gate in front of every route of the UI's server (Gradio's, the REST API's, /docs).

It bounds each request body (by its Content-Length, and while it streams in), and,
when the studio has an access token or a login, turns away requests without them:

- token only (STUDIO_API_TOKEN): every route needs `Authorization: Bearer <token>`,
  or the cookie a browser gets by opening `/?token=<token>` once;
- a login (--auth): Gradio's own login guards the UI and its API; /docs and
  /openapi.json need the login as HTTP Basic (or the token), like the REST API.
"""
from __future__ import annotations

import base64
import json
import secrets
from http.cookies import SimpleCookie
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qsl, urlencode

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

COOKIE = "studio-token"
DOCS = ("/docs", "/openapi.json", "/redoc")
# Gradio's launch() calls this itself, without credentials; it only runs the start-up
# events, once (later calls answer "false").
OPEN = ("/gradio_api/startup-events",)


def visitor_address(host: str | None, headers: Any) -> str:
    """The visitor's address: when the direct peer is this machine (a proxy, or the share
    link's tunnel), the last X-Forwarded-For hop, the one that proxy saw (earlier hops
    are whatever the visitor wrote); else the peer."""
    forwarded = headers.get("x-forwarded-for", "")
    if forwarded and host in ("127.0.0.1", "::1", None, ""):
        return forwarded.split(",")[-1].strip()
    return host or "unknown"


class BodyTooLarge(Exception):
    pass


class Guard:
    def __init__(self, app: Callable, max_body: int, token: str | None = None,
                 login: tuple[str, str] | None = None):
        self.app, self.max_body, self.token, self.login = app, max_body, token, login

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        refusal = self._refusal(scope, headers)
        if scope["type"] == "websocket":
            if refusal is not None:
                return await send({"type": "websocket.close", "code": 1008})
            return await self.app(scope, receive, send)
        if refusal is not None:
            return await _answer(send, *refusal)
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_body:
            return await _answer(send, 413, self._too_large(int(length)))
        return await self._bounded(scope, receive, send)

    def _refusal(self, scope: Scope, headers: dict[str, str]) -> tuple[int, str, dict[str, str]] | None:
        """(status, message, extra headers) when the request lacks the credentials it needs."""
        path = scope.get("path", "")
        if (not self.token and not self.login) or path in OPEN:
            return None
        if self.login and not path.startswith(DOCS):
            return None  # Gradio's login and the REST API's own check take it from here
        if self._has_credentials(headers):
            return None
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        if self.token and not self.login and secrets.compare_digest(query.get("token", ""), self.token):
            rest = urlencode({k: v for k, v in query.items() if k != "token"})
            return 303, "Signed in.", {"location": path + (f"?{rest}" if rest else ""),
                                       "set-cookie": f"{COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Lax"}
        if self.login:
            return 401, "This page needs the studio's login.", {"www-authenticate": 'Basic realm="AI Image Studio"'}
        return 401, ("This studio needs its access token: open /?token=<token> in the browser, or send "
                     "'Authorization: Bearer <token>' (gradio_client: Client(url, headers={...})).",
                     {"www-authenticate": "Bearer"})

    def _has_credentials(self, headers: dict[str, str]) -> bool:
        header = headers.get("authorization", "")
        if self.token and secrets.compare_digest(header.encode(), f"Bearer {self.token}".encode()):
            return True
        if self.login and header.startswith("Basic "):
            expected = base64.b64encode(f"{self.login[0]}:{self.login[1]}".encode()).decode()
            return secrets.compare_digest(header[6:].encode(), expected.encode())
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except Exception:  # a malformed cookie header is no credential
            return False
        given = cookie[COOKIE].value if COOKIE in cookie else ""
        return bool(self.token) and secrets.compare_digest(given.encode(), self.token.encode())

    async def _bounded(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, refusing it once more than `max_body` bytes have arrived."""
        received, started = 0, False

        async def counting_receive() -> dict[str, Any]:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_body:
                raise BodyTooLarge()
            return message

        async def tracking_send(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _answer(send, 413, self._too_large(received))

    def _too_large(self, size: int) -> str:
        return (f"The request is {size / 2**20:.0f} MB or more; the limit is {self.max_body / 2**20:.0f} MB "
                "(uploads: STUDIO_MAX_UPLOAD_MB).")


async def _answer(send: Send, status: int, message: str, headers: dict[str, str] | None = None) -> None:
    body = json.dumps({"detail": message}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
