"""Webhooks: a POST with the final status to a job's `callback_url` when it ends.

When a job with a callback ends, the store's finish script pushes its id onto
`studio:webhooks`; a `WebhookDispatcher` thread in the server process takes it
from there and delivers with retries and backoff. Addresses are checked at
submit and again before each delivery: loopback, private and link-local
addresses are refused unless listed in STUDIO_WEBHOOK_ALLOW.
"""
from __future__ import annotations

import ipaddress
import json
import logging
import os
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict
from typing import TYPE_CHECKING

from pipelines.errors import InvalidInput

if TYPE_CHECKING:
    from tasks.client import StudioClient

log = logging.getLogger(__name__)

QUEUE_KEY = "studio:webhooks"
BACKOFF_SECONDS = (1, 2, 4, 8, 16)  # waits between the attempts
TIMEOUT_SECONDS = 10


def allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """STUDIO_WEBHOOK_ALLOW: comma-separated addresses or networks, e.g. "127.0.0.1,10.0.0.0/8"."""
    entries = [e.strip() for e in os.environ.get("STUDIO_WEBHOOK_ALLOW", "").split(",") if e.strip()]
    return [ipaddress.ip_network(entry, strict=False) for entry in entries]


def check_callback_url(url: str) -> str:
    """Return the URL if a webhook may be sent there, else raise InvalidInput saying why."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("callback_url must be an http:// or https:// URL with a host.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        addresses = {info[4][0] for info in socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)}
    except (socket.gaierror, ValueError, UnicodeError) as exc:
        raise InvalidInput(f"callback_url host {parts.hostname!r} cannot be resolved ({exc}).") from None
    allowed = allowed_networks()
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if not ip.is_global and not any(ip in network for network in allowed):
            raise InvalidInput(f"callback_url resolves to {ip}, a loopback, private or reserved address; "
                               "the server's STUDIO_WEBHOOK_ALLOW setting must list it.")
    return url


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect could point at an address the check above would refuse."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def deliver(url: str, payload: dict) -> None:
    """POST the payload, retrying with backoff; gives up (and logs) after the last attempt."""
    body = json.dumps(payload).encode()
    for attempt, wait in enumerate((*BACKOFF_SECONDS, None), start=1):
        try:
            check_callback_url(url)
            request = urllib.request.Request(url, body, {"Content-Type": "application/json"}, method="POST")
            with _opener.open(request, timeout=TIMEOUT_SECONDS) as response:
                if response.status < 300:
                    return
        except (urllib.error.URLError, OSError, InvalidInput) as exc:
            log.info("webhook to %s, attempt %d failed: %s", url, attempt, exc)
        if wait is None:
            log.warning("webhook to %s for job %s not delivered", url, payload.get("id"))
            return
        time.sleep(wait)


class WebhookDispatcher:
    """Takes finished jobs with a callback off the store's list and delivers each in its own thread."""

    def __init__(self, client: StudioClient):
        self.client = client
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="webhooks", daemon=True)

    def start(self) -> WebhookDispatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop taking jobs (a delivery already under way goes on); returns once the loop has ended."""
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        redis = self.client.store.redis
        while not self._stop.is_set():
            try:
                item = redis.blpop([QUEUE_KEY], timeout=1)
                if item:
                    self._dispatch(item[1].decode())
            except Exception:  # Redis away for a moment: try again shortly
                log.exception("webhook dispatcher")
                self._stop.wait(1)

    def _dispatch(self, job_id: str) -> None:
        job = self.client.store.get(job_id)
        if not job or not job.get("callback_url"):
            return
        payload = {"event": "job.finished", **asdict(self.client.status(job_id))}
        threading.Thread(target=deliver, args=(job["callback_url"], payload), daemon=True).start()
