"""Workers announce themselves in Redis, so the UI can tell "queued behind
others" from "no worker consumes this queue" and divide ETAs by workers."""
from __future__ import annotations

import os
import threading

from celery.signals import worker_ready, worker_shutdown
from redis import Redis

from tasks.celery_app import settings
from tasks.store import JobStore

ANNOUNCE_EVERY = 3.0
_stop = threading.Event()


@worker_ready.connect
def _announce(sender, **_: object) -> None:
    hostname = sender.hostname
    queues = sorted(q.name for q in sender.task_consumer.queues)
    store = JobStore(Redis.from_url(settings.redis_url), settings.job_ttl)

    def loop() -> None:
        while not _stop.is_set():
            store.announce_worker(hostname, queues, os.getpid(), ttl=ANNOUNCE_EVERY * 3)
            _stop.wait(ANNOUNCE_EVERY)

    threading.Thread(target=loop, name="presence", daemon=True).start()


@worker_shutdown.connect
def _withdraw(sender, **_: object) -> None:
    _stop.set()
    JobStore(Redis.from_url(settings.redis_url), settings.job_ttl).withdraw_worker(sender.hostname)
