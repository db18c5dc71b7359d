"""Each browser's own key: an unguessable cookie the server sets on its first visit.

A page files its jobs under it (its History, and the jobs a tab re-attaches to after a
refresh), so another browser that learns a job id can neither list nor read it through
the UI. With a login the jobs are the user's instead, on any device. The cookie is
HttpOnly: scripts on the page never see it.
"""
from __future__ import annotations

import re
import secrets
from http.cookies import SimpleCookie
from typing import Any

from ui.guard import Receive, Scope, Send

COOKIE = "studio-browser"
MAX_AGE = 400 * 24 * 3600  # the most browsers keep a cookie
VALID = re.compile(r"^[A-Za-z0-9_-]{32}$")


def valid_key(value: str) -> str | None:
    """The browser key, if `value` is a well-formed one."""
    return value if VALID.match(value) else None


def key_in(cookie_header: str) -> str | None:
    """The browser key a Cookie header carries, if it carries a well-formed one."""
    cookie = SimpleCookie()
    try:
        cookie.load(cookie_header)
    except Exception:  # a malformed header carries no key
        return None
    return valid_key(cookie[COOKIE].value if COOKIE in cookie else "")


class BrowserKey:
    """ASGI middleware: a request without a key gets one, set on its response."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers", []))
        if key_in(headers.get(b"cookie", b"").decode("latin-1")):
            return await self.app(scope, receive, send)
        cookie = f"{COOKIE}={secrets.token_urlsafe(24)}; Path=/; Max-Age={MAX_AGE}; HttpOnly; SameSite=Lax"

        async def with_cookie(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"set-cookie", cookie.encode())]}
            await send(message)

        await self.app(scope, receive, with_cookie)
