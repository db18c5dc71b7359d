"""Generate through the stack vs calling the same diffusers pipeline in-process, at
equal steps, size and seed; and the first job of a fresh worker (imports torch,
loads the pipeline) vs the second (pipeline reused).

Without --model it builds the tests' tiny random pipeline (this machine has no
real weights); on a GPU machine pass e.g. --model sd-turbo --size 512.

    python -m bench.generate [--model NAME] [--steps 20] [--size 128] [--jobs 10]
"""
from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from bench import stack


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=None)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--jobs", type=int, default=10)
    args = parser.parse_args()

    model = args.model
    if model is None:
        from tests.tiny_diffusion import build_tiny_pipeline

        models = Path(tempfile.mkdtemp(prefix="studio-bench-models-"))
        build_tiny_pipeline(models / "diffusers" / "tiny-sd")
        os.environ["STUDIO_MODELS_DIR"] = str(models)
        model = "tiny-sd"
    stack.start_server()
    stack.start_studio_worker("gpu")

    import io

    import torch

    from pipelines.context import RunContext
    from pipelines.diffusion import load_pipeline

    params = {"prompt": "a lighthouse", "model": model, "steps": args.steps, "width": args.size,
              "height": args.size, "seed": 1, "guidance": 0.0}
    pipe = load_pipeline(model, "text2image", RunContext())

    def in_process() -> bytes:
        image = pipe("a lighthouse", num_inference_steps=args.steps, width=args.size, height=args.size,
                     guidance_scale=0.0, generator=torch.Generator().manual_seed(1)).images[0]
        out = io.BytesIO()
        image.save(out, "PNG", compress_level=1)
        return out.getvalue()

    stack.compare_with_in_process(f"generate {args.size}x{args.size}, {args.steps} steps, {model}", "generate", {},
                                  params, in_process, args.jobs)


if __name__ == "__main__":
    main()
