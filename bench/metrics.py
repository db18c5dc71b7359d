"""What watching the studio costs: /metrics with 100,000 other keys in Redis, and the
page's `GET /` while 50 clients poll their jobs and Prometheus scrapes every second.

    python -m bench.metrics

Targets: `GET /metrics` p95 <= 50 ms; `GET /` p95 <= 300 ms under that load.
"""
from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

import requests
from redis import Redis

from bench import stack


def p95(times: list[float]) -> float:
    return sorted(times)[int(len(times) * 0.95)] * 1000


def main() -> None:
    studio = stack.Launcher(Path(tempfile.mkdtemp(prefix="bench-metrics-")))
    try:
        redis = Redis.from_url(studio.redis_url)
        pipe = redis.pipeline(transaction=False)
        for n in range(100_000):
            pipe.set(f"other:{n}", "x" * 100)
        pipe.execute()
        scrapes = []
        with requests.Session() as session:
            for _ in range(200):
                started = time.monotonic()
                assert session.get(f"{studio.url}metrics", timeout=10).ok
                scrapes.append(time.monotonic() - started)
        print(f"GET /metrics with 100,000 other keys: p50 {sorted(scrapes)[100] * 1000:.1f} ms, "
              f"p95 {p95(scrapes):.1f} ms (target <= 50 ms)")

        stop, page = threading.Event(), []

        def poll() -> None:
            job = studio.submit(steps=1000, step_seconds=0.05)
            with requests.Session() as session:
                while not stop.wait(0.2):
                    session.get(f"{studio.api}/tasks/{job}/status/", timeout=30)

        def scrape() -> None:
            with requests.Session() as session:
                while not stop.wait(1.0):
                    session.get(f"{studio.url}metrics", timeout=30)

        threads = [threading.Thread(target=poll, daemon=True) for _ in range(50)]
        threads.append(threading.Thread(target=scrape, daemon=True))
        for thread in threads:
            thread.start()
        time.sleep(3)
        with requests.Session() as session:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                started = time.monotonic()
                session.get(studio.url, timeout=30)
                page.append(time.monotonic() - started)
                time.sleep(0.1)
        stop.set()
        print(f"GET / under 50 polling clients and a scrape a second: p95 {p95(page):.0f} ms over {len(page)} "
              "probes (target <= 300 ms)")
    finally:
        studio.stop()


if __name__ == "__main__":
    main()
