"""Remove object: the user paints over something, it is gone.

Written once here for every engine (IOPaint's "crop" strategy): the mask is
grown by `dilate`, the engine sees only a crop around the mask's bounding box
(with context around it), resized to its working size; its output is scaled
back and pasted through a feathered mask, so every pixel outside the grown,
feathered mask is exactly the input's and a 12 MP photo keeps its resolution.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

from pipelines import diffusion
from pipelines.context import RunContext
from pipelines.errors import InvalidInput
from pipelines.imaging import to_standard_mode
from pipelines.registry import Example, Operation, Result, load_model, pick_engine
from pipelines.remove_object.base import InpaintEngine, RemoveObjectParams
from pipelines.remove_object.lama import LamaEngine
from pipelines.remove_object.mi_gan import MiganEngine
from pipelines.remove_object.opencv_inpaint import ENGINES as OPENCV_ENGINES
from pipelines.remove_object.sd_inpaint import StableDiffusionInpaintEngine

__all__ = ["OPERATION", "RemoveObjectParams", "remove_object", "mask_from"]


def mask_from(size: tuple[int, int], mask: Image.Image) -> Image.Image:
    """The user's mask as "L" at the photo's `size` (white, or painted, = remove);
    InvalidInput when it is empty or does not fit the photo."""
    if mask.mode not in ("1", "L", "LA", "RGB", "RGBA"):
        mask = to_standard_mode(mask)  # a palette's transparency, 16 bits: read as every input is
    if mask.mode in ("RGBA", "LA") and mask.getchannel("A").getextrema()[0] < 255:
        binary = mask.getchannel("A").point(lambda v: 255 if v > 0 else 0)  # an editor layer: painted where opaque
    else:
        binary = mask.convert("L").point(lambda v: 255 if v > 127 else 0)
    if binary.getbbox() is None:
        raise InvalidInput("The mask is empty: paint over what should disappear.")
    width, height = size
    if binary.size != size:
        if abs(binary.width / binary.height - width / height) > 0.01:
            raise InvalidInput(f"The mask is {binary.width}x{binary.height} but the photo is "
                               f"{width}x{height}; they must have the same shape.")
        binary = binary.resize(size, Image.Resampling.NEAREST)
    return binary


def check_inputs(sizes: dict[str, tuple[int, int]], decoded: dict[str, Image.Image],
                 params: RemoveObjectParams) -> None:
    """Run at submit, on the photo's size (read from its header) and the mask (decoded,
    in the mode it is stored in), so an empty or misfit mask never becomes a job."""
    mask_from(sizes["image"], decoded["mask"])


def remove_object(inputs: dict[str, Image.Image], params: RemoveObjectParams, ctx: RunContext) -> Result:
    photo = inputs["image"]
    mask = grow(mask_from(photo.size, inputs["mask"]), params.dilate)
    params = params.model_copy(update={"seed": diffusion.resolve_seed(params.seed)})
    engine = pick_engine(OPERATION, params.engine, ctx.span(0, 20))
    model = load_model(engine, ctx.span(20, 30))
    ctx.check_cancelled()

    box = crop_box(mask, photo.size)
    crop, crop_mask = photo.convert("RGB").crop(box), mask.crop(box)
    work, work_mask = to_working_size(crop, crop_mask, engine)
    ctx.progress(30, f"removing with {engine.label} on a {work.width}x{work.height} crop")
    filled = engine.inpaint(model, work, work_mask, params, ctx.span(30, 90))
    ctx.check_cancelled()
    ctx.progress(90, "pasting back")
    filled = filled.crop((0, 0, *work_size_before_padding(crop, engine))).resize(crop.size, Image.Resampling.LANCZOS)
    alpha = feathered(crop_mask, params.feather)
    result = photo.copy()
    pasted = Image.composite(filled, crop, alpha)
    if photo.mode == "RGBA":
        pasted.putalpha(photo.getchannel("A").crop(box))
    result.paste(pasted, box[:2])
    detail = f"seed {params.seed}" if engine.name == StableDiffusionInpaintEngine.name else ""
    return Result([result], engine.name, detail=detail)


def grow(mask: Image.Image, pixels: int) -> Image.Image:
    """Dilate by `pixels`, filtering only around the mask (a max filter over 12 MP is slow)."""
    if not pixels:
        return mask
    left, top, right, bottom = mask.getbbox()
    box = (max(0, left - pixels), max(0, top - pixels), min(mask.width, right + pixels),
           min(mask.height, bottom + pixels))
    grown = mask.copy()
    grown.paste(mask.crop(box).filter(ImageFilter.MaxFilter(2 * pixels + 1)), box[:2])
    return grown


def crop_box(mask: Image.Image, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The mask's bounding box with context around it: half its size, at least 64 px."""
    left, top, right, bottom = mask.getbbox()
    margin = max(64, max(right - left, bottom - top) // 2)
    return (max(0, left - margin), max(0, top - margin), min(size[0], right + margin), min(size[1], bottom + margin))


def to_working_size(crop: Image.Image, mask: Image.Image, engine: InpaintEngine) -> tuple[Image.Image, Image.Image]:
    """Scale to the engine's working size, then pad (by edge reflection) to its multiple."""
    width, height = work_size_before_padding(crop, engine)
    if (width, height) != crop.size:
        crop = crop.resize((width, height), Image.Resampling.LANCZOS)
        mask = mask.resize((width, height), Image.Resampling.NEAREST)
    pad_w, pad_h = -width % engine.pad_mod, -height % engine.pad_mod
    if pad_w or pad_h:
        crop = Image.fromarray(np.pad(np.asarray(crop), ((0, pad_h), (0, pad_w), (0, 0)), mode="reflect"))
        mask = Image.fromarray(np.pad(np.asarray(mask), ((0, pad_h), (0, pad_w)), mode="constant"))
    return crop, mask


def work_size_before_padding(crop: Image.Image, engine: InpaintEngine) -> tuple[int, int]:
    """The crop's size scaled into the engine's range: down to `work_size`, or up to
    `min_size` (SD and MI-GAN were trained at 512 px and do poorly on small crops)."""
    width, height = crop.size
    longest = max(width, height)
    target = min(longest, engine.work_size or longest)
    target = max(target, engine.min_size or target)
    if target == longest:
        return width, height
    scale = target / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


def feathered(mask: Image.Image, pixels: int) -> Image.Image:
    """Soft edge outside the mask; the mask itself stays fully replaced."""
    if not pixels:
        return mask
    soft = mask.filter(ImageFilter.GaussianBlur(pixels / 2))
    return Image.fromarray(np.maximum(np.asarray(soft), np.asarray(mask)))


_engines: list[InpaintEngine] = [LamaEngine(), MiganEngine(), *OPENCV_ENGINES, StableDiffusionInpaintEngine()]

OPERATION: Operation[InpaintEngine] = Operation(
    name="remove_object",
    title="Remove object",
    params=RemoveObjectParams,
    inputs=("image", "mask"),
    engines={engine.name: engine for engine in _engines},
    run=remove_object,
    check_inputs=check_inputs,
    masks=("mask",),
    auto_order=(LamaEngine.name, MiganEngine.name),
    first_use=(LamaEngine.name, MiganEngine.name, "opencv-telea"),
    example=Example({"image": "rocket.jpg", "mask": "rocket-mask.png"}, {}, (640, 427), "RGB"),
)
