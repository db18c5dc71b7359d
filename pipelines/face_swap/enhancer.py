"""The face enhancer that runs after insightface's swap: inswapper works at 128 px, so
a swapped face is blurry next to the sharp photo; GFPGAN 1.4 (the default) or CodeFormer
restores it, as FaceFusion and roop do.

The models are FaceFusion's ONNX exports, checked against the CRC32 FaceFusion publishes
beside each: input and output 1x3x512x512, RGB in -1..1, both on FFHQ's 512 px template;
CodeFormer also takes its fidelity `weight` (a double; 1, FaceFusion's default, keeps the
face closest to what it was given). Each face is aligned by its five points, enhanced,
and pasted back through a feathered mask, blended by the strength; nothing else in the
photo changes.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from pipelines.context import RunContext
from pipelines.face_swap.base import Enhancer, footprint
from pipelines.onnx_runtime import onnx_providers
from pipelines.registry import cached
from pipelines.weights import WeightFile, ensure_weights, models_home

SIZE = 512
# FFHQ's five-point template (eyes, nose tip, mouth corners) as fractions of the crop.
FFHQ_TEMPLATE = np.array([[0.37691676, 0.46864664], [0.62285697, 0.46912813], [0.50123859, 0.61331904],
                          [0.39308822, 0.72541100], [0.61150205, 0.72490465]], np.float32)
RELEASE = "https://github.com/facefusion/facefusion-assets/releases/download/models-3.0.0"
ENHANCERS = {"gfpgan": ("GFPGAN 1.4", "gfpgan_1.4.onnx"), "codeformer": ("CodeFormer", "codeformer.onnx")}
FIDELITY = 1.0  # CodeFormer's weight: FaceFusion's default


def enhancer_weights(name: Enhancer = "gfpgan") -> WeightFile:
    file = ENHANCERS[name][1]
    return WeightFile(file, models_home() / name, f"{RELEASE}/{file}",
                      hash_url=f"{RELEASE}/{file.replace('.onnx', '.hash')}")


def load_enhancer(name: Enhancer, ctx: RunContext) -> Any:
    """The ONNX session, once per process (the weights fetched first when allowed)."""
    import onnxruntime

    path = ensure_weights(enhancer_weights(name), ctx)
    return cached(f"pipelines.face_swap.{name}",
                  lambda: onnxruntime.InferenceSession(str(path), providers=onnx_providers()), ctx,
                  f"loading the face enhancer ({ENHANCERS[name][0]})")


def enhance_face(session: Any, rgb: np.ndarray, points: np.ndarray, strength: float) -> np.ndarray:
    """`rgb` with the face whose five points are `points` enhanced, blended by `strength` (0-1)."""
    import cv2

    matrix = cv2.estimateAffinePartial2D(points.astype(np.float32), FFHQ_TEMPLATE * SIZE, method=cv2.LMEDS)[0]
    crop = cv2.warpAffine(rgb, matrix, (SIZE, SIZE), borderMode=cv2.BORDER_REPLICATE, flags=cv2.INTER_AREA)
    blob = (crop.astype(np.float32) / 255.0 - 0.5) / 0.5  # RGB, -1..1
    given = {"input": blob.transpose(2, 0, 1)[None], "weight": np.array([FIDELITY], np.double)}
    feed = {node.name: given[node.name] for node in session.get_inputs()}  # as FaceFusion feeds them, by name
    out = session.run(None, feed)[0][0].transpose(1, 2, 0)
    enhanced = ((np.clip(out, -1, 1) + 1) / 2 * 255).round().astype(np.uint8)
    x0, y0, x1, y1 = footprint(matrix, SIZE, rgb.shape)
    inverse = cv2.invertAffineTransform(matrix) - [[0, 0, x0], [0, 0, y0]]  # onto the face's box only
    pasted = cv2.warpAffine(enhanced, inverse, (x1 - x0, y1 - y0), borderMode=cv2.BORDER_REPLICATE)
    weight = cv2.warpAffine(_feathered_box(), inverse, (x1 - x0, y1 - y0))[..., None] * strength
    result = rgb.copy()
    result[y0:y1, x0:x1] = (pasted * weight + rgb[y0:y1, x0:x1] * (1 - weight)).round().astype(np.uint8)
    return result


def _feathered_box() -> np.ndarray:
    """1 inside the crop, fading to 0 over its outer tenth, so no seam shows."""
    import cv2

    border = SIZE // 10
    box = np.zeros((SIZE, SIZE), np.float32)
    box[border:-border, border:-border] = 1
    return cv2.GaussianBlur(box, (0, 0), border / 2)
