"""The reaper: running jobs whose worker stopped beating are run again, or failed.

A running job's worker keeps a key alive (`JobStore.beat`, with a TTL of
STUDIO_LOST_AFTER seconds: no clock is compared across machines). When that key
has expired, the pool process or the whole worker is gone: the job goes back to
the queue with a new message (at most `MAX_ATTEMPTS` runs in all), or is failed
with a reason, whether or not anyone is watching it. Every worker and the UI's
server run a reaper; the store's script lets exactly one of them act per job.
"""
from __future__ import annotations

import logging
import threading

from tasks.store import FAILED, QUEUES, RUNNING, JobStore

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 2  # a job whose worker process died twice is failed, not retried forever
EVERY_SECONDS = 1.0


def reap(store: JobStore, queues: tuple[str, ...] = QUEUES) -> list[tuple[str, str]]:
    """One pass: (job id, "requeued" or "failed") for each job it acted on."""
    from tasks.celery_app import send_run_next

    acted = []
    for queue in queues:
        for job_id in store.running_ids(queue):
            outcome = store.reap(job_id, MAX_ATTEMPTS)
            if outcome is None:
                continue
            if outcome == "requeued":
                send_run_next(queue)
            elif store.finish(job_id, FAILED, allowed=(RUNNING,), error=(
                    f"The worker running this job stopped each time ({MAX_ATTEMPTS} runs): its process or machine "
                    "went away, perhaps out of memory on this image. Try a smaller image, or submit it again.")):
                store.count("reaper", "failed")
            else:
                continue  # another reaper was first
            log.warning("job %s lost its worker: %s", job_id, outcome)
            acted.append((job_id, "requeued" if outcome == "requeued" else "failed"))
    return acted


class Reaper:
    """`reap` every second in a daemon thread, riding out Redis outages."""

    def __init__(self, store: JobStore):
        self.store = store
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="reaper", daemon=True)

    def start(self) -> Reaper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(EVERY_SECONDS):
            try:
                reap(self.store)
            except Exception:  # Redis away for a moment: the next pass tries again
                log.warning("reaper pass failed", exc_info=True)
