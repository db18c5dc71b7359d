"""Graceful drain: SIGTERM to a worker (a deploy, an autoscaler, Ctrl-C in launch.py)
starts Celery's warm shutdown, so the worker takes no more jobs. The job it runs may
finish within STUDIO_DRAIN_SECONDS; otherwise it goes back to its place in the queue at
once, saying so ("its worker is shutting down; queued again"), without counting as a
run, and its process is stopped, so the worker exits. Nothing waits for the reaper."""
from __future__ import annotations

import logging
import os
import signal
import threading
import time

from celery.signals import worker_shutting_down

from tasks.celery_app import configured, job_store, send_run_next

log = logging.getLogger(__name__)
REQUEUED = "its worker is shutting down; queued again"


@worker_shutting_down.connect
def _drain(sender: str, how: str = "", **_: object) -> None:
    """In the worker's main process, as its warm shutdown begins (`sender`: its name)."""
    if how == "Warm":
        threading.Thread(target=drain, args=(sender, configured().drain_seconds), name="drain", daemon=True).start()


def drain(hostname: str, seconds: float) -> None:
    """Wait up to `seconds` for this worker's jobs to end; queue again those that have not."""
    store = job_store()
    deadline = time.monotonic() + seconds
    while store.jobs_on(hostname) and time.monotonic() < deadline:
        time.sleep(0.2)
    for job_id, record in store.jobs_on(hostname):
        if store.requeue(job_id, hostname, REQUEUED):
            send_run_next(record["queue"])
            log.warning("job %s did not end within %.0f s of shutdown: queued again", job_id, seconds)
            try:
                os.kill(int(record["pid"]), signal.SIGKILL)  # its pool process, on this machine
            except (ProcessLookupError, ValueError):
                pass
