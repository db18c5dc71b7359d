"""The worker's side of a running job: progress writes, heartbeat, cancel.

`JobRun` gives a pipeline its `RunContext`. A background thread keeps the
job alive in the store (so a dead worker is noticed by `tasks.reaper`) and watches for a cancel
request: the pipeline sees it at its next `check_cancelled()`, and if it has
not stopped after the grace period the process is terminated. A job past its
operation's time limit is stopped the same way, and fails saying so.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from PIL import Image
from redis.exceptions import RedisError

from pipelines.context import RunContext
from pipelines.imaging import encode_png
from pipelines.registry import Operation
from tasks.settings import Settings
from tasks.store import CANCELLED, FAILED, JobStore

log = logging.getLogger(__name__)

PROGRESS_INTERVAL = 0.1  # seconds between progress writes with the same stage


class JobRun:
    def __init__(self, store: JobStore, job_id: str, settings: Settings, terminate: Callable[[], None],
                 op: Operation):
        self.store, self.job_id, self.settings, self.terminate = store, job_id, settings, terminate
        self.time_limit = op.time_limit
        self.time_limit_message = f"{op.title} took longer than its {op.time_limit} s limit and was stopped."
        self.timed_out = False
        self._began = time.monotonic()
        self._stop = threading.Event()
        self._cancel_seen_at: float | None = None
        self._last_write = (0.0, "")
        self._thread = threading.Thread(target=self._watch, name=f"job-{job_id[:8]}", daemon=True)

    def __enter__(self) -> RunContext:
        self._thread.start()
        return RunContext(report=self.report, is_cancelled=self.is_cancelled)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def report(self, percent: float, stage: str, preview: Image.Image | None = None) -> None:
        now = time.monotonic()
        last_time, last_stage = self._last_write
        if stage == last_stage and now - last_time < PROGRESS_INTERVAL and percent < 100 and preview is None:
            return
        self._last_write = (now, stage)
        fields: dict[str, object] = {"percent": round(percent, 1), "stage": stage, "progress_at": time.time()}
        try:
            if preview is not None:
                self.store.put_blob(self.job_id, "preview", encode_png(preview))
                fields["preview_version"] = time.time()
            self.store.update(self.job_id, **fields)
        except RedisError:  # progress is best effort: a Redis stall must not fail the job itself
            log.warning("progress of job %s not written", self.job_id, exc_info=True)

    def is_cancelled(self) -> bool:
        """Whether the job is to stop: a cancel was asked for, or its time is up."""
        if self._cancel_seen_at is None and time.monotonic() - self._began > self.time_limit:
            self.timed_out, self._cancel_seen_at = True, time.monotonic()
        try:
            requested = self.store.redis.hget(self.store.job_key(self.job_id), "cancel_requested")
        except RedisError:  # cannot tell now: the next check asks again
            return self._cancel_seen_at is not None
        if self._cancel_seen_at is None and requested:
            self._cancel_seen_at = time.monotonic()
        return self._cancel_seen_at is not None

    def _watch(self) -> None:
        while not self._stop.wait(self.settings.heartbeat_seconds):
            try:
                self.store.beat(self.job_id, self.settings.lost_after)
                if self.is_cancelled() and time.monotonic() - self._cancel_seen_at > self.settings.cancel_grace:
                    self._force_stop()
                    return
            except Exception:  # a Redis hiccup must not kill the job; the next beat retries
                log.exception("heartbeat for job %s failed", self.job_id)

    def _force_stop(self) -> None:
        grace = self.settings.cancel_grace
        if self.timed_out:
            ended = self.store.finish(self.job_id, FAILED, error=self.time_limit_message)
        else:
            ended = self.store.finish(self.job_id, CANCELLED,
                                      stage=f"cancelled (stopped by force: it did not stop within {grace:.0f} s)")
        if ended:
            log.warning("job %s did not stop for %.0f s; terminating its process", self.job_id, grace)
            self.terminate()
