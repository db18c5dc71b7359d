"""The Celery app: Redis as broker and result store, JSON only.

A message names no job: each says "start the next job of this queue", and the worker
that takes it starts the first waiting job in fair order (`JobStore.take`). One message
is sent per job queued, so every job gets its turn, while the order is decided when a
worker is free, not when the job was submitted.
"""
from __future__ import annotations

import os

from celery import Celery

from pipelines.catalogue import OPERATIONS
from tasks.settings import Settings

settings = Settings.from_env()

app = Celery("studio", broker=settings.redis_url, backend=settings.redis_url,
             include=["tasks.operations", "tasks.presence", "tasks.drain"])
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    result_accept_content=["json"],
    task_acks_late=True,  # a job whose worker dies is redelivered, not lost
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,  # a busy worker does not hoard queued jobs
    # a pool process grown past this (a leak) is replaced once its job is done (its models reload)
    worker_max_memory_per_child=int(float(os.environ.get("STUDIO_WORKER_MAX_MEMORY_MB", "12288")) * 1024),
    task_default_queue="cpu",
    result_expires=settings.job_ttl,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    # an unacked message (its worker was killed) comes back after this; by then the reaper
    # has queued the job again or failed it, and the job store makes the copy a no-op
    broker_transport_options={"visibility_timeout": max(op.time_limit for op in OPERATIONS.values()) + 300},
)

RUN_NEXT = "studio.run_next"


def send_run_next(queue: str) -> None:
    """One more turn on `queue` (for a job just queued, or queued again)."""
    app.send_task(RUN_NEXT, args=[queue], queue=queue, ignore_result=True)
