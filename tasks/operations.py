"""The one Celery task: start the next job of a queue in fair order, and run it.

The message carries only the queue's name (JSON); the job, its inputs, parameters and
results live in the job store. Whatever happens, the job ends in a state the user sees.
"""
from __future__ import annotations

import json
import logging
import os
import time
from functools import cached_property

from celery import Task
from pydantic import ValidationError
from redis.exceptions import OutOfMemoryError, RedisError

from pipelines.catalogue import OPERATIONS
from pipelines.errors import Cancelled, StudioError
from pipelines.imaging import decode_image, encode_result, stored_format, with_metadata_of
from pipelines.registry import Operation, gpu_memory, is_out_of_memory, loaded_models, release_models
from tasks.celery_app import RUN_NEXT, app, configured, job_store
from tasks.job_run import JobRun
from tasks.store import CANCELLED, FAILED, SUCCEEDED, JobStore

log = logging.getLogger(__name__)
OUT_OF_MEMORY = ("{title} ran out of GPU memory; the worker freed its models and carries on. Try a smaller "
                 "image, size or number of images, or set STUDIO_SD_CPU_OFFLOAD=1 / STUDIO_SD_ATTENTION_SLICING=1 "
                 "on the GPU workers.")

class RunNext(Task):
    """Starts the next job of a queue in fair order and runs it with its operation."""

    @cached_property
    def store(self) -> JobStore:
        return job_store()

    def execute(self, queue: str) -> dict[str, str]:
        taken = self.store.take(queue, self.request.hostname or "worker", os.getpid(), configured().lost_after)
        if taken is None:
            return {"state": "skipped"}  # its job was cancelled, expired, or taken by another message
        job_id, job, inputs = taken
        self._publish(job_id)
        op = OPERATIONS.get(job["operation"])
        started = time.monotonic()
        if op is None:  # queued by a newer version of the studio
            state, outputs, fields = FAILED, [], {"error": f"This worker has no operation {job['operation']!r}."}
        else:
            state, outputs, fields = self._run(op, job_id, job, inputs)
        seconds = round(time.monotonic() - started, 3)
        try:
            self.store.finish(job_id, state, outputs=outputs, run_seconds=seconds, **fields)
        except OutOfMemoryError:  # Redis is full: the job fails saying so, and is not run again
            log.warning("job %s: no room in Redis for its %d result(s)", job_id, len(outputs))
            self.store.drop_images(job_id)
            self.store.finish(job_id, FAILED, run_seconds=seconds, error=(
                "The studio is out of memory: the result could not be stored. Try again later, or with a "
                "smaller image."))
            state = FAILED
        self._publish(None)
        return {"state": state}

    def _publish(self, job_id: str | None) -> None:
        """This process's job, models and GPU memory, for /metrics (best effort)."""
        memory = gpu_memory()
        state = {"job": job_id, "models": loaded_models(), "gpu_free": memory and memory[0],
                 "gpu_total": memory and memory[1]}
        try:
            self.store.publish_process(f"{self.request.hostname}/{os.getpid()}", state)
        except RedisError:
            log.warning("worker state not published", exc_info=True)

    def _run(self, op: Operation, job_id: str, job: dict[str, str], inputs: dict[str, bytes | None]
             ) -> tuple[str, list[bytes], dict[str, object]]:
        task_id = self.request.id
        terminate = lambda: app.control.revoke(task_id, terminate=True, signal="SIGKILL")  # noqa: E731
        settings = configured()
        run = JobRun(self.store, job_id, settings, terminate, op)
        try:
            with run as ctx:
                images = {name: decode_image(self._input(name, inputs.get(name)), settings.max_pixels,
                                             standard_mode=name not in op.masks)
                          for name in op.all_inputs if inputs.get(name) is not None or name in op.inputs}
                params = op.params.model_validate_json(job["params"])
                result = op.run(images, params, ctx)
                photo, photo_format = images.get(op.photo_input), stored_format(inputs.get(op.photo_input))
                chosen = getattr(params, "format", "auto")  # the helper operations (finding faces) have no choice
                outputs = [encode_result(with_metadata_of(image, photo), photo_format, chosen)
                           for image in result.images]
            return SUCCEEDED, outputs, {"engine": result.engine, "detail": result.detail, "percent": 100,
                                        "stage": "done", "notes": json.dumps(ctx.notes)}
        except Cancelled:
            if run.timed_out:
                return FAILED, [], {"error": run.time_limit_message}
            return CANCELLED, [], {"stage": "cancelled"}
        except StudioError as exc:
            return FAILED, [], {"error": str(exc)}
        except ValidationError as exc:
            return FAILED, [], {"error": f"Invalid parameters: {exc.errors()[0]['msg']}"}
        except MemoryError:
            return FAILED, [], {"error": f"{op.title} ran out of memory; try a smaller image."}
        except Exception as exc:  # the worker keeps serving; the user gets a message, the log the traceback
            if is_out_of_memory(exc):
                release_models()
                log.warning("job %s (%s) ran out of GPU memory: %s", job_id, op.name, exc)
                return FAILED, [], {"error": OUT_OF_MEMORY.format(title=op.title)}
            log.exception("job %s (%s) failed", job_id, op.name)
            # the message may hold paths and internals: it goes to the log, not to the visitor
            return FAILED, [], {"error": f"{op.title} failed unexpectedly; the worker's log has the details "
                                         f"(job {job_id})."}

    @staticmethod
    def _input(name: str, data: bytes | None) -> bytes:
        if data is None:
            raise StudioError(f"The job's {name} expired before a worker took it (after {configured().job_ttl} s).")
        return data


@app.task(name=RUN_NEXT, base=RunNext, bind=True)  # its hard time limit: tasks.celery_app.configure
def run_next(self: RunNext, queue: str) -> dict[str, str]:
    return self.execute(queue)
