"""The job store: one Redis hash per job, images as raw bytes in their own keys.

Keys (all expire after the job TTL):
  studio:job:<id>             hash: operation, params (JSON), state, percent, stage, ...
  studio:job:<id>:blob:<name> raw bytes: "in:image", "out:0", "preview"
  studio:job:<id>:done        list that gets the final state when the job ends (wakes `wait`)
  studio:job:<id>:alive       exists while the running job's worker beats (TTL: STUDIO_LOST_AFTER)
  studio:waiting:<queue>      sorted set of queued job ids in fair order (see _ENQUEUE; queue position)
  studio:vtime:<queue>        the fair tag of the job started last; studio:vlast:<queue>:<who> a
                              visitor's last tag; studio:seq:<queue> the submit counter
  studio:running:<queue>      sorted set of running job ids by start time (ETAs of jobs behind them)
  studio:quota:<who>          sorted set of the queued and running job ids one visitor is held to (fair share)
  studio:stored:<who>         sorted set: a visitor's job ids by the bytes of their images kept in Redis
  studio:history:<owner>      sorted set of a browser's or user's job ids by submit time (History, re-attach)
  studio:batch:<id>           list of the job ids of a batch, in order
  studio:stats:<operation>    hash: moving average of run times of succeeded jobs (for ETAs)
  studio:workers              hash: hostname -> JSON {queues, pid, engines, models, downloads}
  studio:workers:until        sorted set: hostname by the server time its record stops counting
  studio:webhooks             list of ended job ids whose callback_url is still to be called
  studio:metrics:<kind>       hashes of counters and histogram buckets (see METRICS)
  studio:processes            hash: each worker process's job, loaded models and GPU memory
"""
from __future__ import annotations

import json
import time
from typing import Any

from redis import Redis

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "queued", "running", "succeeded", "failed", "cancelled"
TERMINAL = (SUCCEEDED, FAILED, CANCELLED)
LIGHT = "light"  # one-core work, run several at once (tasks.routing)
QUEUES = ("cpu", "gpu", LIGHT)
LOCAL = "local"  # the visitor of jobs whose caller has none (scripts that reach Redis): no shares kept
HISTORY_LIMIT = 200  # jobs a History keeps (the oldest go first)

# Metrics (read by `JobStore.metrics`, shown at /metrics): counters and histograms kept in
# a few hashes, written by the scripts below as jobs move, so a scrape reads a handful of
# keys whatever the number of jobs.
METRICS = "studio:metrics:"  # + ended, wait, run, reaper, webhooks
PROCESSES = "studio:processes"  # hash: "<worker>/<pid>" -> JSON {job, models, gpu_free, gpu_total}
BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)

# Each state change is one atomic script, so a finished job never changes again
# and the worker spends one round trip per change.
_OBSERVE = """
-- The histograms' series of a job: "<operation>|<engine>" ("auto" while none is known).
local function series(job)
  local engine = redis.call('HGET', job, 'engine')
  return redis.call('HGET', job, 'operation') .. '|' .. ((engine and engine ~= '' and engine) or 'auto')
end
local function observe(kind, series, value)
  local key = 'studio:metrics:' .. kind
  for _, le in ipairs({BUCKETS}) do
    if value <= le then redis.call('HINCRBY', key, series .. '|' .. le, 1) end
  end
  redis.call('HINCRBYFLOAT', key, series .. '|sum', value)
  redis.call('HINCRBY', key, series .. '|count', 1)
end
""".replace("BUCKETS", ", ".join(map(str, BUCKETS)))

_BACK_IN_LINE = """
-- A running job queued again, in its place in the fair order (it has waited its turn
-- already), its stage saying why.
local function back_in_line(job, id, why)
  local queue = redis.call('HGET', job, 'queue')
  redis.call('HSET', job, 'state', 'queued', 'percent', 0, 'stage', 'queued', 'rerun', why)
  redis.call('ZREM', 'studio:running:' .. queue, id)
  redis.call('ZADD', 'studio:waiting:' .. queue, redis.call('HGET', job, 'fair') or 0, id)
end
"""

_ENQUEUE = """
-- KEYS: the queue's waiting set, its virtual time, the visitor's last tag, its sequence,
-- the visitor's share.
-- ARGV: job id, ttl. Start-time fair queueing: a job's tag is one past its visitor's
-- previous job, but never behind the queue's virtual time (the tag of the job started
-- last). A visitor who queues 32 jobs takes tags t .. t+31; one who comes later joins
-- the round under way, so waiting jobs start round-robin across visitors. The waiting
-- set is ordered by tag, then by submit order: positions and ETAs follow the fair order.
-- A visitor's tag runs at most as far ahead as it has jobs waiting or running (KEYS[5],
-- its share): jobs it cancelled do not push its next one back.
local now = tonumber(redis.call('GET', KEYS[2]) or '0')
local tag = now
local last = redis.call('GET', KEYS[3])
if last then tag = math.max(now, math.min(tonumber(last) + 1, now + redis.call('ZCARD', KEYS[5]))) end
redis.call('SET', KEYS[3], tag, 'EX', ARGV[2])
local score = tag * 1000000 + redis.call('INCR', KEYS[4]) % 1000000
redis.call('ZADD', KEYS[1], score, ARGV[1])
redis.call('HSET', 'studio:job:' .. ARGV[1], 'fair', score)
return score
"""

_TAKE = _OBSERVE + """
-- KEYS: the queue's waiting set, its running set, its virtual time.
-- ARGV: now, worker, pid, seconds alive, ttl.
-- The first waiting job in fair order becomes running on this worker: its id, record and
-- input images (name, bytes; '' for one that expired). Ids of jobs that ended or expired
-- while they waited are dropped on the way; nil when none is waiting.
while true do
  local head = redis.call('ZPOPMIN', KEYS[1])
  if #head == 0 then return nil end
  local id, job = head[1], 'studio:job:' .. head[1]
  if redis.call('HGET', job, 'state') == 'queued' then
    redis.call('HSET', job, 'state', 'running', 'started_at', ARGV[1], 'worker', ARGV[2], 'pid', ARGV[3],
               'stage', 'starting', 'percent', 0)
    redis.call('HINCRBY', job, 'attempts', 1)
    redis.call('SET', job .. ':alive', ARGV[2], 'EX', ARGV[4])
    redis.call('EXPIRE', job, ARGV[5])
    redis.call('ZADD', KEYS[2], ARGV[1], id)
    local tag = math.floor(tonumber(head[2]) / 1000000)
    if tag > tonumber(redis.call('GET', KEYS[3]) or '0') then redis.call('SET', KEYS[3], tag) end
    observe('wait', series(job),
            math.max(0, tonumber(ARGV[1]) - tonumber(redis.call('HGET', job, 'created_at') or ARGV[1])))
    local reply = {id, redis.call('HGETALL', job)}
    for name in string.gmatch(redis.call('HGET', job, 'inputs') or '', '[^,]+') do
      redis.call('EXPIRE', job .. ':blob:in:' .. name, ARGV[5])
      reply[#reply + 1] = name
      reply[#reply + 1] = redis.call('GET', job .. ':blob:in:' .. name) or ''
    end
    return reply
  end
end
"""

_FINISH = _OBSERVE + """
-- KEYS: job, its "done" list, then output image keys.
-- ARGV: allowed states (comma separated), ttl, job id, number of fields n, n field/value pairs, images.
local state = redis.call('HGET', KEYS[1], 'state')
if not state or not string.find(',' .. ARGV[1] .. ',', ',' .. state .. ',', 1, true) then return 0 end
local fields_end = 4 + 2 * tonumber(ARGV[4])
redis.call('HSET', KEYS[1], unpack(ARGV, 5, fields_end))
local stored = 0  -- bytes this job adds to (or frees from) its visitor's share of memory
for i = 3, #KEYS do
  redis.call('SET', KEYS[i], ARGV[fields_end + i - 2], 'EX', ARGV[2])
  stored = stored + string.len(ARGV[fields_end + i - 2])
end
local queue = redis.call('HGET', KEYS[1], 'queue')
redis.call('ZREM', 'studio:waiting:' .. queue, ARGV[3])
redis.call('ZREM', 'studio:running:' .. queue, ARGV[3])
local quota = redis.call('HGET', KEYS[1], 'quota')
if quota then redis.call('ZREM', 'studio:quota:' .. quota, ARGV[3]) end
-- a job in someone's History keeps its inputs (for "use again") as long as its outputs;
-- the others' inputs are not needed any more
local keep = redis.call('HEXISTS', KEYS[1], 'owner') == 1
for name in string.gmatch(redis.call('HGET', KEYS[1], 'inputs') or '', '[^,]+') do
  if keep then redis.call('EXPIRE', KEYS[1] .. ':blob:in:' .. name, ARGV[2])
  else
    stored = stored - redis.call('STRLEN', KEYS[1] .. ':blob:in:' .. name)
    redis.call('DEL', KEYS[1] .. ':blob:in:' .. name)
  end
end
if quota and quota ~= 'local' then
  redis.call('ZINCRBY', 'studio:stored:' .. quota, stored, ARGV[3])
  redis.call('EXPIRE', 'studio:stored:' .. quota, ARGV[2])
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
local seconds = redis.call('HGET', KEYS[1], 'run_seconds')
if redis.call('HGET', KEYS[1], 'state') == 'succeeded' and seconds then
  -- moving average of run times per operation, for ETAs
  local stats = 'studio:stats:' .. redis.call('HGET', KEYS[1], 'operation')
  local previous = redis.call('HGET', stats, 'average')
  local average = previous and (0.7 * tonumber(previous) + 0.3 * tonumber(seconds)) or tonumber(seconds)
  redis.call('HSET', stats, 'average', tostring(average))
end
local ended = redis.call('HGET', KEYS[1], 'state')
redis.call('HINCRBY', 'studio:metrics:ended', ended, 1)
if seconds then observe('run', series(KEYS[1]), tonumber(seconds)) end
redis.call('RPUSH', KEYS[2], ended)
redis.call('EXPIRE', KEYS[2], 60)
if redis.call('HEXISTS', KEYS[1], 'callback_url') == 1 then
  redis.call('RPUSH', 'studio:webhooks', ARGV[3])  -- tasks.webhooks delivers it
end
return 1
"""


# Worker presence, timed by the Redis server's clock (TIME), so machines whose clocks
# differ agree on who is alive.
WORKERS, WORKERS_UNTIL = "studio:workers", "studio:workers:until"
_ANNOUNCE = """
local t = redis.call('TIME')
redis.call('ZADD', KEYS[2], t[1] + t[2] / 1e6 + tonumber(ARGV[3]), ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
"""
_LIVE_WORKERS = """
local t = redis.call('TIME')
for _, gone in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', t[1] + t[2] / 1e6)) do
  redis.call('ZREM', KEYS[2], gone)
  redis.call('HDEL', KEYS[1], gone)
end
return redis.call('HGETALL', KEYS[1])
"""


_UPDATE = """
-- A write to a job that has expired (or was never there) must not bring back half a record.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"""

_BEAT = """
-- KEYS: job. ARGV: seconds alive, ttl. A running job stays alive and does not expire.
if redis.call('HGET', KEYS[1], 'state') ~= 'running' then return 0 end
redis.call('SET', KEYS[1] .. ':alive', '1', 'EX', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""

_REAP = _BACK_IN_LINE + """
-- KEYS: job. ARGV: job id, most runs. A running job whose worker stopped beating goes
-- back to the queue ("requeued"), or is to be failed once it has had its runs ("fail");
-- nil otherwise.
if redis.call('HGET', KEYS[1], 'state') ~= 'running' or redis.call('EXISTS', KEYS[1] .. ':alive') == 1 then
  return nil
end
local runs = tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0')
if runs >= tonumber(ARGV[2]) then return 'fail' end
back_in_line(KEYS[1], ARGV[1], 'its worker stopped; running it again (run ' .. (runs + 1) .. ' of ' .. ARGV[2] .. ')')
redis.call('HINCRBY', 'studio:metrics:reaper', 'requeued', 1)
return 'requeued'
"""

_RESERVE = """
-- KEYS: a visitor's quota set. ARGV: most, now, ttl, then the new job ids.
-- Check and take the visitor's share in one step (concurrent submits cannot both pass
-- the check). Ids whose job record is gone leave the set, except those reserved in the
-- last minute, whose records are still being written.
local live = 0
local entries = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for i = 1, #entries, 2 do
  if redis.call('EXISTS', 'studio:job:' .. entries[i]) == 1 or tonumber(entries[i + 1]) > tonumber(ARGV[2]) - 60 then
    live = live + 1
  else
    redis.call('ZREM', KEYS[1], entries[i])
  end
end
if live + #ARGV - 3 > tonumber(ARGV[1]) then return live end
for i = 4, #ARGV do redis.call('ZADD', KEYS[1], ARGV[2], ARGV[i]) end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return -1
"""

_REQUEUE = _BACK_IN_LINE + """
-- KEYS: job. ARGV: job id, worker, stage. A job running on this worker goes back to its
-- place in the queue, its run not counted (the worker is shutting down); 0 if it had ended.
if redis.call('HGET', KEYS[1], 'state') ~= 'running' or redis.call('HGET', KEYS[1], 'worker') ~= ARGV[2] then
  return 0
end
back_in_line(KEYS[1], ARGV[1], ARGV[3])
redis.call('HINCRBY', KEYS[1], 'attempts', -1)
redis.call('DEL', KEYS[1] .. ':alive')
return 1
"""


class JobStore:
    def __init__(self, redis: Redis, ttl: int):
        self.redis = redis
        self.ttl = ttl
        self._enqueue = redis.register_script(_ENQUEUE)
        self._take = redis.register_script(_TAKE)
        self._finish = redis.register_script(_FINISH)
        self._announce = redis.register_script(_ANNOUNCE)
        self._update = redis.register_script(_UPDATE)
        self._beat = redis.register_script(_BEAT)
        self._reap = redis.register_script(_REAP)
        self._live_workers = redis.register_script(_LIVE_WORKERS)
        self._reserve = redis.register_script(_RESERVE)
        self._requeue = redis.register_script(_REQUEUE)

    # keys -----------------------------------------------------------------
    @staticmethod
    def job_key(job_id: str) -> str:
        return f"studio:job:{job_id}"

    @staticmethod
    def blob_key(job_id: str, name: str) -> str:
        return f"studio:job:{job_id}:blob:{name}"

    @staticmethod
    def done_key(job_id: str) -> str:
        """A list that gets one item when the job ends, for `BLPOP` waiters."""
        return f"studio:job:{job_id}:done"

    @staticmethod
    def waiting_key(queue: str) -> str:
        return f"studio:waiting:{queue}"

    @staticmethod
    def running_key(queue: str) -> str:
        return f"studio:running:{queue}"

    @staticmethod
    def quota_key(who: str) -> str:
        return f"studio:quota:{who}"

    @staticmethod
    def vtime_key(queue: str) -> str:
        return f"studio:vtime:{queue}"

    @staticmethod
    def stored_key(who: str) -> str:
        return f"studio:stored:{who}"

    @staticmethod
    def history_key(owner: str) -> str:
        return f"studio:history:{owner}"

    @staticmethod
    def batch_key(batch_id: str) -> str:
        return f"studio:batch:{batch_id}"

    # jobs -----------------------------------------------------------------
    def create(self, job_id: str, fields: dict[str, Any], inputs: dict[str, bytes], queue: str, quota: str,
               owner: str | None = None) -> None:
        """A queued job with its input images (`inputs` by name), of the visitor `quota`
        (counted by `reserve` first), and listed in `owner`'s History when given (its inputs are then
        kept as long as its outputs; else they are dropped when it ends)."""
        now = time.time()
        pipe = self.redis.pipeline(transaction=False)  # one round trip; the job id is not yet known to anyone
        for name, data in inputs.items():
            pipe.set(self.blob_key(job_id, f"in:{name}"), data, ex=self.ttl)
        record = {**fields, "state": QUEUED, "queue": queue, "created_at": now, "percent": 0, "stage": "queued",
                  "attempts": 0, "quota": quota, "inputs": ",".join(inputs)}
        pipe.hset(self.job_key(job_id), mapping={**record, "owner": owner} if owner else record)
        pipe.expire(self.job_key(job_id), self.ttl)
        self._enqueue(keys=[self.waiting_key(queue), self.vtime_key(queue), f"studio:vlast:{queue}:{quota}",
                            f"studio:seq:{queue}", self.quota_key(quota)], args=[job_id, self.ttl], client=pipe)
        if quota != LOCAL:
            pipe.zadd(self.stored_key(quota), {job_id: sum(map(len, inputs.values()))})
            pipe.expire(self.stored_key(quota), self.ttl)
        if owner:
            pipe.zadd(self.history_key(owner), {job_id: now})
            pipe.zremrangebyrank(self.history_key(owner), 0, -HISTORY_LIMIT - 1)
            pipe.expire(self.history_key(owner), self.ttl)
        pipe.execute()

    def reserve(self, quota: str, job_ids: list[str], most: int) -> int | None:
        """Count `job_ids` against the visitor `quota` if it then has at most `most` queued
        or running jobs: None when they were counted, else how many it has now."""
        active = self._reserve(keys=[self.quota_key(quota)], args=[most, time.time(), self.ttl, *job_ids])
        return None if active == -1 else int(active)

    def stored_bytes(self, quota: str) -> int:
        """Bytes of images the visitor's jobs keep in Redis (inputs while they wait or are
        in a History, results until they expire); jobs gone are dropped on the way."""
        key = self.stored_key(quota)
        entries = self.redis.zrange(key, 0, -1, withscores=True)
        live = set(self._live_ids(key, [job_id for job_id, _ in entries]))
        return int(sum(size for job_id, size in entries if job_id.decode() in live))

    def active_work(self, quota: str) -> float:
        """The compute (`work` field) of the visitor's queued and running jobs."""
        ids = [job_id.decode() for job_id in self.redis.zrange(self.quota_key(quota), 0, -1)]
        pipe = self.redis.pipeline(transaction=False)
        for job_id in ids:
            pipe.hget(self.job_key(job_id), "work")
        return sum(float(work) for work in pipe.execute() if work)

    def publish_process(self, name: str, state: dict[str, Any]) -> None:
        """What one worker process ("<worker>/<pid>") holds and does, for /metrics."""
        self.redis.hset(PROCESSES, name, json.dumps(state))

    def processes(self) -> dict[str, dict[str, Any]]:
        """Every published worker process's state, by "<worker>/<pid>"."""
        return {k.decode(): json.loads(v) for k, v in self.redis.hgetall(PROCESSES).items()}

    def visitors_waiting(self, queue: str, most: int = 1000) -> int:
        """How many visitors have jobs waiting on `queue` (of its first `most` jobs: the
        waiting set stays within STUDIO_MAX_WAITING, but for scripts)."""
        pipe = self.redis.pipeline(transaction=False)
        for job_id in self.redis.zrange(self.waiting_key(queue), 0, most - 1):
            pipe.hget(self.job_key(job_id.decode()), "quota")
        return len({quota for quota in pipe.execute() if quota})

    def forget_processes(self, worker: str) -> None:
        """Drop the published state of a worker's processes (it is stopping)."""
        names = [name for name in self.processes() if name.rsplit("/", 1)[0] == worker]
        if names:
            self.redis.hdel(PROCESSES, *names)

    def count(self, kind: str, what: str) -> None:
        """One more of `what` in the metrics hash `kind` (reaper, webhooks)."""
        self.redis.hincrby(METRICS + kind, what, 1)

    def metrics(self) -> dict[str, dict[str, float]]:
        """Every metrics hash (ended, wait, run, reaper, webhooks) as {field: value}."""
        kinds = ("ended", "wait", "run", "reaper", "webhooks")
        pipe = self.redis.pipeline(transaction=False)
        for kind in kinds:
            pipe.hgetall(METRICS + kind)
        return {kind: {k.decode(): float(v) for k, v in raw.items()} for kind, raw in zip(kinds, pipe.execute())}

    def drop_images(self, job_id: str) -> None:
        """Delete a job's input and preview images (allowed when Redis is out of memory)."""
        names = _input_blobs(self.get(job_id) or {}) + ["preview"]
        self.redis.delete(*(self.blob_key(job_id, name) for name in names))

    def release(self, quota: str, job_ids: list[str]) -> None:
        """Give back a reservation whose jobs were not queued after all."""
        self.redis.zrem(self.quota_key(quota), *job_ids)

    def history(self, owner: str, limit: int) -> list[tuple[dict[str, str], int]]:
        """The owner's newest `limit` jobs, newest first: (record, seconds until it expires)."""
        key = self.history_key(owner)
        ids = self._live_ids(key, self.redis.zrevrange(key, 0, limit - 1))
        pipe = self.redis.pipeline(transaction=False)
        for job_id in ids:
            pipe.hgetall(self.job_key(job_id))
            pipe.ttl(self.job_key(job_id))
        replies = pipe.execute()
        found = []
        for job_id, raw, ttl in zip(ids, replies[::2], replies[1::2]):
            if raw:
                found.append(({"id": job_id, **{k.decode(): v.decode() for k, v in raw.items()}}, max(ttl, 0)))
        return found

    def _live_ids(self, key: str, ids: list[bytes]) -> list[str]:
        """`ids` whose job record still exists; the others are dropped from the set at `key`."""
        if not ids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for job_id in ids:
            pipe.exists(self.job_key(job_id.decode()))
        exists = pipe.execute()
        gone = [job_id for job_id, there in zip(ids, exists) if not there]
        if gone:
            self.redis.zrem(key, *gone)
        return [job_id.decode() for job_id, there in zip(ids, exists) if there]

    def delete(self, job_id: str, owner: str) -> None:
        """Remove an ended job, its images and its place in the owner's History."""
        record = self.get(job_id) or {}
        names = _input_blobs(record) + [f"out:{index}" for index in range(int(record.get("outputs", 0)))]
        names += ["preview"]
        self.redis.delete(self.job_key(job_id), self.done_key(job_id), *(self.blob_key(job_id, n) for n in names))
        self.redis.zrem(self.history_key(owner), job_id)
        if record.get("quota"):
            self.redis.zrem(self.stored_key(record["quota"]), job_id)

    def create_batch(self, batch_id: str, job_ids: list[str]) -> None:
        self.redis.rpush(self.batch_key(batch_id), *job_ids)
        self.redis.expire(self.batch_key(batch_id), self.ttl)

    def batch(self, batch_id: str) -> list[str]:
        return [job_id.decode() for job_id in self.redis.lrange(self.batch_key(batch_id), 0, -1)]

    def waiting_count(self, queues: tuple[str, ...]) -> int:
        pipe = self.redis.pipeline(transaction=False)
        for queue in queues:
            pipe.zcard(self.waiting_key(queue))
        return sum(pipe.execute())

    def get(self, job_id: str) -> dict[str, str] | None:
        raw = self.redis.hgetall(self.job_key(job_id))
        return {k.decode(): v.decode() for k, v in raw.items()} if raw else None

    def update(self, job_id: str, **fields: Any) -> bool:
        """Set fields of an existing job; False (and nothing written) if it has expired."""
        return bool(self._update(keys=[self.job_key(job_id)], args=[x for pair in fields.items() for x in pair]))

    def beat(self, job_id: str, alive_seconds: float) -> bool:
        """The running job's worker is alive for `alive_seconds` more; its TTL starts again."""
        return bool(self._beat(keys=[self.job_key(job_id)], args=[max(1, round(alive_seconds)), self.ttl]))

    def running_ids(self, queue: str) -> list[str]:
        return [job_id.decode() for job_id in self.redis.zrange(self.running_key(queue), 0, -1)]

    def reap(self, job_id: str, max_runs: int) -> str | None:
        """"requeued" or "fail" when the job's worker stopped beating, else None."""
        found = self._reap(keys=[self.job_key(job_id)], args=[job_id, max_runs])
        return found.decode() if found else None

    def jobs_on(self, worker: str) -> list[tuple[str, dict[str, str]]]:
        """(id, record) of the jobs running on `worker`."""
        found = []
        for queue in QUEUES:
            for job_id in self.running_ids(queue):
                record = self.get(job_id)
                if record and record.get("state") == RUNNING and record.get("worker") == worker:
                    found.append((job_id, record))
        return found

    def requeue(self, job_id: str, worker: str, reason: str) -> bool:
        """Put a job running on `worker` back in its place in the queue, saying `reason`."""
        return bool(self._requeue(keys=[self.job_key(job_id)], args=[job_id, worker, reason]))

    def finish(self, job_id: str, state: str, allowed: tuple[str, ...] = (QUEUED, RUNNING),
               outputs: list[bytes] = (), **fields: Any) -> bool:
        """Store the output images, move the job to a terminal state and wake a
        `done_key` waiter, atomically. False if the job was not in one of
        `allowed`: then nothing changes. The record is kept a full TTL from here."""
        pairs: list[Any] = ["state", state, "finished_at", time.time(), "outputs", len(outputs)]
        for key, value in fields.items():
            pairs += [key, value]
        keys = [self.job_key(job_id), self.done_key(job_id)]
        keys += [self.blob_key(job_id, f"out:{index}") for index in range(len(outputs))]
        args = [",".join(allowed), self.ttl, job_id, len(pairs) // 2, *pairs, *outputs]
        return bool(self._finish(keys=keys, args=args))

    def take(self, queue: str, worker: str, pid: int, alive_seconds: float
             ) -> tuple[str, dict[str, str], dict[str, bytes | None]] | None:
        """The next job of `queue` in fair order, marked running on this worker (alive for
        `alive_seconds` until its first beat): its id, record and input images (None for
        one that expired). None when no job is waiting. Runs are counted in attempts."""
        keys = [self.waiting_key(queue), self.running_key(queue), self.vtime_key(queue)]
        reply = self._take(keys=keys, args=[time.time(), worker, pid, max(1, round(alive_seconds)), self.ttl])
        if not reply:
            return None
        job_id, raw, *blobs = reply
        record = {raw[i].decode(): raw[i + 1].decode() for i in range(0, len(raw), 2)}
        inputs = {blobs[i].decode(): blobs[i + 1] or None for i in range(0, len(blobs), 2)}
        return job_id.decode(), record, inputs

    def jobs_ahead(self, job_id: str, queue: str, limit: int = 200) -> tuple[list[dict[str, str]], int] | None:
        """The records of the jobs running on `queue` and of (at most `limit` of) those
        queued before this one, and how many are queued before it; None if it is not
        waiting. Ids whose record has expired are dropped from both sets on the way."""
        rank = self.redis.zrank(self.waiting_key(queue), job_id)
        if rank is None:
            return None
        before = min(rank, limit)
        waiting = self.redis.zrange(self.waiting_key(queue), 0, before - 1) if before else []
        running = [(self.running_key(queue), i) for i in self.redis.zrange(self.running_key(queue), 0, limit - 1)]
        waiting = [(self.waiting_key(queue), i) for i in waiting]
        fields = ("state", "operation", "percent", "started_at", "progress_at")
        pipe = self.redis.pipeline(transaction=False)
        for _, ahead in running + waiting:
            pipe.hmget(self.job_key(ahead.decode()), *fields)
        records, gone = [], []
        for (key, ahead), values in zip(running + waiting, pipe.execute()):
            if values[0] is None:
                gone.append((key, ahead))
                continue
            records.append({name: value.decode() for name, value in zip(fields, values) if value is not None})
        for key, ahead in gone:
            self.redis.zrem(key, ahead)
        return records, rank - sum(key == self.waiting_key(queue) for key, _ in gone)

    # images ---------------------------------------------------------------
    def put_blob(self, job_id: str, name: str, data: bytes) -> None:
        self.redis.set(self.blob_key(job_id, name), data, ex=self.ttl)

    def get_blob(self, job_id: str, name: str) -> bytes | None:
        return self.redis.get(self.blob_key(job_id, name))

    # statistics for ETAs ----------------------------------------------------
    def average_duration(self, operation: str) -> float | None:
        value = self.redis.hget(f"studio:stats:{operation}", "average")
        return float(value) if value is not None else None

    # workers ----------------------------------------------------------------
    def announce_worker(self, hostname: str, record: dict[str, Any], ttl: float) -> None:
        """`record` (queues, pid, what it has installed) stands for `ttl` seconds of the server's clock."""
        self._announce(keys=[WORKERS, WORKERS_UNTIL], args=[hostname, json.dumps(record), ttl])

    def withdraw_worker(self, hostname: str) -> None:
        pipe = self.redis.pipeline()
        pipe.hdel(WORKERS, hostname)
        pipe.zrem(WORKERS_UNTIL, hostname)
        pipe.execute()

    def workers(self) -> dict[str, dict[str, Any]]:
        """The live workers' records (two small keys, whatever else Redis holds)."""
        raw = self._live_workers(keys=[WORKERS, WORKERS_UNTIL])
        return {raw[i].decode(): json.loads(raw[i + 1]) for i in range(0, len(raw), 2)}


def _input_blobs(record: dict[str, str]) -> list[str]:
    """The blob names of a job's input images ("in:image", ...), from its record."""
    return [f"in:{name}" for name in record.get("inputs", "").split(",") if name]
