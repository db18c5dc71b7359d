"""Small image adjustments several operations share: sizing, blending, colour."""
from __future__ import annotations

from PIL import Image


def fit_long_side(image: Image.Image, max_side: int) -> Image.Image:
    """Shrink so the longer side is at most `max_side`; never enlarges."""
    width, height = image.size
    if max(width, height) <= max_side:
        return image
    scale = max_side / max(width, height)
    return image.resize((max(1, round(width * scale)), max(1, round(height * scale))), Image.Resampling.LANCZOS)


def blend_with_original(original: Image.Image, result: Image.Image, strength: float) -> Image.Image:
    """`strength` 1 keeps the result, 0 gives back the original exactly."""
    if strength >= 1.0:
        return result
    if strength <= 0.0:
        return original
    return Image.blend(original.convert("RGB"), result.convert("RGB").resize(original.size), strength)


def keep_colours(result: Image.Image, original: Image.Image) -> Image.Image:
    """The result's brightness with the original's colour (chroma of YCbCr)."""
    luma, _, _ = result.convert("YCbCr").split()
    _, blue, red = original.convert("RGB").resize(result.size, Image.Resampling.LANCZOS).convert("YCbCr").split()
    return Image.merge("YCbCr", (luma, blue, red)).convert("RGB")
