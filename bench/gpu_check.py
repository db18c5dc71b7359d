"""The model paths on a machine with a GPU, in one run of a few minutes, with no network:
it builds its own stand-ins (tests/standins.py, tests/tiny_diffusion.py) in a temporary
models folder and prints a table.

    python -m bench.gpu_check

Checks: torch sees CUDA; a tiny SD pipeline runs in fp16 on CUDA, with SD inpainting at
512 px; the LaMa and MI-GAN stand-ins run on CUDA; onnxruntime's CUDA provider (when
onnxruntime-gpu is installed) runs the insightface stand-ins; an out-of-memory error is
recognised, the models are dropped and the memory comes back.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
MODELS = Path(tempfile.mkdtemp(prefix="gpu-check-"))
os.environ.update(STUDIO_MODELS_DIR=str(MODELS), STUDIO_OFFLINE="1", HF_HUB_OFFLINE="1")


def cuda() -> str:
    import torch

    if not torch.cuda.is_available():
        raise RuntimeError("torch sees no CUDA device")
    return f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}"


def on_gpu(ran_there: bool, detail: str) -> str:
    """The detail, or a failure: a GPU check whose model ran on the CPU has not passed."""
    if not ran_there:
        raise RuntimeError(f"not on the GPU: {detail}")
    return detail


def unet_in_fp16_on_cuda(pipe, detail: str) -> str:
    import torch

    return on_gpu(pipe.unet.device.type == "cuda" and pipe.unet.dtype == torch.float16,
                  f"{detail}, unet on {pipe.unet.device} in {pipe.unet.dtype}")


def tiny_sd_fp16() -> str:
    from pipelines import diffusion
    from pipelines.context import RunContext
    from pipelines.generate import GenerateParams, generate
    from tests.tiny_diffusion import build_tiny_pipeline

    build_tiny_pipeline(MODELS / "diffusers" / "tiny-sd")
    result = generate({}, GenerateParams(prompt="a cat", model="tiny-sd", steps=4, seed=1, width=64, height=64),
                      RunContext())
    pipe = diffusion.load_pipeline("tiny-sd", "text2image", RunContext())
    return unet_in_fp16_on_cuda(pipe, f"{len(result.images)} image")


def sd_inpainting_512() -> str:
    from pipelines import diffusion
    from pipelines.context import RunContext
    from tests.tiny_diffusion import build_tiny_pipeline

    build_tiny_pipeline(MODELS / "diffusers" / "tiny-inpaint", inpainting=True)
    stages = []
    remove(dict(engine="sd-inpaint", model="tiny-inpaint", steps=4, seed=1),
           RunContext(report=lambda p, stage, _: stages.append(stage)))
    pipe = diffusion.load_pipeline("tiny-inpaint", "inpaint", RunContext())
    work = next(stage for stage in stages if stage.startswith("removing with"))
    return unet_in_fp16_on_cuda(pipe, work.split(" on a ")[1])


def remove(params: dict, ctx=None):
    from PIL import Image
    from skimage import data

    from pipelines.context import RunContext
    from pipelines.remove_object import RemoveObjectParams, remove_object

    photo = Image.fromarray(data.chelsea())
    mask = Image.new("L", photo.size, 0)
    mask.paste(255, (200, 120, 260, 190))
    return remove_object({"image": photo, "mask": mask}, RemoveObjectParams(dilate=0, feather=0, **params),
                         ctx or RunContext())


def torchscript(engine: str, path: str) -> Callable[[], str]:
    def check() -> str:
        from pipelines.context import RunContext
        from pipelines.registry import load_model
        from pipelines.remove_object import OPERATION
        from tests import standins

        getattr(standins, engine)(MODELS / path)
        result = remove({"engine": engine})
        model = load_model(OPERATION.engines[engine], RunContext())
        device = next(model.parameters()).device
        return on_gpu(device.type == "cuda", f"{result.engine} ran on {device}")

    return check


def onnx_cuda() -> str:
    import numpy as np
    from PIL import Image

    from pipelines.context import RunContext
    from pipelines.face_swap import FaceSwapParams, face_swap
    from pipelines.face_swap.insightface_engine import buffalo_weights, swapper_weights
    from pipelines.onnx_runtime import available_providers, onnx_providers
    from tests import standins

    if "CUDAExecutionProvider" not in available_providers():
        raise RuntimeError(f"no CUDA provider (providers: {available_providers()}); see requirements-gpu.txt")
    detector, recogniser = buffalo_weights()
    standins.scrfd(detector.path)
    standins.arcface(recogniser.path)
    standins.inswapper(swapper_weights().path)
    source = Image.fromarray(standins.face_photo((640, 480), [(9, 7)]))
    target = Image.fromarray(standins.face_photo((640, 480), [(4, 7)], seed=1))
    result = face_swap({"source": source, "target": target}, FaceSwapParams(enhance=0), RunContext())
    swapped = np.asarray(result.images[0])[240, 144]
    if np.abs(swapped - np.array(standins.SWAP_RGB) * 255).max() > 2:
        raise RuntimeError(f"the swapper's colour is not in the face: {swapped.tolist()}")
    return on_gpu(onnx_providers()[0] == "CUDAExecutionProvider", f"providers {onnx_providers()}")


def out_of_memory() -> str:
    import torch

    from pipelines.context import RunContext
    from pipelines.registry import cached, is_out_of_memory, release_models

    baseline = torch.cuda.memory_allocated()
    cached("pipelines.check.ballast", lambda: torch.empty(2**28, device="cuda"), RunContext())  # 1 GiB kept
    try:
        torch.empty(2**50, device="cuda")
    except Exception as exc:  # noqa: BLE001 - the check is what it is
        if not is_out_of_memory(exc):
            raise RuntimeError(f"not recognised as out of memory: {type(exc).__name__}: {exc}") from None
    release_models()
    kept = torch.cuda.memory_allocated() - baseline
    if kept >= 2**28:
        raise RuntimeError(f"recognised, but {kept} bytes are still held after the models were dropped")
    return f"recognised; after release {kept} bytes above baseline"


CHECKS: list[tuple[str, Callable[[], str]]] = [
    ("torch sees CUDA", cuda),
    ("tiny SD text-to-image, fp16", tiny_sd_fp16),
    ("tiny SD inpainting at 512 px", sd_inpainting_512),
    ("LaMa stand-in (TorchScript)", torchscript("lama", "lama/big-lama.pt")),
    ("MI-GAN stand-in (TorchScript)", torchscript("migan", "migan/migan_traced.pt")),
    ("onnxruntime CUDA: insightface stand-ins", onnx_cuda),
    ("out of memory: recognised and freed", out_of_memory),
]


def main() -> None:
    rows = []
    for name, check in CHECKS:
        started = time.perf_counter()
        try:
            outcome, detail = "ok", check()
        except Exception as exc:  # noqa: BLE001 - every check reports, none stops the run
            outcome, detail = "FAILED", f"{type(exc).__name__}: {exc}"
            traceback.print_exc(limit=3)
        rows.append((name, outcome, f"{time.perf_counter() - started:.1f} s", detail))
    width = max(len(row[0]) for row in rows)
    print(f"\n{'check'.ljust(width)}  result  time     detail")
    for name, outcome, seconds, detail in rows:
        print(f"{name.ljust(width)}  {outcome.ljust(6)}  {seconds.ljust(7)}  {detail}")


if __name__ == "__main__":
    main()
