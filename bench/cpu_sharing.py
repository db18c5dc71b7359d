"""How the studio's workers share this machine's cores: jobs per second with 4 REST clients
for light work (OpenCV fills, face-mesh swaps, preset styles) and heavy work (rembg), under
each worker layout, every one started by the README's command.

    python -m bench.cpu_sharing [--jobs 16] [--clients 4]

Layouts: one job at a time per worker (`--light-concurrency 0`, as before the light
queue), `launch.py` as it starts by default (light jobs run one per core in their own
worker), and `--concurrency 2` (every worker runs two jobs at once). Printed, from one
run: jobs/s per case and layout, and the ratio to the first layout.
"""
from __future__ import annotations

import argparse
import io
import shutil
import tempfile
from pathlib import Path

from bench import stack
from bench.phone_photos import inputs_of
from tests.assets import u2netp_onnx

LAYOUTS = {"one job at a time (--light-concurrency 0)": ("--light-concurrency", "0"),
           "default (light jobs one per core)": (),
           "every worker two at once (--concurrency 2)": ("--concurrency", "2")}


def cases() -> dict[str, tuple[str, dict[str, bytes], dict]]:
    """Name -> (operation, inputs, params)."""
    photo, small = stack.phone_jpeg(), stack.sample_jpeg()
    return {
        "remove object, 12 MP, opencv-ns": ("remove_object", inputs_of("remove_object", photo),
                                             {"engine": "opencv-ns"}),
        "face swap, 12 MP, face mesh": ("face_swap", inputs_of("face_swap", photo), {"engine": "landmarks"}),
        "face swap, 512 px, face mesh": ("face_swap", inputs_of("face_swap", small), {"engine": "landmarks"}),
        "style preset, 512 px": ("style_transfer", {"image": small}, {"engine": "neural-preset"}),
        "remove background, 512 px, u2netp": ("remove_background", {"image": small}, {"engine": "u2netp"}),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=16)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    jobs = cases()
    rates: dict[str, dict[str, float]] = {name: {} for name in jobs}
    for layout, flags in LAYOUTS.items():
        folder = Path(tempfile.mkdtemp(prefix="bench-sharing-"))
        (folder / "models" / "rembg").mkdir(parents=True)
        shutil.copy(u2netp_onnx(), folder / "models" / "rembg" / "u2netp.onnx")
        studio = stack.Launcher(folder, *flags, STUDIO_MODELS_DIR=str(folder / "models"))
        try:
            for name, (operation, images, params) in jobs.items():
                call = lambda: stack.rest_job(studio.api, operation, images, params)  # noqa: E731
                for _ in range(2 * args.clients):  # every pool process has its models loaded
                    call()
                rates[name][layout] = stack.throughput(call, args.jobs, args.clients)
        finally:
            studio.stop()
            shutil.rmtree(folder, ignore_errors=True)
    first = next(iter(LAYOUTS))
    out = io.StringIO()
    print(f"jobs/s with {args.clients} REST clients, {args.jobs} jobs each:", file=out)
    for name, by_layout in rates.items():
        cells = [f"{layout} {rate:.2f}" + (f" ({rate / by_layout[first]:.2f}x)" if layout != first else "")
                 for layout, rate in by_layout.items()]
        print(f"  {name}: " + ", ".join(cells), file=out)
    print(out.getvalue(), end="")


if __name__ == "__main__":
    main()
