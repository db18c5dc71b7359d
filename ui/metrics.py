"""What an operator watches: /metrics (Prometheus' text format), /healthz and /readyz.

The queue's series come from Redis at each scrape (`StudioClient.metrics`: a few keys,
and the visitors of the waiting jobs; never the finished ones), so every UI process
reports the same queue. The request
latency is this UI process's own. /healthz answers whenever the process does; /readyz
says whether Redis answers and every queue has a worker. The Guard in front asks the
studio's credentials (or STUDIO_METRICS_TOKEN) for /metrics and /readyz; /healthz is open.
"""
from __future__ import annotations

import time
from typing import Any, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tasks.client import QueueUnavailable, StudioClient
from tasks.store import BUCKETS, LIGHT, QUEUES

REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class QueueCollector:
    """The queue's series, read from Redis when scraped."""

    def __init__(self, client: StudioClient):
        self.client = client

    def collect(self) -> Iterator[Any]:
        metrics = self.client.metrics()
        yield _gauge("studio_jobs_waiting", "Jobs waiting, per queue.", ["queue"], metrics.waiting)
        yield _gauge("studio_jobs_running", "Jobs running, per queue.", ["queue"], metrics.running)
        yield _gauge("studio_visitors_waiting", "Visitors with jobs waiting, per queue.", ["queue"], metrics.visitors)
        yield _gauge("studio_workers", "Live workers consuming each queue.", ["queue"], metrics.workers)
        engines = GaugeMetricFamily("studio_engine_workers", "Live workers that have each engine's weights on disk.",
                                    labels=["operation", "engine"])
        for name, count in sorted(metrics.engines.items()):
            engines.add_metric(name.split("/", 1), count)
        yield engines
        yield from _processes(metrics.processes)
        counters = metrics.counters
        ended = CounterMetricFamily("studio_jobs_ended", "Jobs ended, by state.", labels=["state"])
        for state in ("succeeded", "failed", "cancelled"):
            ended.add_metric([state], counters["ended"].get(state, 0))
        yield ended
        yield _histogram("studio_job_wait_seconds", "Time from submit to start.", counters["wait"])
        yield _histogram("studio_job_run_seconds", "Time from start to end.", counters["run"])
        reaper = CounterMetricFamily("studio_reaper_jobs", "Jobs whose worker was lost: run again or failed.",
                                     labels=["outcome"])
        for outcome in ("requeued", "failed"):
            reaper.add_metric([outcome], counters["reaper"].get(outcome, 0))
        yield reaper
        webhooks = CounterMetricFamily("studio_webhooks", "Webhook deliveries: delivered, failed attempts, and "
                                       "given up.", labels=["outcome"])
        for outcome in ("delivered", "attempts_failed", "failed"):
            webhooks.add_metric([outcome], counters["webhooks"].get(outcome, 0))
        yield webhooks
        yield GaugeMetricFamily("studio_redis_roundtrip_seconds", "One PING to Redis.", value=metrics.redis_roundtrip)
        yield GaugeMetricFamily("studio_redis_memory_bytes", "Memory Redis uses.", value=metrics.redis_memory)
        yield GaugeMetricFamily("studio_redis_maxmemory_bytes", "Redis' memory cap (0: none).",
                                value=metrics.redis_maxmemory)


def _processes(processes: dict[str, dict[str, Any]]) -> Iterator[GaugeMetricFamily]:
    """Each worker process's state, as it published it after its last job began or ended."""
    busy = GaugeMetricFamily("studio_process_busy", "1 while the worker process runs a job.", labels=["process"])
    models = GaugeMetricFamily("studio_process_loaded_models", "Models the worker process holds.",
                               labels=["process"])
    gpu = GaugeMetricFamily("studio_process_gpu_memory_bytes", "The worker process's CUDA device memory.",
                            labels=["process", "kind"])
    for name, state in sorted(processes.items()):
        busy.add_metric([name], 1 if state.get("job") else 0)
        models.add_metric([name], len(state.get("models", [])))
        for kind in ("free", "total"):
            if state.get(f"gpu_{kind}") is not None:
                gpu.add_metric([name, kind], state[f"gpu_{kind}"])
    yield from (busy, models, gpu)


def _gauge(name: str, documentation: str, labels: list[str], values: dict[str, int]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=labels)
    for label, value in values.items():
        family.add_metric([label], value)
    return family


def _histogram(name: str, documentation: str, fields: dict[str, float]) -> HistogramMetricFamily:
    """One histogram per (operation, engine) from the store's "op|engine|le" fields."""
    family = HistogramMetricFamily(name, documentation, labels=["operation", "engine"])
    series = sorted({tuple(field.split("|")[:2]) for field in fields})
    for operation, engine in series:
        prefix = f"{operation}|{engine}|"
        count = fields.get(prefix + "count", 0)
        buckets = [(str(le), fields.get(prefix + _lua_number(le), 0)) for le in BUCKETS] + [("+Inf", count)]
        family.add_metric([operation, engine], buckets, fields.get(prefix + "sum", 0))
    return family


def _lua_number(value: float) -> str:
    """How Lua writes a bucket bound into the field's name: 1, 2.5, 0.1."""
    return str(int(value)) if float(value).is_integer() else str(value)


class Monitor:
    """The routes, and the request-latency middleware that feeds them."""

    def __init__(self, client: StudioClient):
        self.client = client
        self.registry = CollectorRegistry()
        self.registry.register(QueueCollector(client))
        self.latency = Histogram("studio_ui_request_seconds", "This UI process's answers, from request to "
                                 "response start, by kind of route.", ["route"], registry=self.registry,
                                 buckets=REQUEST_BUCKETS)

    def routes(self) -> list[Route]:
        return [Route("/metrics", self._metrics), Route("/healthz", self._healthz), Route("/readyz", self._readyz)]

    async def _metrics(self, request: Request) -> Response:
        try:
            body = generate_latest(self.registry)
        except QueueUnavailable as exc:
            return PlainTextResponse(f"# the job queue is not reachable: {exc}\n", status_code=503)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    async def _healthz(self, request: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def _readyz(self, request: Request) -> Response:
        try:
            workers = self.client.metrics().workers
        except QueueUnavailable as exc:
            return JSONResponse({"ready": False, "missing": ["redis"], "detail": str(exc)}, status_code=503)
        needed = [queue for queue in QUEUES if queue != LIGHT]  # light jobs go to the cpu queue while none serves it
        missing = [f"a worker on queue {queue!r}" for queue in needed if not workers.get(queue)]
        return JSONResponse({"ready": not missing, "missing": missing}, status_code=503 if missing else 200)

    def middleware(self, app: Any) -> Any:
        """ASGI middleware timing each HTTP request to the start of its answer."""
        latency = self.latency

        async def timed(scope: dict, receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                return await app(scope, receive, send)
            started, route = time.perf_counter(), _route_kind(scope.get("path", ""))

            async def sending(message: dict) -> None:
                if message["type"] == "http.response.start":
                    latency.labels(route).observe(time.perf_counter() - started)
                await send(message)

            await app(scope, receive, sending)

        return timed


def _route_kind(path: str) -> str:
    """A small, fixed set of labels (paths carry job ids and session hashes)."""
    if path == "/":
        return "page"
    for prefix, kind in (("/api/v1/", "rest"), ("/gradio_api/upload", "upload"), ("/gradio_api/", "gradio"),
                         ("/metrics", "metrics")):
        if path.startswith(prefix):
            return kind
    return "other"
