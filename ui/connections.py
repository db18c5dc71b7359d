"""Connections bounded in front of Uvicorn: a slowloris opens thousands of connections
and sends a byte of headers now and then, which Uvicorn waits for without end.

- A request's headers must all arrive within STUDIO_HEADER_SECONDS (10) of its first
  byte (or of the connection); otherwise the connection is closed.
- One address holds at most STUDIO_CONNECTIONS_PER_ADDRESS (64) connections at once;
  more are closed as they come. This machine's own addresses are not counted: a proxy
  or the share link's tunnel carries every visitor (the Guard tells them apart).
- An error logged again and again (say, "Too many open files") is logged once a minute.

Gradio builds Uvicorn's configuration itself, so `install` names this protocol in
Uvicorn's table of HTTP protocols, before the server starts.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import Counter
from typing import ClassVar

from uvicorn.protocols.http.h11_impl import H11Protocol

LOCAL = ("127.0.0.1", "::1")


class BoundedH11Protocol(H11Protocol):
    open_by_address: ClassVar[Counter[str]] = Counter()
    header_seconds: ClassVar[float] = 10.0
    per_address: ClassVar[int] = 64

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_timer: asyncio.TimerHandle | None = None
        self._address = self.client[0] if self.client else ""
        self._counted = self._address not in LOCAL
        if self._counted:
            self.open_by_address[self._address] += 1
            if self.open_by_address[self._address] > self.per_address:
                transport.close()
                return
        self._await_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._counted:
            self.open_by_address[self._address] -= 1
            if self.open_by_address[self._address] <= 0:
                del self.open_by_address[self._address]
            self._counted = False
        self._stop_waiting()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        between_requests = self.cycle is None or self.cycle.response_complete
        if between_requests and self._header_timer is None:
            self._await_headers()
        super().data_received(data)
        if self.cycle is not None and not self.cycle.response_complete:
            self._stop_waiting()  # the headers are in: the request runs as long as it needs

    def _await_headers(self) -> None:
        self._header_timer = self.loop.call_later(self.header_seconds, self._headers_too_slow)

    def _stop_waiting(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.cycle is None or self.cycle.response_complete:
            self.transport.close()


class OncePerMinute(logging.Filter):
    """Lets each distinct message through at most once a minute."""

    def __init__(self) -> None:
        super().__init__()
        self._last: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key, now = f"{record.name}:{str(record.msg).partition(chr(10))[0]}", time.monotonic()  # its first line
        if now - self._last.get(key, -60.0) < 60.0:
            return False
        if len(self._last) > 1000:
            self._last.clear()
        self._last[key] = now
        return True


def install() -> None:
    """Make Uvicorn's "auto" HTTP protocol this one, with limits from the environment."""
    import uvicorn.config

    BoundedH11Protocol.header_seconds = float(os.environ.get("STUDIO_HEADER_SECONDS") or 10)
    BoundedH11Protocol.per_address = int(os.environ.get("STUDIO_CONNECTIONS_PER_ADDRESS") or 64)
    uvicorn.config.HTTP_PROTOCOLS["auto"] = f"{__name__}:BoundedH11Protocol"
    quiet = OncePerMinute()
    for name in ("uvicorn.error", "asyncio"):
        logging.getLogger(name).addFilter(quiet)
