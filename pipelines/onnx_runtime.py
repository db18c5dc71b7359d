"""Which onnxruntime execution providers the ONNX engines (rembg, insightface, the face
enhancer) use: CUDA first where this onnxruntime has it, else the CPU.

PyPI's `onnxruntime` (what `rembg[cpu]` installs) has no CUDA provider; a GPU host
installs `onnxruntime-gpu` instead (requirements-gpu.txt). The two wheels share one
module folder, so only one of them can be installed.

    python -m pipelines.onnx_runtime    # warns when torch sees a GPU that ONNX cannot use
"""
from __future__ import annotations

import sys

ACCELERATED = ("CUDAExecutionProvider", "ROCMExecutionProvider")


def available_providers() -> list[str]:
    import onnxruntime

    return list(onnxruntime.get_available_providers())


def onnx_providers() -> list[str]:
    """The providers to open a session with: the first accelerator available, then the CPU."""
    available = available_providers()
    return [p for p in ACCELERATED if p in available][:1] + ["CPUExecutionProvider"]


def gpu_mismatch() -> str | None:
    """A warning when torch sees a CUDA device but onnxruntime cannot use it."""
    import torch

    if torch.cuda.is_available() and not any(p in available_providers() for p in ACCELERATED):
        return ("WARNING: this machine has a CUDA GPU, but onnxruntime has no CUDA provider, so background "
                "removal, face swap and the face enhancer run on the CPU. Install the GPU build: "
                "pip install -r requirements-gpu.txt")
    return None


if __name__ == "__main__":
    warning = gpu_mismatch()
    if warning:
        print(warning, file=sys.stderr)
