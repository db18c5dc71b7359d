"""What an operator watches: /metrics, /healthz and /readyz of real UI processes, read
with prometheus_client's own parser while real jobs wait, run, fail and are cancelled."""
from __future__ import annotations

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import UIProcess

METRICS_TOKEN = {"Authorization": "Bearer m3trics"}


def scrape(url: str, headers: dict | None = None) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of one scrape."""
    answer = requests.get(f"{url}metrics", headers=headers, timeout=10)
    assert answer.status_code == 200, answer.text[:300]
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(answer.text) for sample in family.samples}


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture(scope="module")
def locked_ui(cpu_worker):
    """A second UI process, locked, with a token that opens only the monitoring routes."""
    ui = UIProcess(STUDIO_API_TOKEN="s3cret", STUDIO_METRICS_TOKEN="m3trics")
    yield ui
    ui.stop()


def test_metrics_move_as_jobs_wait_run_fail_and_are_cancelled(ui_url, client, cpu_worker, tiny_png):
    before = scrape(ui_url)
    done = client.submit("diagnostic", {"image": tiny_png}, {"steps": 1})
    crashed = client.submit("diagnostic", {"image": tiny_png}, {"crash": True})
    waiting = client.submit("diagnostic", {"image": tiny_png}, {"engine": "identity-gpu"})  # no gpu worker here
    assert client.wait(done).state == "succeeded" and client.wait(crashed).state == "failed"
    during = scrape(ui_url)
    assert value(during, "studio_jobs_waiting", queue="gpu") == client.store.waiting_count(("gpu",)) >= 1
    for state, more in (("succeeded", 1), ("failed", 1), ("cancelled", 0)):
        assert value(during, "studio_jobs_ended_total", state=state) - \
            value(before, "studio_jobs_ended_total", state=state) == more, state
    series = {"operation": "diagnostic", "engine": "identity-cpu"}
    for histogram in ("studio_job_run_seconds", "studio_job_wait_seconds"):
        assert value(during, f"{histogram}_count", **series) - value(before, f"{histogram}_count", **series) == 2
        assert value(during, f"{histogram}_bucket", le="+Inf", **series) == value(during, f"{histogram}_count",
                                                                                 **series)
    assert value(during, "studio_workers", queue="cpu") >= 1
    ran = client.store.get(done)
    process = (("process", f"{ran['worker']}/{ran['pid']}"),)  # the pool process that ran it, now idle
    assert during[("studio_process_busy", process)] == 0 and ("studio_process_loaded_models", process) in during
    assert value(during, "studio_redis_memory_bytes") > 0 and value(during, "studio_redis_maxmemory_bytes") > 0
    assert value(during, "studio_ui_request_seconds_count", route="metrics") >= 1
    client.cancel(waiting)
    after = scrape(ui_url)
    assert value(after, "studio_jobs_waiting", queue="gpu") == value(during, "studio_jobs_waiting", queue="gpu") - 1
    assert value(after, "studio_jobs_ended_total", state="cancelled") - \
        value(during, "studio_jobs_ended_total", state="cancelled") == 1


def test_two_ui_processes_report_the_same_queue(ui_url, locked_ui, client, tiny_png):
    before = scrape(ui_url)
    waiting = [client.submit("diagnostic", {"image": tiny_png}, {"engine": "identity-gpu"}, quota=f"ip:192.0.2.{n}")
               for n in (1, 1, 2)]
    try:
        ours, theirs = scrape(ui_url), scrape(locked_ui.url, METRICS_TOKEN)
        assert value(ours, "studio_jobs_waiting", queue="gpu") == value(theirs, "studio_jobs_waiting", queue="gpu") \
            == client.store.waiting_count(("gpu",))
        assert value(ours, "studio_visitors_waiting", queue="gpu") - \
            value(before, "studio_visitors_waiting", queue="gpu") == 2  # two visitors, three jobs
    finally:
        for job in waiting:
            client.cancel(job)


def test_monitoring_routes_ask_for_credentials_and_readyz_names_what_is_missing(locked_ui, client):
    assert requests.get(f"{locked_ui.url}healthz", timeout=10).text == "ok\n"  # a load balancer's probe: open
    for path in ("metrics", "readyz"):
        assert requests.get(locked_ui.url + path, timeout=10).status_code == 401
        with_token = requests.get(locked_ui.url + path, headers={"Authorization": "Bearer s3cret"}, timeout=10)
        assert with_token.status_code in (200, 503), with_token.text  # /readyz: 503 while a queue has no worker
    assert requests.get(locked_ui.url, headers=METRICS_TOKEN, timeout=10).status_code == 401  # opens nothing else
    ready = requests.get(f"{locked_ui.url}readyz", headers=METRICS_TOKEN, timeout=10)
    served = client.availability().queues  # the suite runs a cpu worker, and a gpu worker only in some modules
    missing = [f"a worker on queue '{queue}'" for queue in ("cpu", "gpu") if queue not in served]
    assert ready.json() == {"ready": not missing, "missing": missing}  # here: not ready, no gpu worker
    assert ready.status_code == (503 if missing else 200)
