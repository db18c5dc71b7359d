"""Run an image-to-image model tile by tile, for models that take one big call.

A fully convolutional model (the neural style presets) can work on overlapping
tiles whose results are blended with linear ramps over the overlap. Between
tiles the job can be cancelled and the progress bar moves, which one call over
a 16 MP photo allows neither.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from PIL import Image

from pipelines.context import RunContext

TILE = 1024  # images up to this size on both sides run in one call, as before
OVERLAP = 128


def _starts(length: int, tile: int, overlap: int) -> list[int]:
    if length <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, length - tile, step))
    return starts + [length - tile]


def _ramp(length: int, overlap: int, fade_in: bool, fade_out: bool) -> np.ndarray:
    weights = np.ones(length, np.float32)
    ramp = np.linspace(1 / (overlap + 1), 1, overlap, dtype=np.float32)
    if fade_in:
        weights[:overlap] = ramp
    if fade_out:
        weights[-overlap:] = ramp[::-1]
    return weights


def run_tiled(image: Image.Image, model: Callable[[Image.Image], Image.Image], ctx: RunContext, stage: str,
              tile: int = TILE, overlap: int = OVERLAP) -> Image.Image:
    """`model(tile) -> same-size RGB tile` over the whole RGB `image`, checking for cancel
    and reporting "stage: tile i/n" between tiles."""
    width, height = image.size
    xs, ys = _starts(width, tile, overlap), _starts(height, tile, overlap)
    if len(xs) == len(ys) == 1:
        return model(image)
    total = np.zeros((height, width, 3), np.float32)
    weight = np.zeros((height, width, 1), np.float32)
    count = len(xs) * len(ys)
    for index, (top, left) in enumerate((y, x) for y in ys for x in xs):
        ctx.check_cancelled()
        ctx.progress(100 * index / count, f"{stage}: tile {index + 1}/{count}")
        box = (left, top, min(left + tile, width), min(top + tile, height))
        out = np.asarray(model(image.crop(box)).convert("RGB").resize((box[2] - box[0], box[3] - box[1])),
                         np.float32)
        w = (_ramp(out.shape[0], overlap, top > 0, box[3] < height)[:, None]
             * _ramp(out.shape[1], overlap, left > 0, box[2] < width)[None, :])[..., None]
        total[box[1]:box[3], box[0]:box[2]] += out * w
        weight[box[1]:box[3], box[0]:box[2]] += w
    ctx.check_cancelled()
    return Image.fromarray(np.clip(total / weight + 0.5, 0, 255).astype(np.uint8))
