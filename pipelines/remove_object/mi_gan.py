"""MI-GAN, the TorchScript `migan_traced.pt` that IOPaint uses: a small GAN that fills
a 512x512 crop in a fraction of LaMa's time on a CPU. Its one input is
[1,4,512,512]: 0.5 - mask (mask 1 = fill), then the RGB crop in -1..1 with the holes
zeroed; its output is the RGB crop in -1..1 (IOPaint's `iopaint/model/mi_gan.py`)."""
from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from pipelines.context import RunContext
from pipelines.remove_object.base import RemoveObjectParams, TorchScriptInpaintEngine, to_tensors

MIGAN_URL = "https://github.com/Sanster/models/releases/download/migan/migan_traced.pt"
MIGAN_MD5 = "76eb3b1a71c400ee3290524f7a11b89c"


class MiganEngine(TorchScriptInpaintEngine):
    name = "migan"
    label = "MI-GAN (migan_traced.pt, fast on a CPU)"
    device = "cpu"
    hint = "LaMa fills large areas more convincingly."
    work_size = 512
    min_size = 512
    pad_mod = 512  # the traced model takes exactly 512x512
    filename, url, md5, mirror = "migan_traced.pt", MIGAN_URL, MIGAN_MD5, "STUDIO_MIGAN_URL"

    def inpaint(self, model: Any, image: Image.Image, mask: Image.Image, params: RemoveObjectParams,
                ctx: RunContext) -> Image.Image:
        import torch

        pixels, holes = to_tensors(model, image, mask)
        pixels = pixels * 2 - 1
        with torch.inference_mode():
            filled = model(torch.cat([0.5 - holes, pixels * (1 - holes)], dim=1))[0]
        filled = (filled.permute(1, 2, 0).float().cpu().numpy() + 1) * 127.5
        return Image.fromarray(np.clip(filled.round(), 0, 255).astype(np.uint8))
