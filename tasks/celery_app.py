"""The Celery app: Redis as broker, JSON only, no result store (a job's state and
results live in the job store).

A message names no job: each says "start the next job of this queue", and the worker
that takes it starts the first waiting job in fair order (`JobStore.take`). One message
is sent per job queued, so every job gets its turn, while the order is decided when a
worker is free, not when the job was submitted.

Importing this reads nothing from the environment: the process that sends or runs
tasks calls `configure(settings)` first (the worker's entry, `tasks.worker`, and
`StudioClient` do).
"""
from __future__ import annotations

import os

from celery import Celery
from redis import Redis

from pipelines.catalogue import OPERATIONS
from tasks.settings import Settings
from tasks.store import JobStore

RUN_NEXT = "studio.run_next"

app = Celery("studio", include=["tasks.operations", "tasks.presence", "tasks.drain"])
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    task_acks_late=True,  # a job whose worker dies is redelivered, not lost
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,  # a busy worker does not hoard queued jobs
    # a pool process grown past this (a leak) is replaced once its job is done (its models reload)
    worker_max_memory_per_child=int(float(os.environ.get("STUDIO_WORKER_MAX_MEMORY_MB", "12288")) * 1024),
    task_default_queue="cpu",
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    # an unacked message (its worker was killed) comes back after this; by then the reaper
    # has queued the job again or failed it, and the job store makes the copy a no-op
    broker_transport_options={"visibility_timeout": max(op.time_limit for op in OPERATIONS.values()) + 300},
)
_settings: list[Settings] = []  # what `configure` was given


def configure(settings: Settings) -> Celery:
    """Point the app at the studio's Redis and keep `settings` for the tasks. Each
    operation's own time limit is kept by JobRun; the hard limit set here only catches a
    worker stuck past every limit and its grace."""
    hard_limit = max(op.time_limit for op in OPERATIONS.values()) + int(settings.cancel_grace) + 60
    app.conf.update(broker_url=settings.redis_url, task_time_limit=hard_limit)
    _settings[:] = [settings]
    return app


def configured() -> Settings:
    """The settings `configure` was given."""
    if not _settings:
        raise RuntimeError("tasks.configure(settings) has not been called in this process")
    return _settings[0]


def job_store() -> JobStore:
    """A store on the configured Redis (worker side: the task, presence, drain)."""
    settings = configured()
    return JobStore(Redis.from_url(settings.redis_url), settings.job_ttl)


def send_run_next(queue: str) -> None:
    """One more turn on `queue` (for a job just queued, or queued again)."""
    app.send_task(RUN_NEXT, args=[queue], queue=queue)
