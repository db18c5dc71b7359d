"""Configuration from the environment, read once per process."""
from __future__ import annotations

import os
from dataclasses import dataclass


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


@dataclass(frozen=True)
class Settings:
    redis_url: str
    job_ttl: int  # seconds images and job records stay in Redis
    max_upload_bytes: int
    max_pixels: int
    max_batch_bytes: int  # the photos of one batch together (a .zip's members as they unpack)
    upload_budget_bytes: int  # what one visitor may upload to the UI's disk within a job TTL
    cancel_grace: float  # seconds a job may ignore a cancel before its process is terminated
    heartbeat_seconds: float
    lost_after: float  # a running job whose heartbeat is older than this is failed as lost
    drain_seconds: float  # how long a worker told to stop lets its running job finish (tasks.drain)
    max_jobs_per_owner: int  # queued + running jobs one browser, user or token may have
    max_waiting: int  # queued jobs in all, beyond which submissions are turned away for a while
    max_stored_bytes: int  # images one visitor's jobs may keep in Redis (inputs and results)
    max_visitor_work: float  # compute of one visitor's queued and running jobs (Generate: megapixel-steps)

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            redis_url=_env("REDIS_URL", "redis://127.0.0.1:6379/0"),
            job_ttl=int(_env("STUDIO_JOB_TTL", "3600")),
            max_upload_bytes=int(float(_env("STUDIO_MAX_UPLOAD_MB", "50")) * 1024 * 1024),
            max_batch_bytes=int(float(_env("STUDIO_MAX_BATCH_MB", "200")) * 1024 * 1024),
            upload_budget_bytes=int(float(_env("STUDIO_UPLOAD_BUDGET_MB", "2048")) * 1024 * 1024),
            max_pixels=int(float(_env("STUDIO_MAX_MEGAPIXELS", "40")) * 1_000_000),
            cancel_grace=float(_env("STUDIO_CANCEL_GRACE", "10")),
            heartbeat_seconds=float(_env("STUDIO_HEARTBEAT_SECONDS", "1")),
            lost_after=float(_env("STUDIO_LOST_AFTER", "10")),
            drain_seconds=float(_env("STUDIO_DRAIN_SECONDS", "30")),
            max_jobs_per_owner=int(_env("STUDIO_MAX_JOBS_PER_OWNER", "32")),
            max_waiting=int(_env("STUDIO_MAX_WAITING", "200")),
            max_visitor_work=float(_env("STUDIO_MAX_VISITOR_WORK", "1024")),
            max_stored_bytes=int(float(_env("STUDIO_MAX_STORED_MB", "512")) * 1024 * 1024),
        )
