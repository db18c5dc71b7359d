"""OpenCV's classical inpainting (Telea; Navier-Stokes): no weights, fine for small objects."""
from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from pipelines.context import RunContext
from pipelines.remove_object.base import InpaintEngine, RemoveObjectParams


class OpenCVInpaintEngine(InpaintEngine):
    light = True

    def __init__(self, name: str, label: str, method: str):
        self.name, self.label, self.method = name, label, method
        self.hint = "For larger objects LaMa fills in far more convincingly."

    def load(self) -> Any:
        return None

    def inpaint(self, model: Any, image: Image.Image, mask: Image.Image, params: RemoveObjectParams,
                ctx: RunContext) -> Image.Image:
        import cv2

        flag = cv2.INPAINT_TELEA if self.method == "telea" else cv2.INPAINT_NS
        filled = cv2.inpaint(np.asarray(image), np.asarray(mask), 5, flag)
        return Image.fromarray(filled)


ENGINES = [
    OpenCVInpaintEngine("opencv-telea", "OpenCV Telea (no model)", "telea"),
    OpenCVInpaintEngine("opencv-ns", "OpenCV Navier-Stokes (no model)", "ns"),
]
