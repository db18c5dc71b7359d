"""Tells an API client's cancel from a page that went away.

Both stop the Gradio handler that follows a job. Only the first should cancel the job:
gradio_client's `Job.cancel()` posts to /gradio_api/cancel, while a page that is closed
or reloaded only drops its connection, and its job runs on (the page finds it again).
"""
from __future__ import annotations

import json
import time
from typing import Any

from ui.guard import SMALL_BODIES, Receive, Scope, Send, read_body, replay

CANCEL_PATH = "/gradio_api/cancel"
MEMORY_SECONDS = 60
_requested: dict[str, float] = {}  # session hash -> when it last asked to cancel (monotonic)


def cancel_requested(session_hash: str | None, since: float) -> bool:
    """Whether the session posted a cancel at or after `since` (time.monotonic())."""
    return bool(session_hash) and _requested.get(session_hash, -1.0) >= since


class CancelRequests:
    """ASGI middleware noting which sessions post a cancel (behind the Guard, which bounds the body)."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST" or not scope["path"].endswith(CANCEL_PATH):
            return await self.app(scope, receive, send)
        body = await read_body(receive, SMALL_BODIES[CANCEL_PATH]) or b""  # the Guard refused a longer one
        try:
            session = json.loads(body).get("session_hash")
        except (ValueError, AttributeError):
            session = None
        now = time.monotonic()
        for stale in [s for s, at in _requested.items() if now - at > MEMORY_SECONDS]:
            del _requested[stale]
        if isinstance(session, str):
            _requested[session] = now
        await self.app(scope, replay(body, receive), send)
