"""Workers announce themselves in Redis, so the UI can tell "queued behind
others" from "no worker consumes this queue" and divide ETAs by workers."""
from __future__ import annotations

import logging
import os
import threading

from celery.signals import worker_ready, worker_shutdown

from pipelines import diffusion
from pipelines.catalogue import OPERATIONS
from pipelines.onnx_runtime import available_providers
from pipelines.registry import installed_engines
from pipelines.weights import downloads_allowed
from tasks.celery_app import job_store
from tasks.reaper import Reaper

log = logging.getLogger(__name__)
ANNOUNCE_EVERY = 3.0
_stop = threading.Event()


def record(queues: list[str]) -> dict[str, object]:
    """What the UI may tell a visitor about this worker: its queues, which engines and
    models it has on disk, whether it may download the others, and which onnxruntime
    providers its ONNX engines can use (CUDA only with onnxruntime-gpu)."""
    models = diffusion.local_models() if "gpu" in queues else []
    return {"queues": queues, "pid": os.getpid(), "engines": installed_engines(OPERATIONS), "models": models,
            "downloads": downloads_allowed(), "onnx_providers": available_providers()}


@worker_ready.connect
def _announce(sender, **_: object) -> None:
    hostname = sender.hostname
    queues = sorted(q.name for q in sender.task_consumer.queues)
    store = job_store()

    def loop() -> None:
        while not _stop.is_set():
            try:
                store.announce_worker(hostname, record(queues), ttl=ANNOUNCE_EVERY * 3)
            except Exception:  # Redis away for a moment: announce again at the next beat
                log.warning("could not announce worker %s", hostname, exc_info=True)
            _stop.wait(ANNOUNCE_EVERY)

    threading.Thread(target=loop, name="presence", daemon=True).start()
    Reaper(store).start()  # every worker watches for jobs whose worker died


@worker_shutdown.connect
def _withdraw(sender, **_: object) -> None:
    _stop.set()
    store = job_store()
    store.withdraw_worker(sender.hostname)
    store.forget_processes(sender.hostname)
