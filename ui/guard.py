"""The gate in front of every route of the UI's server (Gradio's, the REST API's, /docs).

It bounds each request body (by its Content-Length, and while it streams in; JSON bodies
also by their shape, see `ui.json_shape`), adds the security headers to every answer,
and, when the studio has access tokens or a login, turns away requests without them:

- tokens only (STUDIO_API_TOKEN(S)): every route needs `Authorization: Bearer <token>`,
  or the cookie a browser gets by opening `/?token=<token>` once;
- a login (--auth): every route needs the login, as Gradio's session cookie (its login
  page) or HTTP Basic, or a token; only the login page and its assets are open. Failed
  logins from one address, or for one user, slow down (`ui.login_throttle`).
"""
from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qsl, urlencode

from ui.credentials import TOKEN_COOKIE, Credentials, cookie_value
from ui.json_shape import BadShape, check_shape
from ui.login_throttle import LoginThrottle
from ui.upload_budget import UploadBudget

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

# Gradio's launch() calls this itself, without credentials; it only runs the start-up
# events, once (later calls answer "false").
OPEN = ("/gradio_api/startup-events", "/healthz")  # and a load balancer's probe
MONITORING = ("/metrics", "/readyz")  # the studio's credentials, or STUDIO_METRICS_TOKEN
# What Gradio's login page needs before anyone has logged in.
LOGIN_PAGE = ("/", "/login", "/login/", "/logout", "/favicon.ico", "/theme.css", "/gradio_api/theme.css",
              "/robots.txt", "/manifest.json")
LOGIN_ASSETS = ("/assets/", "/static/", "/svelte/", "/pwa_icon", "/gradio_api/login_check")
LOGIN_FORM = ("/login", "/login/")
REST = "/api/v1/"
# Bodies that are a few fields: a session hash, a login
SMALL_BODIES = {path: 4096 for path in (*LOGIN_FORM, "/gradio_api/cancel", "/gradio_api/reset",
                                       "/gradio_api/reset/")}
UPLOAD = "/gradio_api/upload"  # Gradio writes these to its file cache on disk
STREAMS = ("/heartbeat/", "/queue/data")  # Gradio's server-sent event streams, one or two per open page
STREAMS_PER_VISITOR = 32
JSON_LIMIT = 2 * 2**20  # Gradio's own JSON bodies carry text and file references, never images
SECURITY_HEADERS = [
    (b"content-security-policy", b"frame-ancestors 'self'; object-src 'none'; base-uri 'self'"),
    (b"x-frame-options", b"SAMEORIGIN"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


def visitor_address(host: str | None, headers: Any) -> str:
    """The visitor's address: when the direct peer is this machine (a proxy, or the share
    link's tunnel), the last X-Forwarded-For hop, the one that proxy saw (earlier hops
    are whatever the visitor wrote); else the peer."""
    forwarded = headers.get("x-forwarded-for", "")
    if forwarded and _local(host):
        return forwarded.split(",")[-1].strip()
    return host or "unknown"


def _local(host: str | None) -> bool:
    return host in ("127.0.0.1", "::1", None, "")


def _https(scope: Scope, headers: dict[str, str]) -> bool:
    """The visitor's connection is HTTPS: directly, or as a proxy on this machine says."""
    client = (scope.get("client") or (None,))[0]
    return scope.get("scheme") in ("https", "wss") or \
        (_local(client) and headers.get("x-forwarded-proto", "").split(",")[-1].strip() == "https")


class BodyTooLarge(Exception):
    pass


class Guard:
    def __init__(self, app: Callable, max_body: int, credentials: Credentials | None = None,
                 throttle: LoginThrottle | None = None, uploads: UploadBudget | None = None):
        self.app, self.max_body, self.uploads = app, max_body, uploads
        self.credentials = credentials or Credentials()
        self.throttle = throttle or LoginThrottle()
        self.streams: Counter[str] = Counter()  # open event streams per visitor

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        address = visitor_address((scope.get("client") or (None,))[0], headers)
        if scope["type"] == "websocket":
            if self._refusal(scope, headers, address) is not None:
                return await send({"type": "websocket.close", "code": 1008})
            return await self.app(scope, receive, send)
        send = _with_headers(send, _https(scope, headers))
        attempt = self.credentials.basic_attempt(headers)
        wait = self.throttle.retry_after(address, attempt[0] if attempt else None)
        if wait:
            return await _answer(send, *_slow_down(wait))
        refusal = self._refusal(scope, headers, address)
        if refusal is not None:
            return await _answer(send, *refusal)
        length = headers.get("content-length", "")
        limit = self._body_limit(scope, headers)
        if length.isdigit() and int(length) > limit:
            return await _answer(send, 413, self._too_large(int(length), limit))
        refusal = self._over_upload_budget(scope, address, int(length) if length.isdigit() else limit)
        if refusal is not None:
            return await _answer(send, *refusal)
        if scope.get("method") == "GET" and any(part in scope.get("path", "") for part in STREAMS):
            return await self._counted_stream(scope, receive, send, address)
        if scope.get("method") == "POST" and scope.get("path") in LOGIN_FORM and self.credentials.login:
            return await self._counted_login(scope, receive, send, address, limit)
        if headers.get("content-type", "").startswith("application/json"):
            return await self._checked_json(scope, receive, send, limit)
        return await self._bounded(scope, receive, send, limit)

    # who may come in ------------------------------------------------------------------------------
    def _refusal(self, scope: Scope, headers: dict[str, str], address: str) -> tuple[int, str, dict] | None:
        """(status, message, extra headers) when the request lacks the credentials it needs."""
        path = scope.get("path", "")
        credentials = self.credentials
        monitoring = path in MONITORING
        if not (credentials.locked or monitoring and credentials.metrics_token) or path in OPEN:
            return None
        if monitoring and credentials.metrics_bearer(headers):
            return None
        if credentials.bearer(headers) or credentials.cookie_token(headers) or self._gradio_session(scope, headers):
            return None
        attempt = credentials.basic_attempt(headers)
        if attempt is not None:
            if credentials.basic_user(headers):
                self.throttle.succeeded(address, attempt[0])
                return None
            self.throttle.failed(address, attempt[0])
        if credentials.login and (path in LOGIN_PAGE or path.startswith(LOGIN_ASSETS)):
            return None  # the login page, whose POST /login Gradio checks (and `_counted_login` counts)
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        if not credentials.login and credentials.token_name(query.get("token", "")):
            rest = urlencode({k: v for k, v in query.items() if k != "token"})
            location = "/" + path.lstrip("/")  # never "//host": a redirect stays on this site
            return 303, "Signed in.", {"location": location + (f"?{rest}" if rest else ""),
                                       "set-cookie": f"{TOKEN_COOKIE}={query['token']}; Path=/; HttpOnly; "
                                                     "SameSite=Lax"}
        if credentials.login:
            return 401, "This page needs the studio's login.", {"www-authenticate": 'Basic realm="AI Image Studio"'}
        return 401, ("This studio needs its access token: open /?token=<token> in the browser, or send "
                     "'Authorization: Bearer <token>' (gradio_client: Client(url, headers={...})).",
                     {"www-authenticate": "Bearer"})

    def _gradio_session(self, scope: Scope, headers: dict[str, str]) -> bool:
        """The request carries the cookie of a session Gradio's login page opened."""
        app = scope.get("app")
        tokens, cookie_id = getattr(app, "tokens", None), getattr(app, "cookie_id", None)
        if not self.credentials.login or not tokens or cookie_id is None:
            return False
        given = cookie_value(headers, f"access-token-{cookie_id}") or \
            cookie_value(headers, f"access-token-unsecure-{cookie_id}")
        return bool(given) and given in tokens

    # how much may come in --------------------------------------------------------------------------
    def _over_upload_budget(self, scope: Scope, address: str, size: int) -> tuple[int, str, dict] | None:
        """Gradio writes uploads to its file cache on disk: they count against the
        visitor's budget (a refusal), taken before the upload is read."""
        if scope.get("method") != "POST" or scope.get("path") != UPLOAD or self.uploads is None:
            return None
        if not self.uploads.allows(address, size):
            return 429, (f"You uploaded {self.uploads.used(address) / 2**20:.0f} MB recently; the most one visitor "
                         f"may within {self.uploads.window / 60:.0f} min is {self.uploads.budget / 2**20:.0f} MB. "
                         "Try again later."), {"retry-after": "60"}
        self.uploads.add(address, size)
        return None

    def _body_limit(self, scope: Scope, headers: dict[str, str]) -> int:
        path = scope.get("path", "")
        if path in SMALL_BODIES:
            return SMALL_BODIES[path]
        if headers.get("content-type", "").startswith("application/json") and not path.startswith(REST):
            return min(self.max_body, JSON_LIMIT)
        return self.max_body

    async def _counted_login(self, scope: Scope, receive: Receive, send: Send, address: str, limit: int) -> None:
        """Gradio's login form, slowed down for an address or a user with many failures:
        Gradio answers 200 to a right login and 400 to a wrong one."""
        body = await read_body(receive, limit)
        if body is None:
            return await _answer(send, 413, self._too_large(limit + 1, limit))
        user = dict(parse_qsl(body.decode("utf-8", "replace"))).get("username", "").strip()
        wait = self.throttle.retry_after(address, user)
        if wait:
            return await _answer(send, *_slow_down(wait))
        status = 0

        async def noting_send(message: dict[str, Any]) -> None:
            nonlocal status
            status = message.get("status", status) if message["type"] == "http.response.start" else status
            await send(message)

        await self.app(scope, replay(body, receive), noting_send)
        if status == 200:
            self.throttle.succeeded(address, user)
        elif status in (400, 401):
            self.throttle.failed(address, user)

    async def _counted_stream(self, scope: Scope, receive: Receive, send: Send, address: str) -> None:
        """An event stream held open (a page's heartbeat, its queue's updates), at most
        STREAMS_PER_VISITOR at once per visitor."""
        if self.streams[address] >= STREAMS_PER_VISITOR:
            return await _answer(send, 429, f"You have {STREAMS_PER_VISITOR} pages or streams open, the most one "
                                            "visitor may; close some.", {"retry-after": "5"})
        self.streams[address] += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.streams[address] -= 1
            if not self.streams[address]:
                del self.streams[address]

    async def _checked_json(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        """A JSON body, read whole (within `limit`) and checked for its shape before any
        parser sees it: no container deeper or longer than a request can need."""
        body = await read_body(receive, limit)
        if body is None:
            return await _answer(send, 413, self._too_large(limit + 1, limit))
        try:
            if len(body) > 2**16:  # a long scan does not hold up the event loop
                await asyncio.get_running_loop().run_in_executor(None, check_shape, body)
            else:
                check_shape(body)
        except BadShape as exc:
            return await _answer(send, 422, str(exc))
        await self.app(scope, replay(body, receive), send)

    async def _bounded(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        """Pass the request on, refusing it once more than `limit` bytes have arrived."""
        received, started = 0, False

        async def counting_receive() -> dict[str, Any]:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
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
                await _answer(send, 413, self._too_large(received, limit))

    @staticmethod
    def _too_large(size: int, limit: int) -> str:
        if limit < 2**20:
            return f"The request is {size} bytes or more; the limit is {limit} bytes."
        return (f"The request is {size / 2**20:.0f} MB or more; the limit is {limit / 2**20:.0f} MB "
                "(uploads: STUDIO_MAX_UPLOAD_MB).")


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None once it is longer than `limit`."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)
        size += len(message.get("body", b""))
        if size > limit:
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives the body already read, then what the connection sends."""
    pending = [body]

    async def replay() -> dict[str, Any]:
        return {"type": "http.request", "body": pending.pop(), "more_body": False} if pending else await receive()

    return replay


def _slow_down(wait: float) -> tuple[int, str, dict[str, str]]:
    return 429, f"Too many failed logins; try again in {wait:.0f} s.", {"retry-after": str(max(1, round(wait)))}


def _with_headers(send: Send, https: bool) -> Send:
    """`send` adding the security headers to the answer, and `Secure` to its cookies when
    the visitor came over HTTPS."""

    async def sending(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            headers = [(k, v + b"; Secure" if https and k.lower() == b"set-cookie" and b"secure" not in v.lower()
                        else v) for k, v in message.get("headers", [])]
            message = {**message, "headers": headers + SECURITY_HEADERS}
        await send(message)

    return sending


async def _answer(send: Send, status: int, message: str, headers: dict[str, str] | None = None) -> None:
    body = json.dumps({"detail": message}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode("latin-1", "replace")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
