"""Queue overhead: a no-op job through the whole studio stack (validation, job
store, Celery, worker, result in Redis, result fetched) vs a bare Celery no-op
(`.delay().get()`) on the same server, each with one prefork worker.

    python -m bench.queue_overhead [--jobs 200]
"""
from __future__ import annotations

import argparse
import io

from PIL import Image

from bench import stack


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=200)
    args = parser.parse_args()

    stack.start_server()
    stack.start_studio_worker("cpu")
    stack.start_process(["-m", "celery", "-A", "bench.raw_celery", "worker", "-Q", "raw", "-c", "1",
                         "-n", "raw@%h", "--loglevel", "INFO"], " ready.")
    from bench.raw_celery import noop
    from tasks.client import StudioClient

    client = StudioClient()
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "gray").save(buffer, "PNG")
    image = buffer.getvalue()

    def studio_noop() -> None:
        job = client.submit("diagnostic", {"image": image}, {})
        assert client.wait(job, timeout=30).state == "succeeded"
        client.results(job)

    def celery_noop() -> None:
        noop.delay().get(timeout=30)

    stack.timed(studio_noop, 20), stack.timed(celery_noop, 20)  # warm up both
    ours, baseline = [], []
    for _ in range(args.jobs // 10):  # interleave so machine noise hits both alike
        ours += stack.timed(studio_noop, 10)
        baseline += stack.timed(celery_noop, 10)
    stack.report(f"no-op job, submit -> result ({len(ours)} jobs each)", ours, baseline, target=1.5)


if __name__ == "__main__":
    main()
