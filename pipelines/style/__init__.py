"""Style transfer: a photo re-rendered in a preset style, in the style of any
picture, through OpenCV's filters, or (on GPU workers) Stable Diffusion img2img.
Sizing, strength and "keep colours" are done here, the same for every engine."""
from __future__ import annotations

from PIL import Image

from pipelines.adjust import blend_with_original, fit_long_side, keep_colours
from pipelines.context import RunContext
from pipelines.errors import InvalidInput
from pipelines.registry import AUTO, Operation, Result, load_model, pick_engine
from pipelines.style.base import PRESET_COUNT, StyleEngine, StyleTransferParams
from pipelines.style.neural import NeuralImageEngine, NeuralPresetEngine
from pipelines.style.opencv_filters import ENGINES as OPENCV_ENGINES

__all__ = ["OPERATION", "PRESET_COUNT", "StyleTransferParams", "style_transfer"]


def style_transfer(inputs: dict[str, Image.Image], params: StyleTransferParams, ctx: RunContext) -> Result:
    photo = inputs["image"]
    style_image = inputs.get("style_image")
    requested = params.engine
    if requested == AUTO:
        requested = NeuralImageEngine.name if style_image is not None else NeuralPresetEngine.name
    engine: StyleEngine = pick_engine(OPERATION, requested, ctx.span(0, 20))  # type: ignore[assignment]
    if engine.needs_style_image and style_image is None:
        raise InvalidInput(f"{engine.label} needs a style image: upload the picture whose style to use.")
    image = fit_long_side(photo.convert("RGB"), params.max_side)
    model = load_model(engine, ctx.span(20, 30))
    ctx.check_cancelled()
    ctx.progress(30, f"stylising: {engine.describe(params)}")
    stylised = engine.stylize(model, image, style_image, params)
    ctx.check_cancelled()
    ctx.progress(90, "blending")
    if params.keep_colors:
        stylised = keep_colours(stylised, image)
    result = blend_with_original(image, stylised.resize(image.size), params.strength)
    if photo.mode == "RGBA":
        result = result.convert("RGBA")
        result.putalpha(fit_long_side(photo.getchannel("A"), params.max_side))
    return Result([result], engine.name, detail=engine.describe(params))


_engines: list[StyleEngine] = [NeuralPresetEngine(), NeuralImageEngine(), *OPENCV_ENGINES]

OPERATION = Operation(
    name="style_transfer",
    title="Style transfer",
    params=StyleTransferParams,
    inputs=("image",),
    optional_inputs=("style_image",),
    engines={engine.name: engine for engine in _engines},
    run=style_transfer,
    auto_order=(NeuralPresetEngine.name,),
    first_use=(NeuralPresetEngine.name,),
)
