"""The studio against IOPaint's own server, on a 12 MP phone photo.

    python -m bench.iopaint_server [--requests 20] [--clients 4] [--iopaint PATH]

Side by side on this machine, in one run: object removal of a 200x150 px mask from a
4000x3000 JPEG with OpenCV's Navier-Stokes fill, through the studio's REST API as the
README's command starts it (`python launch.py`, embedded server, default workers), and
through `iopaint start --model cv2` (the same OpenCV fill). Both answer with a JPEG.
IOPaint runs from its own virtual environment (`--iopaint`, default .cache/bench-iopaint-venv,
made on first use: IOPaint pulls a torch and torchvision that must match each other).
Printed:

- latency: median of `--requests` one-at-a-time requests each (interleaved), the studio's
  being submit, a long-polled status, result. Target: studio/IOPaint <= 1.05x.
- throughput with `--clients` concurrent clients. Target: studio/IOPaint >= 1.0x.
"""
from __future__ import annotations

import argparse
import base64
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import requests

from bench.stack import ROOT, Launcher, _free_port, peer_server, phone_jpeg, phone_mask, rest_job, side_by_side

VENV = ROOT / ".cache" / "bench-iopaint-venv"


def iopaint_command(given: str | None) -> Path:
    if given:
        return Path(given)
    binary = VENV / "bin" / "iopaint"
    if not binary.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(VENV / "bin" / "pip"), "install", "--quiet", "iopaint==1.6.0"], check=True)
    return binary


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--iopaint", help="an `iopaint` executable to use instead of making its venv")
    args = parser.parse_args()
    photo, mask = phone_jpeg(), phone_mask()
    print(f"photo: 4000x3000 JPEG, {len(photo) / 1e6:.1f} MB; mask 200x150 px")
    work = Path(tempfile.mkdtemp(prefix="bench-iopaint-"))
    iopaint_port = _free_port()
    command = [str(iopaint_command(args.iopaint)), "start", "--model", "cv2", "--device", "cpu",
               "--port", str(iopaint_port)]
    with Launcher(work, STUDIO_MODELS_DIR=str(work / "models")) as studio, \
            peer_server(command, f"http://127.0.0.1:{iopaint_port}/api/v1/server-config",
                        XDG_CACHE_HOME=str(work / "iopaint")):
        as_text = {"image": base64.b64encode(photo).decode(), "mask": base64.b64encode(mask).decode()}

        def with_iopaint() -> None:
            answer = requests.post(f"http://127.0.0.1:{iopaint_port}/api/v1/inpaint", timeout=120,
                                   json={**as_text, "cv2_flag": "INPAINT_NS"})
            assert answer.ok and answer.content[:3] == b"\xff\xd8\xff", answer.text[:200]

        def with_studio() -> None:
            result = rest_job(studio.api, "remove_object", {"image": photo, "mask": mask}, {"engine": "opencv-ns"})
            assert result[:3] == b"\xff\xd8\xff"

        side_by_side("IOPaint", with_iopaint, with_studio, args.requests, args.clients)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
