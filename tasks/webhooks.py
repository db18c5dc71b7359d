"""Webhooks: a POST with the final status to a job's `callback_url` when it ends.

When a job with a callback ends, the store's finish script pushes its id onto
`studio:webhooks`; a `WebhookDispatcher` thread in the server process takes it
from there and delivers with retries and backoff. Addresses are checked at
submit and again before each delivery, which connects to the address it checked
(see `tasks.callback_url`). Each attempt has a deadline (a server that answers a byte
at a time cannot hold a delivery thread), and a delivery waiting for its next attempt
holds no thread. With STUDIO_WEBHOOK_SECRET set, each delivery is signed
(`Studio-Signature`, see `signature`), for its destination URL.
"""
from __future__ import annotations

import hashlib
import heapq
import hmac
import http.client
import itertools
import json
import logging
import os
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from typing import TYPE_CHECKING

from pipelines.errors import InvalidInput
from tasks.callback_url import checked_address

if TYPE_CHECKING:
    from tasks.client import StudioClient

log = logging.getLogger(__name__)

QUEUE_KEY = "studio:webhooks"
BACKOFF_SECONDS = (1, 2, 4, 8, 16)  # waits between the attempts
TIMEOUT_SECONDS = 10  # for one attempt, from connecting to the last byte of the answer
DELIVERY_THREADS = 8


def signature(secret: str, timestamp: int, url: str, body: bytes) -> str:
    """The `Studio-Signature` header: `t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<url>.<body>">`:
    a delivery replayed to another receiver does not verify there."""
    digest = hmac.new(secret.encode(), f"{timestamp}.{url}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def _post(url: str, body: bytes) -> int:
    """POST to the checked address (TLS still verified against the URL's host name);
    redirects are not followed. Returns the HTTP status. The connection is shut once
    TIMEOUT_SECONDS have passed, however the server trickles its answer."""
    parts, address, port = checked_address(url)
    headers = {"Content-Type": "application/json", "Host": parts.netloc.rpartition("@")[2],
               "User-Agent": "ai-image-studio-webhooks"}
    secret = os.environ.get("STUDIO_WEBHOOK_SECRET")
    if secret:
        headers["Studio-Signature"] = signature(secret, int(time.time()), url, body)
    if parts.scheme == "https":
        connection = _PinnedHTTPS(address, port, parts.hostname, timeout=TIMEOUT_SECONDS)
    else:
        connection = http.client.HTTPConnection(address, port, timeout=TIMEOUT_SECONDS)
    deadline = threading.Timer(TIMEOUT_SECONDS, _shut, (connection,))
    deadline.start()
    try:
        path = parts.path or "/"
        connection.request("POST", path + (f"?{parts.query}" if parts.query else ""), body, headers)
        return connection.getresponse().status
    finally:
        deadline.cancel()
        connection.close()


def _shut(connection: http.client.HTTPConnection) -> None:
    """Ends a blocked read on the connection (close() from another thread would not)."""
    if connection.sock is not None:
        try:
            connection.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to a given address, with SNI and certificate checked for the URL's host name."""

    def __init__(self, address: str, port: int, hostname: str, timeout: float):
        super().__init__(address, port, timeout=timeout, context=ssl.create_default_context())
        self._hostname = hostname

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self._hostname)


def attempt(url: str, payload: dict, number: int = 1) -> bool:
    """One delivery attempt; whether the receiver took it (a 2xx)."""
    try:
        if _post(url, json.dumps(payload).encode()) < 300:
            return True
    except (OSError, http.client.HTTPException, InvalidInput) as exc:
        log.info("webhook to %s, attempt %d failed: %s", url, number, exc)
    return False


class WebhookDispatcher:
    """Takes finished jobs with a callback off the store's list and delivers them on a
    bounded pool of threads (a flood of jobs queues deliveries instead of threads). A
    failed attempt is tried again after its backoff from a list of retries, not by a
    thread that sleeps."""

    def __init__(self, client: StudioClient):
        self.client = client
        self._pool = ThreadPoolExecutor(DELIVERY_THREADS, thread_name_prefix="webhook")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="webhooks", daemon=True)
        self._retries: list[tuple[float, int, str, dict, int]] = []  # (when, tie-break, url, payload, attempt)
        self._lock, self._order = threading.Lock(), itertools.count()

    def start(self) -> WebhookDispatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop taking jobs (a delivery already under way goes on); returns once the loop has ended."""
        self._stop.set()
        self._thread.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _loop(self) -> None:
        redis = self.client.store.redis
        while not self._stop.is_set():
            try:
                self._retry_due()
                item = redis.blpop([QUEUE_KEY], timeout=0.5)
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
        self._pool.submit(self._attempt, job["callback_url"], payload, 1)

    def _attempt(self, url: str, payload: dict, number: int) -> None:
        if attempt(url, payload, number):
            self._count("delivered")
            return
        self._count("attempts_failed")
        if number > len(BACKOFF_SECONDS):
            log.warning("webhook to %s for job %s not delivered", url, payload.get("id"))
            self._count("failed")
            return
        with self._lock:
            heapq.heappush(self._retries, (time.monotonic() + BACKOFF_SECONDS[number - 1], next(self._order),
                                           url, payload, number + 1))

    def _count(self, outcome: str) -> None:
        try:
            self.client.store.count("webhooks", outcome)
        except Exception:  # metrics are best effort: Redis away must not lose the delivery's log
            log.warning("webhook metric not counted", exc_info=True)

    def _retry_due(self) -> None:
        with self._lock:
            while self._retries and self._retries[0][0] <= time.monotonic():
                _, _, url, payload, number = heapq.heappop(self._retries)
                self._pool.submit(self._attempt, url, payload, number)
