"""Remove background: segment the subject, then cut it out, show the mask, or
put it on a solid colour. Engines only produce the mask; the rest is here."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageColor

from pipelines.context import RunContext
from pipelines.errors import StudioError
from pipelines.registry import Example, Operation, Result, load_model, pick_engine
from pipelines.remove_background.base import BackgroundEngine, RemoveBackgroundParams
from pipelines.remove_background.mediapipe_person import MediapipePersonEngine
from pipelines.remove_background.rembg_models import ENGINES as REMBG_ENGINES


def remove_background(inputs: dict[str, Image.Image], params: RemoveBackgroundParams, ctx: RunContext) -> Result:
    image = inputs["image"]
    engine = pick_engine(OPERATION, params.engine, ctx.span(0, 30))
    ctx.check_cancelled()
    model = load_model(engine, ctx.span(30, 40))
    ctx.check_cancelled()
    ctx.progress(40, f"segmenting with {engine.name}")
    mask = engine.segment(model, image.convert("RGB"))
    if mask.getextrema()[1] < 128:  # not one pixel judged more likely subject than background
        raise StudioError(f"{engine.label} found no subject in this photo, so the cut-out would be empty. "
                          f"{engine.hint}".strip())
    ctx.check_cancelled()
    ctx.progress(90, "compositing")
    return Result([compose(image, mask, params)], engine.name)


def compose(image: Image.Image, mask: Image.Image, params: RemoveBackgroundParams) -> Image.Image:
    """Apply the mask as the output mode asks; an input alpha channel is respected."""
    if image.mode == "RGBA":
        mask = Image.fromarray(_multiply(mask, image.getchannel("A")), "L")
    if params.output == "mask":
        return mask
    subject = image.convert("RGB")
    if params.output == "color":
        background = Image.new("RGB", image.size, ImageColor.getrgb(params.color))
        return Image.composite(subject, background, mask)
    return cutout(subject, mask)


def cutout(subject: Image.Image, mask: Image.Image) -> Image.Image:
    """The subject with `mask` as its alpha. Fully transparent pixels are black, as rembg
    leaves them: their colour shows nowhere, and a 12 MP cut-out's PNG is then about half
    the bytes and half the time to write."""
    visible = mask.point(lambda v: 255 if v else 0)
    result = Image.composite(subject, Image.new("RGB", subject.size), visible)
    result.putalpha(mask)
    return result


def _multiply(a: Image.Image, b: Image.Image) -> np.ndarray:
    return (np.asarray(a, np.uint16) * np.asarray(b, np.uint16) // 255).astype(np.uint8)


_engines: list[BackgroundEngine] = [*REMBG_ENGINES, MediapipePersonEngine()]

OPERATION: Operation[BackgroundEngine] = Operation(
    name="remove_background",
    title="Remove background",
    params=RemoveBackgroundParams,
    inputs=("image",),
    engines={engine.name: engine for engine in _engines},
    run=remove_background,
    auto_order=("birefnet-general", "isnet-general-use", "u2net", "silueta", "u2netp", "u2net_human_seg"),
    first_use=("u2net", "mediapipe-person"),
    time_limit=600,
    example=Example({"image": "astronaut.jpg"}, {}, (512, 512), "RGBA"),
)
