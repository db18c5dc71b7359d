"""OpenCV's non-photorealistic rendering filters: cheap, no model."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
from PIL import Image

from pipelines.context import RunContext
from pipelines.style_transfer.base import StyleEngine, StyleTransferParams


def _stylization(rgb: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.stylization(rgb, sigma_s=60, sigma_r=0.45)


def _pencil(rgb: np.ndarray) -> np.ndarray:
    import cv2

    grey, _ = cv2.pencilSketch(rgb, sigma_s=60, sigma_r=0.07, shade_factor=0.05)
    return np.repeat(grey[..., None], 3, axis=2)


def _colour_pencil(rgb: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.pencilSketch(rgb, sigma_s=60, sigma_r=0.07, shade_factor=0.05)[1]


def _detail(rgb: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.detailEnhance(rgb, sigma_s=10, sigma_r=0.15)


class OpenCVFilterEngine(StyleEngine):
    def __init__(self, name: str, label: str, apply: Callable[[np.ndarray], np.ndarray]):
        self.name, self.label, self.apply = name, label, apply

    def load(self) -> Any:
        return None

    def stylize(self, model: Any, image: Image.Image, style_image: Image.Image | None,
                params: StyleTransferParams, ctx: RunContext) -> Image.Image:
        return Image.fromarray(self.apply(np.ascontiguousarray(np.asarray(image.convert("RGB")))))


ENGINES = [
    OpenCVFilterEngine("opencv-stylization", "OpenCV painterly stylization", _stylization),
    OpenCVFilterEngine("opencv-pencil", "OpenCV pencil sketch", _pencil),
    OpenCVFilterEngine("opencv-color-pencil", "OpenCV colour pencil sketch", _colour_pencil),
    OpenCVFilterEngine("opencv-detail", "OpenCV detail enhance", _detail),
]
