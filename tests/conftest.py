"""Shared fixtures: a real Valkey server on a free port, real worker processes
started through `launch.py --worker-only`, the real u2netp weights, and the
real UI process. Nothing is mocked.

The environment is set here, at import, for the processes the tests start (workers,
the UI) and for the settings the tests' own clients read.
"""
from __future__ import annotations

import functools
import http.server
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

from tests.assets import u2netp_onnx

ROOT = Path(__file__).resolve().parent.parent
STATE = Path(tempfile.mkdtemp(prefix="studio-tests-"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


REDIS_PORT = free_port()
MODELS = STATE / "models"
os.environ.update(
    REDIS_URL=f"redis://127.0.0.1:{REDIS_PORT}/0",
    STUDIO_MODELS_DIR=str(MODELS),
    STUDIO_OFFLINE="1",  # a test that downloads serves the file itself and turns this off
    HF_HUB_OFFLINE="1",
    STUDIO_CANCEL_GRACE="3",
    STUDIO_LOST_AFTER="5",
    STUDIO_DRAIN_SECONDS="3",  # a stopped worker's running job: 3 s to finish, then queued again
    XDG_CACHE_HOME=str(STATE / "cache"),
    STUDIO_WEBHOOK_ALLOW="127.0.0.1/32",  # the webhook receiver in test_rest_api
    STUDIO_DIAGNOSTIC="1",  # the timed no-op operation the queue tests use (off by default)
    STUDIO_MAX_JOBS_PER_OWNER="1000",  # the whole suite is one visitor; test_hostile checks the limit
)
os.environ.pop("U2NET_HOME", None)


@pytest.fixture(scope="session", autouse=True)
def redis_server():
    from launch import start_embedded_redis

    server = start_embedded_redis(STATE / "valkey", REDIS_PORT)
    yield server
    server.stop()
    shutil.rmtree(STATE, ignore_errors=True)


@pytest.fixture(scope="session")
def u2netp_installed() -> Path:
    """The real u2netp.onnx in the models folder the workers read."""
    target = MODELS / "rembg" / "u2netp.onnx"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(u2netp_onnx(), target)
    return target


@pytest.fixture(scope="session")
def client():
    from tasks.client import StudioClient

    return StudioClient()


class WorkerProcess:
    """A real worker, started the way a user adds one: `launch.py --worker-only`. With
    `light` 0 (the suite's default, to spare its 2 cores), no light worker of its own: its
    cpu worker runs light jobs one at a time."""

    def __init__(self, queues: str, env: dict[str, str] | None = None, light: int = 0):
        self.queues = queues
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "launch.py"), "--worker-only", "--queues", queues,
             "--light-concurrency", str(light)],
            cwd=ROOT, env={**os.environ, **(env or {})}, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self.hostname_prefix = f"studio-{queues.replace(',', '-')}-{self.process.pid}@"

    def wait_ready(self, client, timeout: float = 60) -> WorkerProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(name.startswith(self.hostname_prefix) for name in client.store.workers()):
                return self
            assert self.process.poll() is None, "the worker process exited during start-up"
            time.sleep(0.2)
        raise TimeoutError(f"worker for {self.queues} not ready after {timeout} s")

    def kill_all(self) -> None:
        """kill -9 the whole worker: launcher, Celery main process and pool children."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill_all()


@pytest.fixture
def start_worker(client):
    """Start extra workers inside a test; all are stopped at its end."""
    started: list[WorkerProcess] = []

    def start(queues: str, light: int = 0, **env: str) -> WorkerProcess:
        worker = WorkerProcess(queues, env, light)
        started.append(worker)
        return worker.wait_ready(client)

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture(scope="session")
def cpu_worker(client, u2netp_installed):
    """The suite's long-lived worker on the `cpu` queue (there is no `gpu` worker
    unless a test starts one)."""
    worker = WorkerProcess("cpu").wait_ready(client)
    yield worker
    worker.stop()


class UIProcess:
    """A real UI process (`launch.py --no-worker`) against the suite's server, with
    `args` and the suite's environment changed by `env` (None values remove a variable)."""

    def __init__(self, *args: str, capture: bool = False, **env: str | None):
        self.port = free_port()
        environment = {**os.environ, **{k: v for k, v in env.items() if v is not None}}
        for name in (k for k, v in env.items() if v is None):
            environment.pop(name, None)
        self.log = STATE / f"ui-{self.port}.log" if capture else None
        with open(self.log or os.devnull, "w") as out:
            self.process = subprocess.Popen(
                [sys.executable, str(ROOT / "launch.py"), "--no-worker", "--port", str(self.port), *args],
                cwd=ROOT, env=environment, start_new_session=True, stdout=out, stderr=subprocess.STDOUT,
            )
        self.url = f"http://127.0.0.1:{self.port}/"
        wait_http(self.url, self.process)

    def output(self) -> str:
        """What the process printed so far (with `capture`)."""
        return self.log.read_text() if self.log else ""

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=20)


@pytest.fixture(scope="session")
def ui_url(cpu_worker):
    """The real UI process, as `launch.py --no-worker` starts it."""
    ui = UIProcess()
    yield ui.url
    ui.stop()


@pytest.fixture(scope="module")
def locked_ui(cpu_worker):
    """A UI as one shares it with strangers: an access token, no test-only operation, no
    webhook allow-list, small limits (3 jobs per visitor, 6 waiting in all, 5 MB uploads).
    Per module: its webhook dispatcher (no allow-list) must not be the one that takes the
    other UI's deliveries to the suite's local receiver."""
    ui = UIProcess(STUDIO_API_TOKEN="s3cret", STUDIO_DIAGNOSTIC=None, STUDIO_WEBHOOK_ALLOW=None,
                   STUDIO_MAX_JOBS_PER_OWNER="3", STUDIO_MAX_WAITING="6", STUDIO_MAX_UPLOAD_MB="5")
    yield ui
    ui.stop()


def wait_http(url: str, process: subprocess.Popen, timeout: float = 90) -> None:
    """Until the server answers at all (a 401 of a locked studio counts)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the UI process exited during start-up"
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def process_group(leader: int) -> set[int]:
    """The pids of every process in `leader`'s process group (a worker: its launcher, the
    Celery main process and its pool children)."""
    members = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended while we looked
            continue
        if int(fields[2]) == leader:  # after ")": state, ppid, pgrp
            members.add(int(stat.parent.name))
    return members


def alive(pid: int, group: bool = False) -> bool:
    """Whether the process (or, with `group`, any process of its group) still exists."""
    try:
        (os.killpg if group else os.kill)(pid, 0)
    except ProcessLookupError:
        return False
    return True


def encode(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def astronaut() -> Image.Image:
    """A real photo with a face, shipped in scikit-image."""
    from skimage import data

    return Image.fromarray(data.astronaut())


@pytest.fixture(scope="session")
def group() -> Image.Image:
    """insightface's group photo t1: six faces."""
    from insightface.data import get_image

    return Image.fromarray(get_image("t1")[..., ::-1].copy())  # BGR -> RGB


@pytest.fixture(scope="session")
def hanks() -> Image.Image:
    """insightface's Tom_Hanks_54745.png: one small, nearly grey portrait."""
    import insightface

    return Image.open(Path(insightface.__file__).parent / "data" / "images" / "Tom_Hanks_54745.png").convert("RGB")


@pytest.fixture(scope="session")
def astronaut_jpeg(astronaut) -> bytes:
    return encode(astronaut, "JPEG", quality=92)


@pytest.fixture(scope="session")
def tiny_png() -> bytes:
    return encode(Image.new("RGB", (16, 16), (200, 30, 30)))


def wait_for(predicate, timeout: float = 30, poll: float = 0.05):
    """Poll until `predicate()` is truthy; returns its value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise TimeoutError(f"condition not met within {timeout} s")


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium (the one the tests' set-up installs)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def tiny_sd() -> str:
    """A tiny random Stable Diffusion pipeline in the models folder, as model "tiny-sd"."""
    from tests.tiny_diffusion import build_tiny_pipeline

    folder = MODELS / "diffusers" / "tiny-sd"
    if not (folder / "model_index.json").is_file():
        build_tiny_pipeline(folder)
    return "tiny-sd"


@pytest.fixture(scope="module")
def gpu_worker(client, tiny_sd):
    """A worker on the `gpu` queue (diffusion engines route there; it runs on the CPU here).
    Module-scoped: other modules test what happens while no gpu worker exists."""
    worker = WorkerProcess("gpu").wait_ready(client)
    yield worker
    worker.stop()


@pytest.fixture
def weights_server(tmp_path, monkeypatch):
    """A local HTTP server standing in for a model release page: (its folder, its URL).
    Downloads are turned on for the test (the suite is offline otherwise)."""
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.delenv("STUDIO_OFFLINE")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    yield served, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="session")
def tiny_inpaint() -> str:
    """A tiny random SD inpainting pipeline (9-channel UNet, a VAE that scales by 8) in
    the models folder, as model "tiny-inpaint"."""
    from tests.tiny_diffusion import build_tiny_pipeline

    folder = MODELS / "diffusers" / "tiny-inpaint"
    if not (folder / "model_index.json").is_file():
        build_tiny_pipeline(folder, inpainting=True)
    return "tiny-inpaint"
