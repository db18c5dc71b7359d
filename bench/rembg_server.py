"""The studio against the peer people would run instead: rembg's own HTTP server.

    python -m bench.rembg_server [--requests 40] [--clients 4] [--phone]

Side by side on this machine, same u2netp model, same 512 px JPEG (with --phone, the
same 4000x3000 one): `rembg s` (from
rembg[cli], installed in its own virtual environment under .cache/, same onnxruntime)
against the studio's REST API as the README's command starts it (`python launch.py`,
embedded server, default workers). Printed, from one run:

- latency: median of `--requests` one-at-a-time requests each (interleaved), the studio's
  being submit, a long-polled status (`?wait=30`, answered when the job ends), result.
  Target: studio/rembg <= 1.05x.
- throughput with `--clients` concurrent clients. Target: studio/rembg >= 1.0x.
- resident memory of the rembg server and of the studio's cpu worker (all its processes).
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import requests

from bench.stack import (
    ROOT,
    Launcher,
    _free_port,
    children,
    peer_server,
    phone_jpeg,
    rest_job,
    sample_jpeg,
    side_by_side,
)
from tests.assets import u2netp_onnx

VENV = ROOT / ".cache" / "bench-rembg-venv"
REMBG = "rembg[cli]==2.0.86"


def rembg_command() -> Path:
    """`rembg` in a virtual environment of its own (its CLI pins versions the studio does not use)."""
    binary = VENV / "bin" / "rembg"
    if not binary.exists():
        import onnxruntime

        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        runtime = f"onnxruntime=={onnxruntime.__version__}"  # the studio's, so the model runs alike
        subprocess.run([str(VENV / "bin" / "pip"), "install", "--quiet", REMBG, runtime], check=True)
    return binary


def rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants."""
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))) / 1024
            pending += children(current)
        except (OSError, StopIteration):
            continue
    return total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--phone", action="store_true", help="a 12 MP phone photo instead of 512 px")
    args = parser.parse_args()
    photo = phone_jpeg() if args.phone else sample_jpeg()
    work = Path(tempfile.mkdtemp(prefix="bench-rembg-"))
    (work / "models" / "rembg").mkdir(parents=True)
    shutil.copy(u2netp_onnx(), work / "models" / "rembg" / "u2netp.onnx")
    rembg_port = _free_port()
    with Launcher(work, STUDIO_MODELS_DIR=str(work / "models")) as studio, \
            peer_server([str(rembg_command()), "s", "--port", str(rembg_port), "--no-ui"],
                        f"http://127.0.0.1:{rembg_port}/api", U2NET_HOME=str(work / "models" / "rembg"),
                        XDG_CACHE_HOME=str(work / "rembg")) as peer:

        def with_rembg() -> None:
            answer = requests.post(f"http://127.0.0.1:{rembg_port}/api/remove", data={"model": "u2netp"},
                                   files={"file": ("photo.jpg", photo, "image/jpeg")}, timeout=120)
            assert answer.ok and answer.content[:4] == b"\x89PNG", answer.text[:200]

        def with_studio() -> None:
            result = rest_job(studio.api, "remove_background", {"image": photo}, {"engine": "u2netp"})
            assert result[:4] == b"\x89PNG"

        side_by_side("rembg s", with_rembg, with_studio, args.requests, args.clients)
        cpu_worker = next(pid for pid in children(studio.process.pid)
                          if b"-Q\0cpu" in Path(f"/proc/{pid}/cmdline").read_bytes())
        print(f"memory: rembg s {rss_mb(peer.pid):.0f} MB; the studio's cpu worker {rss_mb(cpu_worker):.0f} MB "
              f"(all its processes; the UI and the gpu worker come on top)")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
