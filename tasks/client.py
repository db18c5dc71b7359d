"""The client API of the job queue: submit (one job or a batch), status, result, preview,
cancel, and a browser's or user's History.

The UI and the REST API use only this module. Every check a user can fail
(unknown operation, bad parameters, unreadable or oversized image) happens in
`submit`, before anything is queued, and raises `InvalidInput` with a message
meant for the user.
"""
from __future__ import annotations

import functools
import json
import re
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from kombu.exceptions import OperationalError as BrokerUnavailable
from pydantic import ValidationError
from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError
from redis.exceptions import TimeoutError as RedisTimeoutError

from pipelines.catalogue import OPERATIONS
from pipelines.errors import InvalidInput, StudioError
from pipelines.imaging import check_image, decode_image
from pipelines.registry import Operation
from tasks.callback_url import check_callback_url
from tasks.celery_app import configure, send_run_next
from tasks.routing import route
from tasks.settings import Settings
from tasks.store import CANCELLED, LOCAL, QUEUED, QUEUES, RUNNING, SUCCEEDED, TERMINAL, JobStore

JOB_ID = re.compile(r"^[0-9a-f]{32}$")


class JobNotFound(StudioError):
    pass


class QueueUnavailable(StudioError):
    pass


class JobNotFinished(StudioError):
    pass


class Busy(StudioError):
    """Not queued now: the owner has too many jobs, or the studio too many waiting."""

    def __init__(self, message: str, retry_after: float):
        super().__init__(message)
        self.retry_after = retry_after


def _needs_queue(method):
    """Turn "Redis is down" into a message for the user instead of a traceback."""

    @functools.wraps(method)
    def wrapper(self: StudioClient, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except (RedisConnectionError, RedisTimeoutError, BrokerUnavailable) as exc:
            raise self._unreachable(exc) from None
        except OutOfMemoryError:  # the server's maxmemory, with no eviction of live jobs
            raise Busy("The job queue is full (its memory limit is reached); try again in a minute.", 60) from None

    return wrapper


@dataclass(frozen=True)
class JobStatus:
    id: str
    operation: str
    state: str  # queued, running, succeeded, failed, cancelled
    percent: float
    stage: str
    queue: str
    position: int | None = None  # 1 = next to start; only while queued
    eta_seconds: float | None = None
    engine: str | None = None
    detail: str | None = None  # e.g. the style or the seed that ran
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    outputs: int = 0
    preview_version: str | None = None
    run_seconds: float | None = None
    submitted_at: float = 0.0  # the submitting machine's clock (the UI's, for UI jobs)
    name: str | None = None  # what its downloads are called
    batch: str | None = None  # the batch it belongs to


    @property
    def done(self) -> bool:
        return self.state in TERMINAL


@dataclass(frozen=True)
class HistoryEntry:
    """One job in a History: where it stands, what it was asked, and how long it is kept."""

    status: JobStatus
    params: dict[str, Any]
    inputs: tuple[str, ...]  # names of its input images (kept while it is)
    expires_in: int  # seconds until its record and images are removed


@dataclass(frozen=True)
class BatchStatus:
    id: str
    jobs: list[JobStatus]

    @property
    def done(self) -> bool:
        return all(job.done for job in self.jobs)

    @property
    def percent(self) -> float:
        return sum(100 if job.done else job.percent for job in self.jobs) / len(self.jobs)

    def count(self, state: str) -> int:
        return sum(job.state == state for job in self.jobs)


@dataclass(frozen=True)
class Availability:
    """What the running workers have, from their presence records."""

    queues: frozenset[str]  # queues some worker consumes
    engines: frozenset[str]  # "<operation>/<engine>" runnable without a download on some worker
    models: frozenset[str]  # diffusion models (names and ids) some gpu worker has
    downloads: bool  # some worker may download what it lacks


@dataclass(frozen=True)
class Metrics:
    """What /metrics shows (see `ui.metrics`)."""

    waiting: dict[str, int]  # queue -> jobs waiting
    running: dict[str, int]
    workers: dict[str, int]  # queue -> live workers consuming it
    engines: Counter[str]  # "<operation>/<engine>" -> live workers that have it on disk
    processes: dict[str, dict[str, Any]]  # "<worker>/<pid>" -> its job, loaded models, GPU memory
    visitors: dict[str, int]  # queue -> visitors with jobs waiting there
    redis_roundtrip: float  # seconds
    redis_memory: int
    redis_maxmemory: int  # 0: no cap
    counters: dict[str, dict[str, float]]  # the store's metrics hashes (JobStore.metrics)


def _remaining(typical: float | None, percent: float, job: dict[str, str], now: float) -> float | None:
    """Seconds a running job has left: the larger of what the operation's typical run
    time leaves and what the job's own pace says (measured up to its last progress
    report, so the estimate does not climb between reports). Both only go down while
    the job runs at a steady pace."""
    started = float(job.get("started_at") or now)
    elapsed = now - started
    by_typical = None if typical is None else max(typical - elapsed, 0.0)
    if percent < 1:  # no progress reported yet: its pace is unknown
        return by_typical
    progressed = float(job.get("progress_at") or now) - started
    by_pace = max(progressed * 100 / percent - elapsed, 0.0)
    return by_pace if by_typical is None else max(by_typical, by_pace)


class StudioClient:
    def __init__(self, settings: Settings | None = None):
        self.settings = settings or Settings.from_env()
        configure(self.settings)  # its jobs' messages go to this Redis
        self.store = JobStore(Redis.from_url(self.settings.redis_url), self.settings.job_ttl)
        self._async_redis: AsyncRedis | None = None

    def _unreachable(self, error: Exception) -> QueueUnavailable:
        return QueueUnavailable(f"The job queue at {self.settings.redis_url} is not reachable ({error}).")

    # submit -----------------------------------------------------------------
    @_needs_queue
    def submit(self, operation: str, images: dict[str, bytes], params: dict[str, Any] | None = None,
               callback_url: str | None = None, quota: str | None = None, owner: str | None = None,
               name: str | None = None) -> str:
        """Validate and queue a job; returns its id (unguessable, 128 bits). With
        `callback_url`, the final status is POSTed there when the job ends. `quota` (a
        visitor: address, user or token, whoever is not trusted with the whole queue) is
        held to a share of it; callers with none are scripts that reach Redis anyway.
        `owner` (a browser or a user) lists the job in its History; `name` is what its
        downloads are called."""
        return self._queue(operation, [images], params, callback_url, quota, owner, [name], None)[0]

    @_needs_queue
    def submit_batch(self, operation: str, items: list[dict[str, bytes]], params: dict[str, Any] | list | None = None,
                     callback_url: str | None = None, quota: str | None = None, owner: str | None = None,
                     names: list[str | None] | None = None) -> tuple[str, list[str]]:
        """Validate every item (the images of one job each; `params` shared, or one dict
        per item), then queue them all together: (batch id, job ids in order). Nothing is
        queued if any item is wrong; the message names it."""
        batch_id = secrets.token_hex(16)
        return batch_id, self._queue(operation, items, params, callback_url, quota, owner, names, batch_id)

    def _queue(self, operation: str, items: list[dict[str, bytes]], params: dict[str, Any] | list | None,
               callback_url: str | None, quota: str | None, owner: str | None, names: list[str | None] | None,
               batch_id: str | None) -> list[str]:
        op = self.operation(operation)
        if not items:
            raise InvalidInput("The batch is empty: give at least one image (or prompt).")
        per_item = params if isinstance(params, list) else [params or {}] * len(items)
        if len(per_item) != len(items):
            raise InvalidInput(f"The batch has {len(items)} items but {len(per_item)} parameter sets.")
        job_ids = [secrets.token_hex(16) for _ in items]
        if quota is not None:
            self._admit(quota, job_ids, sum(len(data or b"") for images in items for data in images.values()))
        try:
            prepared, workers = [], list(self.store.workers().values())
            for index, (images, item_params) in enumerate(zip(items, per_item)):
                try:
                    prepared.append(self._prepare(op, images, item_params, callback_url, workers))
                except InvalidInput as exc:
                    raise InvalidInput(f"Item {index + 1} of the batch: {exc}" if batch_id else str(exc)) from None
            if quota is not None and op.work:
                self._check_work(op, quota, sum(float(fields["work"]) for fields, _, _ in prepared))
        except BaseException:
            if quota is not None:
                self.store.release(quota, job_ids)
            raise
        for job_id, (fields, given, queue), name in zip(job_ids, prepared, names or [None] * len(items)):
            if name:
                fields["name"] = name
            if batch_id:
                fields["batch"] = batch_id
            self.store.create(job_id, fields, given, queue, quota or LOCAL, owner)
            send_run_next(queue)  # the job store holds the outcome, so Celery's own result is not waited on
        if batch_id:
            self.store.create_batch(batch_id, job_ids)
        return job_ids

    def _prepare(self, op: Operation, images: dict[str, bytes], params: dict[str, Any], callback_url: str | None,
                 workers: list[dict[str, Any]]) -> tuple[dict[str, str], dict[str, bytes], str]:
        """The checked job: (record fields, input images, queue); the record names the
        engine expected to run (see `tasks.routing`)."""
        parsed = self._validate_params(op, params)
        named = len(op.all_inputs) > 1  # say which image is wrong
        given = [name for name in op.all_inputs if name in op.inputs or images.get(name)]
        # each image checked with a cheap read; decoded only where the operation's check needs its pixels
        sizes: dict[str, tuple[int, int]] = {}
        decoded: dict[str, Any] = {}
        decode = functools.partial(decode_image, standard_mode=False)  # in the mode it is stored in
        for name in given:
            if name in op.masks:
                decoded[name] = self._validate_image(name, images.get(name), named, decode)
                sizes[name] = decoded[name].size
            else:
                sizes[name] = self._validate_image(name, images.get(name), named, check_image)
        if op.check_inputs:
            op.check_inputs(sizes, decoded, parsed)
        queue, engine = route(op, parsed.engine, workers)
        fields = {"operation": op.name, "params": parsed.model_dump_json(), "engine": engine or ""}
        if op.work:
            fields["work"] = op.work(parsed)
        if callback_url:
            fields["callback_url"] = check_callback_url(callback_url)
        return fields, {name: images[name] for name in given}, queue

    def _admit(self, quota: str, job_ids: list[str], size: int) -> None:
        """Count `job_ids` (with `size` bytes of images) against the visitor `quota`, or
        Busy if the studio or the visitor has too many waiting or too much kept in memory
        (the visitor's share of jobs is checked and taken at once)."""
        count = len(job_ids)
        waiting = self.store.waiting_count(QUEUES)
        if waiting + count > self.settings.max_waiting:
            known = [t for t in map(self.store.average_duration, OPERATIONS) if t is not None] or [1.0]
            workers = max(1, len(self.store.workers()))
            retry = max(10.0, waiting * sum(known) / len(known) / workers)  # until about this many have run
            raise Busy(f"The studio is busy ({waiting} jobs are waiting); try again in about {retry:.0f} s.", retry)
        memory = self.store.redis.info("memory")
        if memory.get("maxmemory") and memory["used_memory"] + size > 0.9 * memory["maxmemory"]:
            raise Busy("The studio's memory is nearly full; try again in a few minutes.", 60)
        stored, most_stored = self.store.stored_bytes(quota), self.settings.max_stored_bytes
        if stored + size > most_stored:
            raise Busy(f"Your jobs' images take {stored / 2**20:.0f} MB of the studio's memory and these would add "
                       f"{size / 2**20:.0f} MB; one visitor may keep {most_stored / 2**20:.0f} MB. Delete some "
                       f"from the History, or wait: results expire {self.settings.job_ttl // 60} min after their "
                       "job ends.", 60)
        most = self.settings.max_jobs_per_owner
        active = self.store.reserve(quota, job_ids, most)
        if active is not None:
            more = f"{count} more" if count > 1 else "another"
            raise Busy(f"You have {active} jobs waiting or running and may have at most {most} at a time, so "
                       f"{more} cannot be queued now; wait for some to finish, or cancel some.", 10.0)

    def _check_work(self, op: Operation, quota: str, work: float) -> None:
        """Busy if the visitor's queued and running jobs with these would take more compute
        than one visitor may have at once (the new jobs' records do not exist yet)."""
        active = self.store.active_work(quota)
        most = self.settings.max_visitor_work
        if active + work > most:
            raise Busy(f"Your jobs waiting or running take {active:.0f} {op.work_unit} and these would add "
                       f"{work:.0f}; one visitor may have {most:.0f} at once. Wait for some to finish, or ask for "
                       "fewer steps, images or pixels.", 10.0)

    @staticmethod
    def operation(name: str) -> Operation:
        if name not in OPERATIONS:
            raise InvalidInput(f"Unknown operation {name!r}; choose one of: {', '.join(OPERATIONS)}.")
        return OPERATIONS[name]

    @staticmethod
    def _validate_params(op: Operation, params: dict[str, Any]) -> Any:
        """A parameter given as None (a control the person never opened, a JSON null, an
        input an API caller left out) means "not given": the operation's default applies."""
        try:
            parsed = op.params.model_validate({name: value for name, value in params.items() if value is not None})
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'parameters'}: {e['msg']}" for e in exc.errors())
            raise InvalidInput(f"Invalid parameters for {op.title}: {problems}.") from None
        if parsed.engine != "auto":
            op.engine(parsed.engine)  # unknown engine -> InvalidInput
        return parsed

    def check_upload(self, data: bytes) -> None:
        """The checks `submit` makes on an image, for telling a person at upload time."""
        self._validate_image("image", data, False, check_image)

    def _validate_image(self, name: str, data: bytes | None, named: bool, read: Callable[[bytes, int], Any]) -> Any:
        """`read(data, max_pixels)` (a full decode or the cheaper check), with the user's message on failure."""
        label = name.replace("_", " ")
        if data is None:
            raise InvalidInput(f"No {label} was given.")
        limit = self.settings.max_upload_bytes
        if len(data) > limit:
            raise InvalidInput(f"The {label} file is {len(data) / 2**20:.1f} MB; the limit is {limit / 2**20:.0f} MB.")
        try:
            return read(data, self.settings.max_pixels)
        except InvalidInput as exc:
            raise InvalidInput(f"{label.capitalize()}: {exc}" if named else str(exc)) from None

    # follow -------------------------------------------------------------------
    @_needs_queue
    def status(self, job_id: str) -> JobStatus:
        return self._status(job_id, self._job(job_id))

    def _status(self, job_id: str, job: dict[str, str]) -> JobStatus:
        state = job["state"]
        status = JobStatus(
            id=job_id,
            operation=job["operation"],
            state=state,
            percent=float(job.get("percent", 0)),
            stage=job.get("stage", ""),
            queue=job["queue"],
            engine=job.get("engine") or None,
            detail=job.get("detail") or None,
            error=job.get("error") or None,
            notes=json.loads(job.get("notes", "[]")),
            outputs=int(job.get("outputs", 0)),
            preview_version=job.get("preview_version"),
            run_seconds=float(job["run_seconds"]) if "run_seconds" in job else None,
            submitted_at=float(job.get("created_at", 0)),
            name=job.get("name") or None,
            batch=job.get("batch") or None,
        )
        if state == QUEUED:
            status = self._with_queue_position(status)
            return replace(status, stage=f"{job['rerun']} · {status.stage}") if job.get("rerun") else status
        if state == RUNNING and job.get("cancel_requested"):
            return replace(status, stage="cancelling")
        if state == RUNNING:
            return self._with_running_eta(status, job)
        return status

    @_needs_queue
    def batch_status(self, batch_id: str) -> BatchStatus:
        job_ids = self.store.batch(batch_id) if JOB_ID.match(batch_id or "") else []
        if not job_ids:
            raise JobNotFound(f"No batch {batch_id!r}: the id is wrong or the batch expired.")
        return BatchStatus(batch_id, [self.status(job_id) for job_id in job_ids])

    @_needs_queue
    def history(self, owner: str, limit: int = 50) -> list[HistoryEntry]:
        """The owner's jobs, newest first (live ones with their queue place and ETA)."""
        entries = []
        for job, expires_in in self.store.history(owner, limit):
            if "state" not in job or "operation" not in job:
                continue  # half a record: expired
            status = self.status(job["id"]) if job["state"] not in TERMINAL else self._status(job["id"], job)
            entries.append(HistoryEntry(status, json.loads(job.get("params", "{}")),
                                        tuple(filter(None, job.get("inputs", "").split(","))), expires_in))
        return entries

    @_needs_queue
    def latest_job(self, owner: str, operation: str, batch: bool = False) -> str | None:
        """The id of the owner's newest job of `operation` outside a batch (the one its tab
        shows); with `batch`, the id of its newest batch (the one the tab's batch panel shows)."""
        return next((job["batch"] if batch else job["id"] for job, _ in self.store.history(owner, 50)
                     if job.get("operation") == operation and bool(job.get("batch")) == batch), None)

    @_needs_queue
    def inputs(self, job_id: str, owner: str) -> dict[str, bytes]:
        """The owner's job's input images, by name (for "use again")."""
        job = self._owned(job_id, owner)
        found = {name: self.store.get_blob(job_id, f"in:{name}") for name in job.get("inputs", "").split(",") if name}
        if None in found.values():
            raise JobNotFound(f"The photos of job {job_id} expired.")
        return found  # type: ignore[return-value]

    @_needs_queue
    def delete(self, job_id: str, owner: str) -> None:
        """Remove the owner's ended job from its History, with its images."""
        if self._owned(job_id, owner)["state"] not in TERMINAL:
            raise JobNotFinished("Cancel the job first: it is still queued or running.")
        self.store.delete(job_id, owner)

    def _owned(self, job_id: str, owner: str | None) -> dict[str, str]:
        """The job's record, if it belongs to `owner` (any job when `owner` is None); a
        job of someone else's reads as not found, like a wrong id."""
        job = self._job(job_id)
        if owner is not None and job.get("owner") != owner:
            raise JobNotFound(f"No job {job_id!r}: the id is wrong or the job expired.")
        return job

    @_needs_queue
    def availability(self) -> Availability:
        workers = list(self.store.workers().values())
        return Availability(queues=frozenset(q for w in workers for q in w["queues"]),
                            engines=frozenset(e for w in workers for e in w.get("engines", [])),
                            models=frozenset(m for w in workers for m in w.get("models", [])),
                            downloads=any(w.get("downloads") for w in workers))

    @_needs_queue
    def metrics(self) -> Metrics:
        """The studio's state for /metrics: a few keys, and the waiting jobs' visitors."""
        started = time.perf_counter()
        self.store.redis.ping()
        roundtrip = time.perf_counter() - started
        memory = self.store.redis.info("memory")
        pipe = self.store.redis.pipeline(transaction=False)
        for queue in QUEUES:
            pipe.zcard(self.store.waiting_key(queue))
            pipe.zcard(self.store.running_key(queue))
        sizes = pipe.execute()
        live = self.store.workers()
        workers = list(live.values())
        processes = {name: state for name, state in self.store.processes().items()
                     if name.rsplit("/", 1)[0] in live}
        visitors = {queue: self.store.visitors_waiting(queue) for queue in QUEUES}
        return Metrics(waiting=dict(zip(QUEUES, sizes[::2])), running=dict(zip(QUEUES, sizes[1::2])),
                       processes=processes, visitors=visitors,
                       workers={queue: sum(queue in w["queues"] for w in workers) for queue in QUEUES},
                       engines=Counter(engine for w in workers for engine in w.get("engines", [])),
                       redis_roundtrip=roundtrip, redis_memory=memory["used_memory"],
                       redis_maxmemory=memory.get("maxmemory", 0), counters=self.store.metrics())

    def _with_queue_position(self, status: JobStatus) -> JobStatus:
        """Position, the jobs ahead, and an ETA made of the time left of the running jobs,
        the typical run time of the queued ones ahead, and this job's own."""
        records, waiting_before = self.store.jobs_ahead(status.id, status.queue) or ([], 0)
        position = waiting_before + 1
        workers = sum(status.queue in w["queues"] for w in self.store.workers().values())
        if not workers:
            stage = f"waiting for a worker on queue '{status.queue}' (none is running)"
            return replace(status, position=position, stage=stage)
        averages = functools.cache(self.store.average_duration)  # one read per operation
        now = time.time()
        ahead = [_remaining(averages(r["operation"]), float(r["percent"]), r, now) if r["state"] == RUNNING
                 else averages(r["operation"]) for r in records]
        own = averages(status.operation)
        eta = None if own is None or None in ahead else sum(ahead) / workers + own  # type: ignore[arg-type]
        count = len(records)
        stage = "queued: next to start" if not count else \
            f"queued: position {position} · {count} job{'s' if count > 1 else ''} ahead"
        if workers > 1:
            stage += f" · {workers} workers"
        return replace(status, position=position, eta_seconds=eta, stage=stage)

    def _with_running_eta(self, status: JobStatus, job: dict[str, str]) -> JobStatus:
        eta = _remaining(self.store.average_duration(status.operation), status.percent, job, time.time())
        return replace(status, eta_seconds=eta)

    def _job(self, job_id: str) -> dict[str, str]:
        job = self.store.get(job_id) if JOB_ID.match(job_id or "") else None
        if job is None or "state" not in job or "operation" not in job:  # half a record reads as expired
            raise JobNotFound(f"No job {job_id!r}: the id is wrong or the job expired.")
        return job

    async def wait_async(self, job_id: str, timeout: float) -> None:
        """Return once the job has ended (or is unknown), or after `timeout` s: a long poll
        for an event loop, holding no thread. Woken at once by the job's end, and then
        wakes the next waiter on the same job."""
        if not JOB_ID.match(job_id or ""):
            return
        if self._async_redis is None:  # made on the loop that uses it
            self._async_redis = AsyncRedis.from_url(self.settings.redis_url)
        redis, deadline = self._async_redis, time.monotonic() + timeout
        try:
            while (left := deadline - time.monotonic()) > 0:
                state = await redis.hget(self.store.job_key(job_id), "state")
                if state is None or state.decode() in TERMINAL:
                    return
                # at most a second at a time: a job failed by the reaper ends the same way, but
                # a job that expired while queued never pushes
                woken = await redis.blpop([self.store.done_key(job_id)], timeout=min(left, 1.0))
                if woken:
                    await redis.rpush(self.store.done_key(job_id), woken[1])
                    return
        except (RedisConnectionError, RedisTimeoutError) as exc:
            raise self._unreachable(exc) from None

    @_needs_queue
    def wait(self, job_id: str, timeout: float = 600) -> JobStatus:
        """Block until the job ends (for scripts, tests and benchmarks). Woken at once
        when the job ends, else checks each second."""
        deadline = time.monotonic() + timeout
        state_now = lambda: (self.store.redis.hget(self.store.job_key(job_id), "state") or b"").decode()  # noqa: E731
        while state_now() not in TERMINAL:
            if self.store.redis.blpop([self.store.done_key(job_id)], timeout=1):
                break
            if self.status(job_id).done:  # the worker may have been lost
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {self.status(job_id).state} after {timeout} s")
        return self.status(job_id)

    # results ------------------------------------------------------------------
    @_needs_queue
    def results(self, job_id: str) -> list[bytes]:
        """The output images as stored (PNG, JPEG or WebP bytes); raises JobNotFinished unless it succeeded."""
        status = self.status(job_id)
        if status.state != SUCCEEDED:
            raise JobNotFinished(f"Job {job_id} has no result: it is {status.state}." +
                                 (f" {status.error}" if status.error else ""))
        images = [self.store.get_blob(job_id, f"out:{i}") for i in range(status.outputs)]
        if any(image is None for image in images):
            raise JobNotFound(f"The result of job {job_id} expired.")
        return images  # type: ignore[return-value]

    @_needs_queue
    def preview(self, job_id: str) -> bytes | None:
        return self.store.get_blob(job_id, "preview")

    # cancel -------------------------------------------------------------------
    @_needs_queue
    def cancel(self, job_id: str, owner: str | None = None) -> JobStatus:
        """A queued job is cancelled at once; a running one stops at its next step
        (the worker terminates it if it does not stop within the grace period).
        Cancelling a finished job changes nothing. With `owner`, only its own jobs."""
        job = self._owned(job_id, owner)
        if job["state"] in TERMINAL:
            return self.status(job_id)
        self.store.update(job_id, cancel_requested=time.time())
        self.store.finish(job_id, CANCELLED, allowed=(QUEUED,), stage="cancelled before it started")
        return self.status(job_id)

    @_needs_queue
    def cancel_batch(self, batch_id: str, owner: str | None = None) -> BatchStatus:
        """Cancel every job of the batch that has not ended."""
        for job in self.batch_status(batch_id).jobs:
            if not job.done:
                self.cancel(job.id, owner)
        return self.batch_status(batch_id)
