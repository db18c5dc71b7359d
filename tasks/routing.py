"""Which queue a job goes to, decided at submit from the live workers' presence records.

"auto" is resolved where the weights are: each worker's record lists the engines it
can run without a download and whether it may download. For each live worker we work
out the engine its own `pick_engine` would take (the best of the operation's ranking it
holds, else the first it can fetch), and the job goes to the queue of the worker that
would run the best one; a worker that already holds it beats one that would download
it. So an auto object removal with LaMa only on a GPU host goes to the gpu queue, even
where no cpu worker exists.

A gpu engine goes to a cpu worker only when that worker holds its files (LaMa runs on a
CPU, slowly); diffusion always waits for a gpu worker. An engine named explicitly goes
to its device's queue; a cpu engine runs on a gpu worker when no cpu worker is alive (a
GPU host can run CPU work).

A light engine's job (`Engine.light`: OpenCV, the face mesh) bound for the cpu queue goes
to the light queue instead, which `launch.py` serves with one job per core (and its cpu
workers too, when free), while the cpu queue runs one heavy model at a time. An auto job
goes there only when every worker serving it would pick a light engine.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

from pipelines.registry import AUTO, Operation
from tasks.store import LIGHT


class Route(NamedTuple):
    queue: str
    engine: str | None  # the engine expected to run; None when no worker is alive to tell


def route(op: Operation, requested: str, workers: Iterable[dict[str, Any]]) -> Route:
    workers = list(workers)
    chosen = _by_device(op, requested, workers)
    if chosen.queue != "cpu" or chosen.engine is None or not op.engines[chosen.engine].light:
        return chosen
    serving = [worker for worker in workers if LIGHT in worker["queues"]]
    if requested == AUTO and not all(_light(op, expected_engine(op, worker)) for worker in serving):
        return chosen  # one of them would run a heavy engine it holds
    return Route(LIGHT, chosen.engine) if serving else chosen


def _light(op: Operation, expected: tuple[str, bool] | None) -> bool:
    return expected is not None and op.engines[expected[0]].light


def _by_device(op: Operation, requested: str, workers: list[dict[str, Any]]) -> Route:
    live = {queue for worker in workers for queue in worker["queues"]} - {LIGHT}
    if requested != AUTO:
        device = op.engine(requested).device
        if device == "cpu" and live and "cpu" not in live:
            return Route(sorted(live)[0], requested)
        return Route(device, requested)
    ranking = list(dict.fromkeys(op.auto_order + op.first_use))
    candidates = []
    for worker in workers:
        expected = expected_engine(op, worker)
        if expected is None:
            continue
        name, needs_download = expected
        engine = op.engines[name]
        for queue in worker["queues"]:
            if queue == LIGHT:
                continue  # see `route`
            if queue != engine.device and engine.device == "gpu" and (needs_download or not engine.weights()):
                continue  # a gpu engine runs elsewhere only from files already there (not diffusion)
            candidates.append(((ranking.index(name), needs_download, queue != engine.device), queue, name))
    if not candidates:
        return Route(op.auto_device, None)
    _, queue, name = min(candidates)
    return Route(queue, name)


def expected_engine(op: Operation, worker: dict[str, Any]) -> tuple[str, bool] | None:
    """What `pick_engine(op, "auto")` would take on this worker: (engine, needs a download)."""
    held = set(worker.get("engines", []))
    for name in op.auto_order:
        if op.engines[name].weights() and f"{op.name}/{name}" in held:
            return name, False
    for name in op.first_use:
        if f"{op.name}/{name}" in held:
            return name, False
        weights = op.engines[name].weights()
        if worker.get("downloads") and all(weight.url for weight in weights):
            return name, bool(weights)
    return None
