"""MediaPipe selfie segmentation: people only, but its model ships in the wheel."""
from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from pipelines.remove_background.base import BackgroundEngine


class MediapipePersonEngine(BackgroundEngine):
    name = "mediapipe-person"
    label = "MediaPipe person segmentation (offline, people only)"
    hint = "It cuts out people only; rembg models cut out any subject."

    def load(self) -> Any:
        from mediapipe.python.solutions.selfie_segmentation import SelfieSegmentation

        return SelfieSegmentation(model_selection=0)

    def segment(self, model: Any, image: Image.Image) -> Image.Image:
        result = model.process(np.asarray(image.convert("RGB")))
        if result.segmentation_mask is None:
            return Image.new("L", image.size, 0)
        mask = np.clip(result.segmentation_mask * 255.0, 0, 255).astype(np.uint8)
        return Image.fromarray(mask, "L")
