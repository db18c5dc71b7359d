"""The job queue through real parts: Valkey, Celery worker processes started
with `launch.py --worker-only`, and the client API the UI uses.

Queue mechanics (position, cancel, lost workers, routing) use the diagnostic
operation, whose steps take a known time; background removal runs the real model.
"""
from __future__ import annotations

import io
import json
import os
import signal
import time

import pytest
from PIL import Image

from pipelines.errors import InvalidInput
from tests.conftest import alive, encode, wait_for


def slow_job(client, tiny_png, steps=100, step_seconds=0.1, engine="identity-cpu") -> str:
    return client.submit("diagnostic", {"image": tiny_png},
                         {"engine": engine, "steps": steps, "step_seconds": step_seconds})


def running(client, job_id):
    return client.status(job_id).state == "running"


def test_background_removal_reports_progress_to_100(client, cpu_worker, astronaut_jpeg):
    job = client.submit("remove_background", {"image": astronaut_jpeg}, {"engine": "u2netp"})
    seen = []
    while not (status := client.status(job)).done:
        seen.append((status.state, status.percent, status.stage))
        time.sleep(0.02)
    assert status.state == "succeeded", status.error
    assert status.percent == 100 and status.engine == "u2netp"
    assert [p for state, p, _ in seen if state == "running"] == sorted(p for state, p, _ in seen if state == "running")
    cutout = Image.open(io.BytesIO(client.results(job)[0]))
    assert cutout.format == "PNG" and cutout.mode == "RGBA" and cutout.size == (512, 512)


def test_images_travel_as_raw_bytes_with_a_ttl_not_in_messages(client, tiny_png):
    job = slow_job(client, tiny_png, engine="identity-gpu", steps=1)  # no gpu worker: stays queued
    redis = client.store.redis
    stored = redis.get(client.store.blob_key(job, "in:image"))
    assert stored == tiny_png
    assert 0 < redis.ttl(client.store.blob_key(job, "in:image")) <= client.settings.job_ttl
    message = json.loads(redis.lindex("gpu", 0))  # "run the next job of the gpu queue": no job, no image
    assert message["headers"]["task"] == "studio.run_next" and message["content-type"] == "application/json"
    assert json.loads(__import__("base64").b64decode(message["body"]))[0] == ["gpu"]
    assert len(message["body"]) < 200
    client.cancel(job)


def test_queue_position_while_another_job_runs(client, cpu_worker, tiny_png):
    first = slow_job(client, tiny_png, steps=30)
    wait_for(lambda: running(client, first))
    second, third = slow_job(client, tiny_png, steps=1), slow_job(client, tiny_png, steps=1)
    assert (client.status(second).position, client.status(third).position) == (1, 2)
    assert client.status(third).stage == "queued: position 2 · 2 jobs ahead"
    client.cancel(first)
    assert client.wait(third, timeout=30).state == "succeeded"
    assert client.status(second).state == "succeeded"


def test_cancel_stops_a_running_job_and_the_worker_keeps_its_process(client, cpu_worker, tiny_png):
    job = slow_job(client, tiny_png, steps=200)
    wait_for(lambda: client.status(job).percent > 0)
    pid = client.store.get(job)["pid"]
    asked = time.monotonic()
    client.cancel(job)
    status = client.wait(job, timeout=10)
    assert status.state == "cancelled" and time.monotonic() - asked < 2
    after = slow_job(client, tiny_png, steps=1)
    assert client.wait(after, timeout=30).state == "succeeded"
    assert client.store.get(after)["pid"] == pid  # cooperative: same process, models kept


def test_cancel_of_a_queued_job_is_immediate(client, tiny_png):
    job = slow_job(client, tiny_png, engine="identity-gpu", steps=1)
    assert client.cancel(job).state == "cancelled"
    assert client.store.jobs_ahead(job, "gpu") is None


def test_job_that_ignores_cancel_is_terminated_after_the_grace_period(client, cpu_worker, tiny_png):
    job = slow_job(client, tiny_png, steps=1, step_seconds=10)  # one long step: no cancel check inside
    wait_for(lambda: client.status(job).stage == "step 1/1 under way")  # past its last check
    pid = int(client.store.get(job)["pid"])
    client.cancel(job)
    status = client.wait(job, timeout=15)  # grace is 3 s in the tests
    assert status.state == "cancelled" and "stopped by force" in status.stage
    wait_for(lambda: not alive(pid), timeout=10)
    after = slow_job(client, tiny_png, steps=1)
    assert client.wait(after, timeout=30).state == "succeeded"  # a fresh pool process serves


def test_a_job_whose_worker_died_runs_again_on_another(client, cpu_worker, start_worker, tiny_png):
    """Nobody polls the job: the reaper (in the cpu worker here) sees its worker gone,
    queues it again, and the next gpu worker runs it."""
    first = start_worker("gpu")
    job = slow_job(client, tiny_png, engine="identity-gpu", steps=30)
    wait_for(lambda: client.store.get(job)["state"] == "running")
    first.kill_all()
    killed = time.monotonic()
    wait_for(lambda: client.store.get(job)["state"] == "queued", timeout=30)
    assert time.monotonic() - killed < 15
    assert "its worker stopped; running it again (run 2 of 2)" in client.status(job).stage
    second = start_worker("gpu")
    assert client.wait(job, timeout=60).state == "succeeded"
    record = client.store.get(job)
    assert record["attempts"] == "2" and record["worker"].startswith(second.hostname_prefix)


def test_pool_process_killed_mid_job_is_retried_then_done(client, cpu_worker, tiny_png):
    job = slow_job(client, tiny_png, steps=20)
    wait_for(lambda: client.status(job).percent > 0)
    os.kill(int(client.store.get(job)["pid"]), signal.SIGKILL)
    status = client.wait(job, timeout=60)
    assert status.state == "succeeded"
    assert client.store.get(job)["attempts"] == "2"


def test_a_job_that_kills_its_worker_every_time_fails_with_the_reason(client, cpu_worker, tiny_png):
    job = slow_job(client, tiny_png, steps=40)
    for run in ("1", "2"):
        wait_for(lambda: (r := client.store.get(job))["state"] == "running" and r["attempts"] == run
                 and float(r["percent"]) > 0, timeout=30)
        os.kill(int(client.store.get(job)["pid"]), signal.SIGKILL)
    status = client.wait(job, timeout=30)
    assert status.state == "failed" and "stopped each time (2 runs)" in status.error


def test_writes_after_a_job_expired_do_not_bring_back_half_a_record(client, tiny_png):
    from tasks.client import JobNotFound

    job = slow_job(client, tiny_png, engine="identity-gpu", steps=1)
    client.cancel(job)
    client.store.redis.delete(client.store.job_key(job))  # its TTL ran out
    assert not client.store.update(job, percent=50, stage="late progress")
    assert not client.store.beat(job, 5)
    assert client.store.redis.exists(client.store.job_key(job)) == 0
    client.store.redis.hset(client.store.job_key(job), "percent", 3)  # a half record, however it came
    with pytest.raises(JobNotFound, match="expired"):
        client.status(job)
    client.store.redis.delete(client.store.job_key(job))


def test_gpu_job_waits_for_a_gpu_worker(client, cpu_worker, start_worker, tiny_png):
    job = slow_job(client, tiny_png, engine="identity-gpu", steps=1)
    time.sleep(2)
    status = client.status(job)
    assert status.state == "queued" and "waiting for a worker on queue 'gpu'" in status.stage
    worker = start_worker("gpu")
    assert client.wait(job, timeout=30).state == "succeeded"
    assert client.store.get(job)["worker"].startswith(worker.hostname_prefix)


@pytest.mark.parametrize(
    "data, params, message",
    [
        (b"", {}, "empty"),
        (b"\x89PNG\r\n\x1a\n garbage", {}, "PNG file is damaged"),
        (None, {}, "No image was given"),
        ("huge", {}, "megapixels"),
        ("ok", {"engine": "no-such-model"}, "Unknown engine"),
        ("ok", {"output": "sepia"}, "output"),
        ("ok", {"color": "not-a-colour"}, "not a colour"),
    ],
    ids=["zero-bytes", "corrupt", "missing", "huge", "engine", "output", "colour"],
)
def test_bad_input_is_refused_before_queueing(client, astronaut_jpeg, data, params, message):
    if data == "huge":
        data = encode(Image.new("L", (10_000, 9_000)))
    elif data == "ok":
        data = astronaut_jpeg
    images = {} if data is None else {"image": data}
    with pytest.raises(InvalidInput, match=message):
        client.submit("remove_background", images, params)


def test_truncated_upload_is_refused(client, astronaut_jpeg):
    with pytest.raises(InvalidInput, match="truncated"):
        client.submit("remove_background", {"image": astronaut_jpeg[:-5000]}, {})


def test_missing_model_offline_fails_the_job_with_where_to_put_it(client, cpu_worker, astronaut_jpeg):
    job = client.submit("remove_background", {"image": astronaut_jpeg}, {"engine": "birefnet-general"})
    status = client.wait(job, timeout=60)
    assert status.state == "failed"
    assert "BiRefNet-general-epoch_244.onnx" in status.error and os.environ["STUDIO_MODELS_DIR"] in status.error
    assert "Traceback" not in status.error
    after = client.submit("remove_background", {"image": astronaut_jpeg}, {"engine": "mediapipe-person"})
    assert client.wait(after, timeout=60).engine == "mediapipe-person"  # the worker keeps serving


def test_unknown_or_expired_job_is_reported(client):
    from tasks.client import JobNotFound

    with pytest.raises(JobNotFound):
        client.status("0" * 32)
    with pytest.raises(JobNotFound):
        client.status("../../etc/passwd")


def test_unreachable_queue_is_a_message_not_a_traceback(tiny_png):
    from dataclasses import replace

    from tasks.client import QueueUnavailable, StudioClient
    from tasks.settings import Settings
    from tests.conftest import free_port

    offline = StudioClient(replace(Settings.from_env(), redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    with pytest.raises(QueueUnavailable, match="job queue at redis://127.0.0.1:.* is not reachable"):
        offline.submit("remove_background", {"image": tiny_png}, {})


def test_inputs_are_dropped_when_a_job_ends_and_its_result_stays(client, cpu_worker, tiny_png):
    job = slow_job(client, tiny_png, steps=1, step_seconds=0)
    assert client.wait(job, timeout=30).state == "succeeded"
    assert client.store.get_blob(job, "in:image") is None
    assert client.results(job)[0]


def test_a_history_job_keeps_its_inputs_and_only_its_owner_reaches_them(client, cpu_worker, tiny_png):
    from tasks.client import JobNotFinished, JobNotFound

    params = {"engine": "identity-cpu", "steps": 1, "step_seconds": 0}
    job = client.submit("diagnostic", {"image": tiny_png}, params, quota="ip:10.0.0.1", owner="browser:a")
    assert client.wait(job, timeout=30).state == "succeeded"
    assert client.inputs(job, "browser:a") == {"image": tiny_png}  # for "use again", as long as the result
    assert 0 < client.store.redis.ttl(client.store.blob_key(job, "in:image")) <= client.settings.job_ttl
    assert [entry.status.id for entry in client.history("browser:a")][0] == job
    assert job not in [entry.status.id for entry in client.history("browser:b")]
    for method in (client.inputs, client.delete, client.cancel):
        with pytest.raises(JobNotFound):
            method(job, "browser:b")  # someone else's job reads as no job at all
    live = client.submit("diagnostic", {"image": tiny_png}, {**params, "steps": 50, "step_seconds": 0.1},
                         owner="browser:a")
    with pytest.raises(JobNotFinished):
        client.delete(live, "browser:a")
    client.cancel(live, "browser:a")
    client.delete(job, "browser:a")
    assert job not in [entry.status.id for entry in client.history("browser:a")]
    assert client.store.get_blob(job, "in:image") is None and client.store.get_blob(job, "out:0") is None


def test_expired_queued_jobs_leave_the_queue_positions(client, tiny_png):
    store, queue = client.store, "test-nowhere"  # a queue no worker consumes
    first, second = "e" * 32, "f" * 32
    for job in (first, second):
        store.create(job, {"operation": "diagnostic"}, {"image": tiny_png}, queue, "local")
    store.redis.delete(store.job_key(first))  # as if its TTL had run out while it waited
    assert store.jobs_ahead(second, queue) == ([], 0)  # position 1, not 2
    assert store.redis.zrank(store.waiting_key(queue), first) is None


def test_the_embedded_server_keeps_queued_jobs_across_a_restart(tmp_path, tiny_png):
    from dataclasses import replace

    from launch import start_embedded_redis
    from tasks.client import StudioClient
    from tasks.settings import Settings
    from tests.conftest import free_port

    port = free_port()
    server = start_embedded_redis(tmp_path / "valkey", port)
    own = StudioClient(replace(Settings.from_env(), redis_url=f"redis://127.0.0.1:{port}/0"))
    job = own.store.redis.hset(own.store.job_key("f" * 32), mapping={"state": "queued", "operation": "x"})
    own.store.put_blob("f" * 32, "in:image", tiny_png)
    time.sleep(1.5)  # the append-only file is written every second
    server.stop()
    server = start_embedded_redis(tmp_path / "valkey", port)
    try:
        assert job and own.store.get("f" * 32)["state"] == "queued"
        assert own.store.get_blob("f" * 32, "in:image") == tiny_png
    finally:
        server.stop()


def test_a_full_embedded_server_refuses_new_jobs_in_words(tmp_path, monkeypatch, astronaut_jpeg):
    """With its memory cap reached the server evicts nothing: a new job is refused, saying so."""
    from dataclasses import replace

    from redis.exceptions import OutOfMemoryError

    from launch import start_embedded_redis
    from tasks.client import Busy, StudioClient
    from tasks.settings import Settings
    from tests.conftest import free_port

    monkeypatch.setenv("STUDIO_REDIS_MAXMEMORY", "8mb")
    port = free_port()
    server = start_embedded_redis(tmp_path / "valkey", port)
    try:
        full = StudioClient(replace(Settings.from_env(), redis_url=f"redis://127.0.0.1:{port}/0"))
        with pytest.raises(OutOfMemoryError):
            for index in range(2000):  # other jobs' images, until the cap is reached
                full.store.redis.set(f"ballast:{index}", b"\0" * 10_000)
        with pytest.raises(Busy, match="queue is full"):
            full.submit("remove_background", {"image": astronaut_jpeg}, {})
        assert full.store.redis.get("ballast:0")  # nothing was evicted to make room
    finally:
        server.stop()


def test_a_worker_announces_itself_again_after_redis_comes_back_empty(tmp_path):
    """Redis down for longer than an announcement period, then back without its data: the
    worker says it is there again (its presence thread lived through the errors)."""
    from dataclasses import replace

    from launch import start_embedded_redis
    from tasks.client import StudioClient
    from tasks.settings import Settings
    from tests.conftest import WorkerProcess, free_port

    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    server = start_embedded_redis(tmp_path / "first", port)
    own = StudioClient(replace(Settings.from_env(), redis_url=url))
    worker = WorkerProcess("cpu", {"REDIS_URL": url}).wait_ready(own)
    try:
        server.stop()
        time.sleep(7)  # two announcements fail meanwhile
        server = start_embedded_redis(tmp_path / "second", port)  # nothing of before survives
        assert not own.store.workers()
        assert wait_for(lambda: any(name.startswith(worker.hostname_prefix) for name in own.store.workers()),
                        timeout=20)
    finally:
        worker.stop()
        server.stop()


def test_waiting_jobs_start_round_robin_across_visitors(client, cpu_worker, tiny_png):
    """One visitor queues eight jobs, then three others one each: theirs are next in line
    (positions say so at once) and start before the first visitor's second job; the
    first visitor's own jobs keep their order, and all of them run (work-conserving)."""
    params = {"engine": "identity-cpu", "steps": 1, "step_seconds": 0.5}
    batch = [client.submit("diagnostic", {"image": tiny_png}, params, quota="ip:198.51.100.1") for _ in range(8)]
    wait_for(lambda: running(client, batch[0]))
    others = [client.submit("diagnostic", {"image": tiny_png}, params, quota=f"ip:203.0.113.{n}") for n in range(3)]
    assert [client.status(job).position for job in others] == [1, 2, 3]
    assert client.status(batch[1]).position == 4
    ended = {job: client.wait(job, timeout=60) for job in batch + others}
    assert all(status.state == "succeeded" for status in ended.values())
    started = {job: float(client.store.get(job)["started_at"]) for job in batch + others}
    assert max(started[job] for job in others) < started[batch[1]]
    assert [started[job] for job in batch] == sorted(started[job] for job in batch)


def test_light_jobs_run_one_per_core_in_a_worker_of_their_own(client, cpu_worker, start_worker, tiny_png):
    """A cpu host (`launch.py --worker-only --queues cpu`) also starts a light worker that
    runs as many light jobs (OpenCV fills, face-mesh swaps) at once as it has cores (2
    here); the cpu workers take light jobs too when free, and heavy jobs stay on `cpu`."""
    host = start_worker("cpu", light=2)
    light_worker = f"studio-light-{host.process.pid}@"
    wait_for(lambda: any(name.startswith(light_worker) for name in client.store.workers()), timeout=60)
    params = {"engine": "identity-light", "steps": 600, "step_seconds": 0.1}
    jobs = [client.submit("diagnostic", {"image": tiny_png}, params) for _ in range(4)]  # one per free slot
    heavy = client.submit("diagnostic", {"image": tiny_png}, {"engine": "identity-cpu"})
    try:
        assert [client.status(job).queue for job in jobs] == ["light"] * 4 and client.status(heavy).queue == "cpu"
        wait_for(lambda: all(running(client, job) for job in jobs), timeout=60)
        hosts = [client.store.get(job)["worker"] for job in jobs]
        assert sum(name.startswith(light_worker) for name in hosts) == 2, hosts  # two at once in one worker
    finally:
        for job in jobs:
            client.cancel(job)
    assert client.wait(heavy, timeout=60).state == "succeeded"


def test_a_job_past_its_time_limit_is_stopped_at_its_next_check_or_by_force(client):
    """JobRun keeps each operation's time limit: the pipeline's next check stops it, and
    one that does not stop within the grace period is ended and its process terminated."""
    from types import SimpleNamespace

    from tasks.job_run import JobRun

    store, job_id = client.store, "f" * 32
    store.create(job_id, {"operation": "diagnostic", "params": "{}"}, {}, "limits", "local")
    assert store.take("limits", "test", os.getpid(), 5)[0] == job_id
    terminated = []
    run = JobRun(store, job_id, client.settings, lambda: terminated.append(True),
                 SimpleNamespace(time_limit=1, title="Slow thing"))
    with run as ctx:
        wait_for(ctx.is_cancelled, timeout=10)
        assert run.timed_out  # what a pipeline's check_cancelled() would now stop at
        wait_for(lambda: terminated, timeout=client.settings.cancel_grace + 10)  # it did not stop
    record = store.get(job_id)
    assert record["state"] == "failed"
    assert record["error"] == "Slow thing took longer than its 1 s limit and was stopped."


def noise_png(side: int, seed: int = 0) -> bytes:
    rng = __import__("numpy").random.default_rng(seed)
    return encode(Image.fromarray(rng.integers(0, 255, (side, side, 3), dtype="uint8")))


def test_a_visitor_keeps_a_bounded_share_of_memory(client, cpu_worker):
    """Results count against the visitor's share until they expire or are deleted."""
    from dataclasses import replace

    from tasks.client import Busy, StudioClient

    photo = noise_png(300)  # about 270 KB, and as much again as a result
    budgeted = StudioClient(replace(client.settings, max_stored_bytes=len(photo) * 5 // 2))
    params = {"engine": "identity-cpu", "steps": 1}
    first = budgeted.submit("diagnostic", {"image": photo}, params, quota="ip:192.0.2.55", owner="browser:m")
    assert budgeted.wait(first, timeout=30).state == "succeeded"  # its input (History) and result are kept
    with pytest.raises(Busy, match="Your jobs' images take"):
        budgeted.submit("diagnostic", {"image": photo}, params, quota="ip:192.0.2.55", owner="browser:m")
    other = budgeted.submit("diagnostic", {"image": photo}, params, quota="ip:192.0.2.56")  # others still may
    budgeted.delete(first, "browser:m")
    again = budgeted.submit("diagnostic", {"image": photo}, params, quota="ip:192.0.2.55", owner="browser:m")
    assert budgeted.wait(again, timeout=30).state == "succeeded" and client.wait(other).state == "succeeded"


def test_a_result_that_finds_redis_full_fails_saying_so_and_is_not_run_again(client, cpu_worker):
    redis = client.store.redis
    job = client.submit("diagnostic", {"image": noise_png(1000)}, {"engine": "identity-cpu", "steps": 1,
                                                                   "step_seconds": 2})
    wait_for(lambda: client.status(job).stage == "step 1/1 under way")
    limit = redis.config_get("maxmemory")["maxmemory"]
    redis.config_set("maxmemory", redis.info("memory")["used_memory"] - 1_000_000)  # full: writes are refused
    try:
        wait_for(lambda: client.status(job).done, timeout=30)
    finally:
        redis.config_set("maxmemory", limit)
    status = client.status(job)
    assert status.state == "failed" and "out of memory" in status.error
    assert client.store.get(job)["attempts"] == "1"


def test_an_unexpected_error_is_told_in_words_without_internals(client, cpu_worker, tiny_png):
    job = client.submit("diagnostic", {"image": tiny_png}, {"crash": True})
    status = client.wait(job, timeout=30)
    assert status.state == "failed"
    assert status.error == f"Queue diagnostic failed unexpectedly; the worker's log has the details (job {job})."


def test_a_visitor_has_a_compute_budget_for_generate(client):
    """Generate jobs wait on the gpu queue (no gpu worker here); their megapixel-steps add
    up per visitor: 2 × 105 fit in 300, a third does not; another visitor's does."""
    from dataclasses import replace

    from tasks.client import Busy, StudioClient

    budgeted = StudioClient(replace(client.settings, max_visitor_work=300))
    params = {"prompt": "a cat", "steps": 100, "width": 512, "height": 512, "num_images": 4}  # 104.9 each
    jobs = [budgeted.submit("generate", {}, params, quota="ip:192.0.2.77") for _ in range(2)]
    try:
        with pytest.raises(Busy, match="take 210 megapixel-steps and these would add 105"):
            budgeted.submit("generate", {}, params, quota="ip:192.0.2.77")
        jobs.append(budgeted.submit("generate", {}, params, quota="ip:192.0.2.78"))
    finally:
        for job in jobs:
            client.cancel(job)


def test_a_worker_told_to_stop_queues_a_long_job_again_and_lets_a_short_one_finish(client, start_worker,
                                                                                      tiny_png):
    """SIGTERM to `launch.py --worker-only` (what docker and Kubernetes send): a job that
    would outlast STUDIO_DRAIN_SECONDS (3 s here) is back in the queue right after,
    saying so, without counting as a run, and another worker runs it; one that ends
    within it ends, and the worker exits."""
    gpu = {"engine": "identity-gpu"}
    first = start_worker("gpu")
    long = client.submit("diagnostic", {"image": tiny_png}, {**gpu, "steps": 60, "step_seconds": 0.1})
    wait_for(lambda: running(client, long))
    os.kill(first.process.pid, signal.SIGTERM)
    told = time.monotonic()
    wait_for(lambda: client.status(long).state == "queued", timeout=20)
    assert time.monotonic() - told < 3 + 2
    assert client.status(long).stage.startswith("its worker is shutting down; queued again")
    assert client.store.get(long)["attempts"] == "0"
    assert first.process.wait(timeout=30) == 0
    second = start_worker("gpu")
    assert client.wait(long, timeout=60).state == "succeeded" and client.store.get(long)["attempts"] == "1"
    short = client.submit("diagnostic", {"image": tiny_png}, {**gpu, "steps": 10, "step_seconds": 0.1})
    wait_for(lambda: running(client, short))
    os.kill(second.process.pid, signal.SIGTERM)
    assert client.wait(short, timeout=30).state == "succeeded"
    assert second.process.wait(timeout=30) == 0
