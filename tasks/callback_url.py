"""Where a webhook may go: a job's `callback_url` is checked at submit, and again
before each delivery (`tasks.webhooks`), which connects to the address checked.
Loopback, private, link-local and tunnelling addresses are refused unless listed in
STUDIO_WEBHOOK_ALLOW, and so are multicast and reserved ones."""
from __future__ import annotations

import ipaddress
import os
import socket
import urllib.parse

from pipelines.errors import InvalidInput

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
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified)


def resolve(host: str, port: int) -> list[str]:
    """The addresses a host name has now."""
    return [info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


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
        addresses = resolve(parts.hostname, port)
    except (socket.gaierror, ValueError, UnicodeError) as exc:
        raise InvalidInput(f"callback_url host {parts.hostname!r} cannot be resolved ({exc}).") from None
    allowed = allowed_networks()
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if not _public(ip) and not any(ip in network for network in allowed):
            raise InvalidInput(f"callback_url resolves to {ip}, a loopback, private, multicast or reserved address; "
                               "the server's STUDIO_WEBHOOK_ALLOW setting must list it.")
    return parts, addresses[0], port


def check_callback_url(url: str) -> str:
    """Return the URL if a webhook may be sent there, else raise InvalidInput saying why."""
    checked_address(url)
    return url
