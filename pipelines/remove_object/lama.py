"""LaMa, the TorchScript `big-lama.pt` that IOPaint and lama-cleaner use:
model(image [1,3,H,W] in 0..1, mask [1,1,H,W] in {0,1}) -> image [1,3,H,W] in 0..1."""
from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from pipelines.context import RunContext
from pipelines.remove_object.base import RemoveObjectParams, TorchScriptInpaintEngine, to_tensors

LAMA_URL = "https://github.com/Sanster/models/releases/download/add_big_lama/big-lama.pt"
LAMA_MD5 = "e3aa4aaa15225a33ec84f9f4bc47e500"


class LamaEngine(TorchScriptInpaintEngine):
    name = "lama"
    label = "LaMa (big-lama.pt)"
    device = "gpu"
    work_size = 1024
    pad_mod = 8
    filename, url, md5, mirror = "big-lama.pt", LAMA_URL, LAMA_MD5, "STUDIO_LAMA_URL"

    def inpaint(self, model: Any, image: Image.Image, mask: Image.Image, params: RemoveObjectParams,
                ctx: RunContext) -> Image.Image:
        import torch

        pixels, holes = to_tensors(model, image, mask)
        with torch.inference_mode():
            filled = model(pixels, holes)[0].permute(1, 2, 0).float().cpu().numpy()
        return Image.fromarray(np.clip(filled * 255 + 0.5, 0, 255).astype(np.uint8))
