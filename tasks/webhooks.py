"""Webhooks: a POST with the final status to a job's `callback_url` when it ends.

When a job with a callback ends, the store's finish script pushes its id onto
`studio:webhooks`; a `WebhookDispatcher` thread in the server process takes it
from there and delivers with retries and backoff. Addresses are checked at
submit and again before each delivery, which connects to the address it checked:
loopback, private, link-local and tunnelling addresses are refused unless listed
in STUDIO_WEBHOOK_ALLOW. With STUDIO_WEBHOOK_SECRET set, each delivery is signed
(`Studio-Signature`, see `signature`).
"""
from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import os
import socket
import ssl
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from typing import TYPE_CHECKING

from pipelines.errors import InvalidInput

if TYPE_CHECKING:
    from tasks.client import StudioClient

log = logging.getLogger(__name__)

QUEUE_KEY = "studio:webhooks"
BACKOFF_SECONDS = (1, 2, 4, 8, 16)  # waits between the attempts
TIMEOUT_SECONDS = 10
DELIVERY_THREADS = 8


# Ranges that carry or reach other addresses (NAT64, 6to4, IPv4-compatible) or are
# deprecated site-local: treated as private, whatever `is_global` says of them.
NOT_PUBLIC = [ipaddress.ip_network(n) for n in ("64:ff9b::/96", "64:ff9b:1::/48", "2002::/16", "::/96",
                                                "fec0::/10")]


def allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """STUDIO_WEBHOOK_ALLOW: comma-separated addresses or networks, e.g. "127.0.0.1,10.0.0.0/8"."""
    entries = [e.strip() for e in os.environ.get("STUDIO_WEBHOOK_ALLOW", "").split(",") if e.strip()]
    return [ipaddress.ip_network(entry, strict=False) for entry in entries]


def _public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped:
            return _public(ip.ipv4_mapped)
        if any(ip in network for network in NOT_PUBLIC):
            return False
    return ip.is_global


def checked_address(url: str) -> tuple[urllib.parse.SplitResult, str, int]:
    """The URL's parts and the one address (and port) a delivery may connect to, or
    InvalidInput saying why none. Deliveries connect to this address, not to a second
    lookup of the name, so a name that resolves elsewhere the next time (DNS rebinding)
    cannot steer them to a private address."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("callback_url must be an http:// or https:// URL with a host.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        addresses = [info[4][0] for info in socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)]
    except (socket.gaierror, ValueError, UnicodeError) as exc:
        raise InvalidInput(f"callback_url host {parts.hostname!r} cannot be resolved ({exc}).") from None
    allowed = allowed_networks()
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if not _public(ip) and not any(ip in network for network in allowed):
            raise InvalidInput(f"callback_url resolves to {ip}, a loopback, private or reserved address; "
                               "the server's STUDIO_WEBHOOK_ALLOW setting must list it.")
    return parts, addresses[0], port


def check_callback_url(url: str) -> str:
    """Return the URL if a webhook may be sent there, else raise InvalidInput saying why."""
    checked_address(url)
    return url


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The `Studio-Signature` header: `t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def _post(url: str, body: bytes) -> int:
    """POST to the checked address (TLS still verified against the URL's host name);
    redirects are not followed. Returns the HTTP status."""
    parts, address, port = checked_address(url)
    headers = {"Content-Type": "application/json", "Host": parts.netloc.rpartition("@")[2],
               "User-Agent": "ai-image-studio-webhooks"}
    secret = os.environ.get("STUDIO_WEBHOOK_SECRET")
    if secret:
        headers["Studio-Signature"] = signature(secret, int(time.time()), body)
    if parts.scheme == "https":
        connection = _PinnedHTTPS(address, port, parts.hostname, timeout=TIMEOUT_SECONDS)
    else:
        connection = http.client.HTTPConnection(address, port, timeout=TIMEOUT_SECONDS)
    try:
        path = parts.path or "/"
        connection.request("POST", path + (f"?{parts.query}" if parts.query else ""), body, headers)
        return connection.getresponse().status
    finally:
        connection.close()


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to a given address, with SNI and certificate checked for the URL's host name."""

    def __init__(self, address: str, port: int, hostname: str, timeout: float):
        super().__init__(address, port, timeout=timeout, context=ssl.create_default_context())
        self._hostname = hostname

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self._hostname)


def deliver(url: str, payload: dict) -> None:
    """POST the payload, retrying with backoff; gives up (and logs) after the last attempt."""
    body = json.dumps(payload).encode()
    for attempt, wait in enumerate((*BACKOFF_SECONDS, None), start=1):
        try:
            if _post(url, body) < 300:
                return
        except (OSError, http.client.HTTPException, InvalidInput) as exc:
            log.info("webhook to %s, attempt %d failed: %s", url, attempt, exc)
        if wait is None:
            log.warning("webhook to %s for job %s not delivered", url, payload.get("id"))
            return
        time.sleep(wait)


class WebhookDispatcher:
    """Takes finished jobs with a callback off the store's list and delivers them on a
    bounded pool of threads (a flood of jobs queues deliveries instead of threads)."""

    def __init__(self, client: StudioClient):
        self.client = client
        self._pool = ThreadPoolExecutor(DELIVERY_THREADS, thread_name_prefix="webhook")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="webhooks", daemon=True)

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
        self._pool.submit(deliver, job["callback_url"], payload)
