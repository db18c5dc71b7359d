"""Bring up a private studio stack for a benchmark: Valkey on a free port and
worker processes, all stopped on exit. Import this before anything from `tasks`."""
from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("STUDIO_DIAGNOSTIC", "1")  # the queue benchmark's no-op operation (workers inherit it)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server() -> str:
    """Start Valkey and point REDIS_URL at it (before `tasks` is imported)."""
    from launch import start_embedded_redis

    port = _free_port()
    server = start_embedded_redis(Path(tempfile.mkdtemp(prefix="studio-bench-")), port)
    atexit.register(server.stop)
    os.environ["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    return os.environ["REDIS_URL"]


def start_process(args: list[str], ready: str, timeout: float = 120) -> subprocess.Popen:
    """Start a worker-like process and wait until its output contains `ready`."""
    log = tempfile.NamedTemporaryFile("w+", prefix="bench-worker-", suffix=".log", delete=False)
    process = subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    atexit.register(lambda: process.poll() is None and os.killpg(process.pid, signal.SIGTERM))
    deadline = time.monotonic() + timeout
    while ready not in Path(log.name).read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{args} did not start; see {log.name}")
        time.sleep(0.2)
    return process


def wait_up(url: str, process: subprocess.Popen, timeout: float = 180) -> None:
    """Until `url` answers at all (`process` is the server behind it)."""
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited")
        try:
            requests.get(url, timeout=2)
            return
        except requests.RequestException:
            time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer")


def children(pid: int) -> list[int]:
    """The processes `pid` started, from any of its threads (a supervisor thread's too)."""
    return [int(child) for task in Path(f"/proc/{pid}/task").iterdir()
            for child in (task / "children").read_text().split()]


def start_studio_worker(queues: str = "cpu") -> subprocess.Popen:
    return start_process(["launch.py", "--worker-only", "--queues", queues], " ready.")


def sample_jpeg() -> bytes:
    """scikit-image's astronaut (512x512) as JPEG bytes."""
    import io

    from PIL import Image
    from skimage import data

    buffer = io.BytesIO()
    Image.fromarray(data.astronaut()).save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def phone_jpeg() -> bytes:
    """scikit-image's astronaut at 4000x3000 with a camera's grain, as a q92 JPEG (about 3.7 MB)."""
    import io

    import numpy as np
    from PIL import Image
    from skimage import data

    pixels = np.asarray(Image.fromarray(data.astronaut()).resize((4000, 3000), Image.Resampling.LANCZOS), float)
    pixels += np.random.default_rng(0).normal(0, 8, pixels.shape)
    buffer = io.BytesIO()
    Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def phone_mask() -> bytes:
    """A PNG mask for `phone_jpeg` with a 200x150 px hole (an object to remove)."""
    import io

    from PIL import Image

    mask = Image.new("L", (4000, 3000))
    mask.paste(255, (1900, 1400, 2100, 1550))
    buffer = io.BytesIO()
    mask.save(buffer, "PNG")
    return buffer.getvalue()


def timed(fn, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return times


def report(name: str, ours: list[float], baseline: list[float], target: float) -> None:
    a, b = statistics.median(ours), statistics.median(baseline)
    verdict = "ok" if a / b <= target else "over target"
    print(f"{name}: studio median {a * 1000:.1f} ms, baseline median {b * 1000:.1f} ms, "
          f"ratio {a / b:.2f}x (target <= {target}x: {verdict})")


@contextlib.contextmanager
def append_only_off() -> Iterator[None]:
    """The bench's own server without its append-only file for a while (what keeping every
    stored image across a restart costs); it rewrites the file when it is turned back on,
    and that rewrite is waited out so it does not slow what is measured next."""
    import redis

    server = redis.Redis.from_url(os.environ["REDIS_URL"])
    server.config_set("appendonly", "no")
    try:
        yield
    finally:
        server.config_set("appendonly", "yes")
        while any(server.info("persistence")[f"aof_rewrite_{state}"] for state in ("in_progress", "scheduled")):
            time.sleep(0.05)


def compare_with_in_process(name: str, operation: str, images: dict[str, bytes], params: dict,
                            in_process, jobs: int, target: float = 1.10, append_only_cost: bool = False) -> None:
    """Print the first and second job of a fresh worker (model load, then reuse), and
    the median through the stack against `in_process()` doing the same work; with
    `append_only_cost`, also through the stack with the server's append-only file off."""
    from tasks.client import StudioClient

    client = StudioClient()

    def through_stack() -> None:
        job = client.submit(operation, images, params)
        status = client.wait(job, timeout=600)
        assert status.state == "succeeded", status.error
        client.results(job)

    first, second = timed(through_stack, 1)[0], timed(through_stack, 1)[0]
    timed(in_process, 2)
    ours, baseline, volatile = [], [], []
    for _ in range(max(1, jobs // 5)):  # interleaved, so machine noise hits all alike
        ours += timed(through_stack, 5)
        baseline += timed(in_process, 5)
        if append_only_cost:
            with append_only_off():
                volatile += timed(through_stack, 5)
    report(f"{name} ({len(ours)} jobs each)", ours, baseline, target)
    if volatile:
        report("  the same without the append-only file (nothing kept across a restart)", volatile, baseline, target)
    print(f"  first job of a fresh worker {first * 1000:.0f} ms (imports, model load), second {second * 1000:.0f} ms "
          f"(second/first = {second / first:.2f}), later median {statistics.median(ours) * 1000:.0f} ms")


def tiny_png() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "gray").save(buffer, "PNG")
    return buffer.getvalue()


class Launcher:
    """`python launch.py` as the README starts it, on free ports, with its own cache folder;
    `args` are more of its flags, `env` changes its environment (the defaults lift the
    per-visitor limits)."""

    def __init__(self, folder: Path, *args: str, **env: str):
        import requests  # noqa: F401 - fails early where the bench has no requests

        port, redis_port = _free_port(), _free_port()
        self.redis_url = f"redis://127.0.0.1:{redis_port}/0"
        environment = {**os.environ, "STUDIO_REDIS_PORT": str(redis_port), "XDG_CACHE_HOME": str(folder / "cache"),
                       "STUDIO_DIAGNOSTIC": "1", "STUDIO_MAX_JOBS_PER_OWNER": "100000", "STUDIO_MAX_WAITING": "100000",
                       **env}
        environment.pop("REDIS_URL", None)
        self.log = folder / "launch.log"
        with open(self.log, "w") as out:
            self.process = subprocess.Popen([sys.executable, "launch.py", "--port", str(port), *args], cwd=ROOT,
                                            env=environment, stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        self.port, self.url, self.api = port, f"http://127.0.0.1:{port}/", f"http://127.0.0.1:{port}/api/v1"
        try:
            wait_up(f"{self.api}/operations/", self.process)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}; its output: {self.log}") from None
        time.sleep(5)  # the workers announce themselves

    def server_pid(self) -> int:
        """The embedded server, a child of the launcher (started again by its supervisor thread, if it was)."""
        return next(pid for pid in children(self.process.pid)
                    if b"valkey-server" in Path(f"/proc/{pid}/cmdline").read_bytes())

    def submit(self, steps: int = 5, step_seconds: float = 0.1, headers: dict | None = None) -> str:
        import json

        import requests

        answer = requests.post(f"{self.api}/tasks/submit/", files={"image": ("tiny.png", tiny_png(), "image/png")},
                               data={"operation": "diagnostic",
                                     "params": json.dumps({"steps": steps, "step_seconds": step_seconds})},
                               headers=headers, timeout=60)
        answer.raise_for_status()
        return answer.json()["id"]

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGINT)
        self.process.wait(timeout=60)

    def __enter__(self) -> Launcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def peer_server(command: list[str], ready_url: str, **env: str) -> Iterator[subprocess.Popen]:
    """The server people would run instead of the studio (`rembg s`, IOPaint), in its own
    process group, answering at `ready_url` for the length of the block."""
    process = subprocess.Popen(command, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_up(ready_url, process)
        yield process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)


def rest_job(api: str, operation: str, images: dict[str, bytes], params: dict) -> bytes:
    """One job through the REST API as a script would run it: submit (multipart), a
    long-polled status (answered when the job ends), the first result."""
    import json

    import requests

    files = {name: (f"{name}.img", data, "application/octet-stream") for name, data in images.items()}
    job = requests.post(f"{api}/tasks/submit/", files=files, timeout=120,
                        data={"operation": operation, "params": json.dumps(params)}).json()
    while requests.get(job["status_url"], params={"wait": 30}, timeout=120).json()["state"] in ("queued", "running"):
        pass
    answer = requests.get(job["result_url"], timeout=120)
    assert answer.ok, answer.text[:200]
    return answer.content


def throughput(call, jobs: int, clients: int) -> float:
    """Jobs per second with `clients` callers running `call` until `jobs` are done."""
    from concurrent.futures import ThreadPoolExecutor

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(lambda _: call(), range(jobs)))
    return jobs / (time.perf_counter() - started)


def side_by_side(peer: str, with_peer, with_studio, requests: int, clients: int) -> None:
    """Print the studio against `peer` from one run: median latency one request at a time
    (interleaved, so machine noise hits both alike) and throughput with `clients` callers."""
    for warm_up in (with_peer, with_studio) * 2:  # models loaded, caches warm
        warm_up()
    latency: dict[str, list[float]] = {peer: [], "studio": []}
    for _ in range(requests):
        for name, call in ((peer, with_peer), ("studio", with_studio)):
            started = time.perf_counter()
            call()
            latency[name].append(time.perf_counter() - started)
    ours, theirs = statistics.median(latency["studio"]), statistics.median(latency[peer])
    print(f"latency, one request at a time ({requests} each): studio median {ours * 1000:.0f} ms, "
          f"{peer} {theirs * 1000:.0f} ms: {ours / theirs:.2f}x (target <= 1.05x)")
    rates = {name: throughput(call, requests, clients) for name, call in ((peer, with_peer), ("studio", with_studio))}
    print(f"throughput, {clients} clients: studio {rates['studio']:.2f} jobs/s, {peer} {rates[peer]:.2f} jobs/s: "
          f"{rates['studio'] / rates[peer]:.2f}x (target >= 1.0x)")


def use_test_u2netp() -> None:
    """Point STUDIO_MODELS_DIR (unless set) at a folder holding the tests' copy of u2netp,
    when there is one (before the workers start)."""
    test_copy = ROOT / ".cache" / "test-assets" / "u2netp.onnx"
    if test_copy.is_file() and not os.environ.get("STUDIO_MODELS_DIR"):
        import shutil

        models = Path(tempfile.mkdtemp(prefix="studio-bench-models-"))
        (models / "rembg").mkdir()
        shutil.copy(test_copy, models / "rembg" / "u2netp.onnx")
        os.environ["STUDIO_MODELS_DIR"] = str(models)
