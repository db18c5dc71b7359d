"""LaMa, the TorchScript `big-lama.pt` that IOPaint and lama-cleaner use:
model(image [1,3,H,W] in 0..1, mask [1,1,H,W] in {0,1}) -> image [1,3,H,W] in 0..1."""
from __future__ import annotations

import os
from typing import Any

import numpy as np
from PIL import Image

from pipelines.context import RunContext
from pipelines.inpaint.base import InpaintEngine, RemoveObjectParams
from pipelines.weights import WeightFile, models_home

LAMA_URL = "https://github.com/Sanster/models/releases/download/add_big_lama/big-lama.pt"
LAMA_MD5 = "e3aa4aaa15225a33ec84f9f4bc47e500"


class LamaEngine(InpaintEngine):
    name = "lama"
    label = "LaMa (big-lama.pt)"
    device = "gpu"
    work_size = 1024
    pad_mod = 8

    def weights(self) -> list[WeightFile]:
        url = os.environ.get("STUDIO_LAMA_URL", LAMA_URL)
        md5 = None if "STUDIO_LAMA_URL" in os.environ else LAMA_MD5  # a mirror may carry another build
        return [WeightFile("big-lama.pt", models_home() / "lama", url, md5)]

    def load(self) -> Any:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
        model = torch.jit.load(str(self.weights()[0].path), map_location=device)
        model.eval()
        return model

    def inpaint(self, model: Any, image: Image.Image, mask: Image.Image, params: RemoveObjectParams,
                ctx: RunContext) -> Image.Image:
        import torch

        device = next(model.parameters()).device if list(model.parameters()) else torch.device("cpu")
        pixels = torch.from_numpy(np.asarray(image, np.float32) / 255.0).permute(2, 0, 1)[None].to(device)
        holes = torch.from_numpy((np.asarray(mask) > 127).astype(np.float32))[None, None].to(device)
        with torch.inference_mode():
            filled = model(pixels, holes)[0].permute(1, 2, 0).float().cpu().numpy()
        return Image.fromarray(np.clip(filled * 255 + 0.5, 0, 255).astype(np.uint8))
