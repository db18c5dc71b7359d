"""Background removal through the stack vs `rembg.remove` in-process with the
same u2netp session on the same photo (both: JPEG bytes in, PNG bytes out), and
the first job of a fresh worker (model load) vs the ones after (model reused).

Needs u2netp.onnx in the models folder (`STUDIO_MODELS_DIR`, default
~/.cache/ai-studio/models/rembg/); the tests' copy is used if present.

    python -m bench.remove_background [--jobs 20]
"""
from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from bench import stack

TEST_COPY = stack.ROOT / ".cache" / "test-assets" / "u2netp.onnx"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=20)
    args = parser.parse_args()

    if TEST_COPY.is_file() and not os.environ.get("STUDIO_MODELS_DIR"):
        models = Path(tempfile.mkdtemp(prefix="studio-bench-models-"))
        (models / "rembg").mkdir()
        shutil.copy(TEST_COPY, models / "rembg" / "u2netp.onnx")
        os.environ["STUDIO_MODELS_DIR"] = str(models)
    stack.start_server()
    stack.start_studio_worker("cpu")

    import rembg
    from skimage import data
    from PIL import Image

    from pipelines.background.rembg_models import RembgEngine
    from tasks.client import StudioClient

    buffer = io.BytesIO()
    Image.fromarray(data.astronaut()).save(buffer, "JPEG", quality=92)
    photo = buffer.getvalue()
    client = StudioClient()

    def through_stack() -> None:
        job = client.submit("remove_background", {"image": photo}, {"engine": "u2netp"})
        assert client.wait(job, timeout=300).state == "succeeded"
        client.results(job)

    first = stack.timed(through_stack, 1)[0]
    second = stack.timed(through_stack, 1)[0]
    session = RembgEngine("u2netp").load()
    in_process = lambda: rembg.remove(photo, session=session)  # noqa: E731
    stack.timed(in_process, 2)
    ours, baseline = [], []
    for _ in range(max(1, args.jobs // 5)):
        ours += stack.timed(through_stack, 5)
        baseline += stack.timed(in_process, 5)
    stack.report(f"remove background 512x512 u2netp ({len(ours)} jobs each)", ours, baseline, target=1.10)
    print(f"first job of a fresh worker {first * 1000:.0f} ms, second {second * 1000:.0f} ms "
          f"(model reused: second/first = {second / first:.2f}), later median {statistics.median(ours) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
