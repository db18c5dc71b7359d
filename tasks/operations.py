"""One Celery task per operation in the catalogue, all sharing `OperationTask`.

The message carries only the job id (JSON); inputs, parameters and results
live in the job store. Whatever happens, the job ends in a state the user sees.
"""
from __future__ import annotations

import json
import logging
import os
import time
from functools import cached_property

from billiard.exceptions import SoftTimeLimitExceeded
from celery import Task
from pydantic import ValidationError
from redis import Redis

from pipelines.catalogue import OPERATIONS
from pipelines.errors import Cancelled, StudioError
from pipelines.imaging import decode_image, encode_png
from pipelines.registry import Operation, is_out_of_memory, release_models
from tasks.celery_app import app, settings
from tasks.job_run import JobRun
from tasks.store import CANCELLED, FAILED, SUCCEEDED, JobStore

log = logging.getLogger(__name__)
OUT_OF_MEMORY = ("{title} ran out of GPU memory; the worker freed its models and carries on. Try a smaller "
                 "image, size or number of images, or set STUDIO_SD_CPU_OFFLOAD=1 / STUDIO_SD_ATTENTION_SLICING=1 "
                 "on the GPU workers.")

class OperationTask(Task):
    """Runs one job of an operation from its record in the store."""

    @cached_property
    def store(self) -> JobStore:
        return JobStore(Redis.from_url(settings.redis_url), settings.job_ttl)

    def execute(self, op: Operation, job_id: str) -> dict[str, str]:
        begun = self.store.begin(job_id, self.request.hostname or "worker", os.getpid(), op.all_inputs,
                                 settings.lost_after)
        if begun is None:
            return {"state": "skipped"}  # ended or expired before it got here, or runs elsewhere
        job, inputs = begun
        started = time.monotonic()
        state, outputs, fields = self._run(op, job_id, job, inputs)
        self.store.finish(job_id, state, outputs=outputs, run_seconds=round(time.monotonic() - started, 3), **fields)
        return {"state": state}

    def _run(self, op: Operation, job_id: str, job: dict[str, str], inputs: dict[str, bytes | None]
             ) -> tuple[str, list[bytes], dict[str, object]]:
        terminate = lambda: app.control.revoke(job_id, terminate=True, signal="SIGKILL")  # noqa: E731
        try:
            with JobRun(self.store, job_id, settings, terminate) as ctx:
                images = {name: decode_image(self._input(name, data), settings.max_pixels)
                          for name, data in inputs.items() if data is not None or name in op.inputs}
                result = op.run(images, op.params.model_validate_json(job["params"]), ctx)
                outputs = [encode_png(image) for image in result.images]
            return SUCCEEDED, outputs, {"engine": result.engine, "detail": result.detail, "percent": 100,
                                        "stage": "done", "notes": json.dumps(ctx.notes)}
        except Cancelled:
            return CANCELLED, [], {"stage": "cancelled"}
        except StudioError as exc:
            return FAILED, [], {"error": str(exc)}
        except ValidationError as exc:
            return FAILED, [], {"error": f"Invalid parameters: {exc.errors()[0]['msg']}"}
        except SoftTimeLimitExceeded:
            return FAILED, [], {"error": f"{op.title} took longer than its {op.time_limit} s limit and was stopped."}
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
            raise StudioError(f"The job's {name} expired before a worker took it (after {settings.job_ttl} s).")
        return data


def _task_for(op: Operation) -> Task:
    @app.task(name=f"ops.{op.name}", base=OperationTask, bind=True, ignore_result=True,
              soft_time_limit=op.time_limit, time_limit=op.time_limit + 30)
    def run(self: OperationTask, job_id: str) -> dict[str, str]:
        return self.execute(op, job_id)

    return run


TASKS = {name: _task_for(op) for name, op in OPERATIONS.items()}
