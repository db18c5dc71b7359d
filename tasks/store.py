"""The job store: one Redis hash per job, images as raw bytes in their own keys.

Keys (all expire after the job TTL):
  studio:job:<id>             hash: operation, params (JSON), state, percent, stage, ...
  studio:job:<id>:blob:<name> raw bytes: "in:image", "out:0", "preview"
  studio:waiting:<queue>      sorted set of queued job ids by submit time (queue position)
  studio:stats:<operation>    hash: recent average run time (for ETAs)
  studio:worker:<hostname>    JSON {queues, pid}: a live worker, refreshed while it runs
"""
from __future__ import annotations

import json
import time
from typing import Any

from redis import Redis

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "queued", "running", "succeeded", "failed", "cancelled"
TERMINAL = (SUCCEEDED, FAILED, CANCELLED)

# Compare-and-set on the job's state, so a finished job never changes again.
_TRANSITION = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state or not string.find(',' .. ARGV[1] .. ',', ',' .. state .. ',', 1, true) then
  return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
return 1
"""


class JobStore:
    def __init__(self, redis: Redis, ttl: int):
        self.redis = redis
        self.ttl = ttl
        self._transition = redis.register_script(_TRANSITION)

    # keys -----------------------------------------------------------------
    @staticmethod
    def job_key(job_id: str) -> str:
        return f"studio:job:{job_id}"

    @staticmethod
    def blob_key(job_id: str, name: str) -> str:
        return f"studio:job:{job_id}:blob:{name}"

    @staticmethod
    def waiting_key(queue: str) -> str:
        return f"studio:waiting:{queue}"

    # jobs -----------------------------------------------------------------
    def create(self, job_id: str, fields: dict[str, Any], blobs: dict[str, bytes], queue: str) -> None:
        now = time.time()
        pipe = self.redis.pipeline()
        for name, data in blobs.items():
            pipe.set(self.blob_key(job_id, name), data, ex=self.ttl)
        pipe.hset(self.job_key(job_id), mapping={**fields, "state": QUEUED, "queue": queue, "created_at": now,
                                                 "percent": 0, "stage": "queued", "attempts": 0})
        pipe.expire(self.job_key(job_id), self.ttl)
        pipe.zadd(self.waiting_key(queue), {job_id: now})
        pipe.execute()

    def get(self, job_id: str) -> dict[str, str] | None:
        raw = self.redis.hgetall(self.job_key(job_id))
        return {k.decode(): v.decode() for k, v in raw.items()} if raw else None

    def update(self, job_id: str, **fields: Any) -> None:
        self.redis.hset(self.job_key(job_id), mapping=fields)

    def transition(self, job_id: str, allowed: tuple[str, ...], state: str, **fields: Any) -> bool:
        """Set `state` (and fields) only if the job is currently in one of `allowed`."""
        pairs: list[Any] = ["state", state]
        for key, value in fields.items():
            pairs += [key, value]
        return bool(self._transition(keys=[self.job_key(job_id)], args=[",".join(allowed), *pairs]))

    def finish(self, job_id: str, state: str, allowed: tuple[str, ...] = (QUEUED, RUNNING), **fields: Any) -> bool:
        """Move the job to a terminal state; False if it was not in one of `allowed`."""
        done = self.transition(job_id, allowed, state, finished_at=time.time(), **fields)
        if done:
            self.leave_queue(job_id)
            self.redis.expire(self.job_key(job_id), self.ttl)  # the result is kept a full TTL
        return done

    def begin(self, job_id: str, worker: str, pid: int) -> dict[str, str] | None:
        """Mark the job running on this worker; None if it ended (cancelled, lost) or expired.
        A job redelivered after its worker died is begun again, with attempts counted."""
        now = time.time()
        if not self.transition(job_id, (QUEUED, RUNNING), RUNNING, started_at=now, heartbeat_at=now,
                               worker=worker, pid=pid, stage="starting"):
            return None
        self.redis.hincrby(self.job_key(job_id), "attempts", 1)
        self.leave_queue(job_id)
        return self.get(job_id)

    def leave_queue(self, job_id: str) -> None:
        queue = self.redis.hget(self.job_key(job_id), "queue")
        if queue:
            self.redis.zrem(self.waiting_key(queue.decode()), job_id)

    def waiting_ahead(self, job_id: str, queue: str) -> int | None:
        return self.redis.zrank(self.waiting_key(queue), job_id)

    # images ---------------------------------------------------------------
    def put_blob(self, job_id: str, name: str, data: bytes) -> None:
        self.redis.set(self.blob_key(job_id, name), data, ex=self.ttl)

    def get_blob(self, job_id: str, name: str) -> bytes | None:
        return self.redis.get(self.blob_key(job_id, name))

    # statistics for ETAs ----------------------------------------------------
    def record_duration(self, operation: str, seconds: float) -> None:
        """Exponential moving average of run times, per operation."""
        key = f"studio:stats:{operation}"
        previous = self.redis.hget(key, "average")
        average = seconds if previous is None else 0.7 * float(previous) + 0.3 * seconds
        self.redis.hset(key, "average", average)

    def average_duration(self, operation: str) -> float | None:
        value = self.redis.hget(f"studio:stats:{operation}", "average")
        return float(value) if value is not None else None

    # workers ----------------------------------------------------------------
    def announce_worker(self, hostname: str, queues: list[str], pid: int, ttl: float) -> None:
        self.redis.set(f"studio:worker:{hostname}", json.dumps({"queues": queues, "pid": pid}), px=int(ttl * 1000))

    def withdraw_worker(self, hostname: str) -> None:
        self.redis.delete(f"studio:worker:{hostname}")

    def workers(self) -> dict[str, dict[str, Any]]:
        keys = list(self.redis.scan_iter("studio:worker:*", count=100))
        values = self.redis.mget(keys) if keys else []
        return {k.decode().split(":", 2)[2]: json.loads(v) for k, v in zip(keys, values) if v}
