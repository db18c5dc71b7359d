"""Style transfer: a photo re-rendered in a preset style, in the style of any
picture, through OpenCV's filters, or (on GPU workers) Stable Diffusion img2img.
Sizing, strength and "keep colours" are done here, the same for every engine."""
from __future__ import annotations

from PIL import Image

from pipelines import diffusion
from pipelines.adjust import blend_with_original, fit_long_side, keep_colours
from pipelines.context import RunContext
from pipelines.errors import InvalidInput
from pipelines.registry import AUTO, Example, Operation, Result, load_model, pick_engine
from pipelines.style_transfer.base import PRESET_COUNT, PRESET_NAMES, SD_STYLES, StyleEngine, StyleTransferParams
from pipelines.style_transfer.neural import NeuralImageEngine, NeuralPresetEngine
from pipelines.style_transfer.opencv_filters import ENGINES as OPENCV_ENGINES
from pipelines.style_transfer.sd_img2img import StableDiffusionImg2ImgEngine

__all__ = ["OPERATION", "PRESET_COUNT", "PRESET_NAMES", "SD_STYLES", "StyleTransferParams", "style_transfer"]


def style_transfer(inputs: dict[str, Image.Image], params: StyleTransferParams, ctx: RunContext) -> Result:
    photo = inputs["image"]
    style_image = inputs.get("style_image")
    requested = params.engine
    if requested == AUTO:
        requested = NeuralImageEngine.name if style_image is not None else NeuralPresetEngine.name
    params = params.model_copy(update={"seed": diffusion.resolve_seed(params.seed)})
    engine = pick_engine(OPERATION, requested, ctx.span(0, 20))
    if engine.needs_style_image and style_image is None:
        raise InvalidInput(f"{engine.label} needs a style image: upload the picture whose style to use.")
    image = fit_long_side(photo.convert("RGB"), params.max_side)
    if params.strength == 0:
        return Result([_with_alpha_of(photo, image, params)], engine.name, detail="strength 0: the photo unchanged")
    model = load_model(engine, ctx.span(20, 30))
    ctx.check_cancelled()
    ctx.progress(30, f"stylising: {engine.describe(params)}")
    stylised = engine.stylize(model, image, style_image, params, ctx.span(30, 90)).resize(image.size)
    ctx.check_cancelled()
    ctx.progress(90, "blending")
    if params.keep_colors:
        stylised = keep_colours(stylised, image)
    if not engine.strength_is_denoising:
        stylised = blend_with_original(image, stylised, params.strength)
    return Result([_with_alpha_of(photo, stylised, params)], engine.name, detail=engine.describe(params))


def _with_alpha_of(photo: Image.Image, result: Image.Image, params: StyleTransferParams) -> Image.Image:
    """Transparent areas of the photo stay transparent."""
    if photo.mode != "RGBA":
        return result
    result = result.convert("RGBA")
    result.putalpha(fit_long_side(photo.getchannel("A"), params.max_side))
    return result


_engines: list[StyleEngine] = [NeuralPresetEngine(), NeuralImageEngine(), *OPENCV_ENGINES,
                               StableDiffusionImg2ImgEngine()]

OPERATION: Operation[StyleEngine] = Operation(
    name="style_transfer",
    title="Style transfer",
    params=StyleTransferParams,
    inputs=("image",),
    optional_inputs=("style_image",),
    engines={engine.name: engine for engine in _engines},
    run=style_transfer,
    auto_order=(NeuralPresetEngine.name,),
    first_use=(NeuralPresetEngine.name,),
    example=Example({"image": "cat.jpg", "style_image": "coffee.jpg"}, {"max_side": 128}, (128, 85), "RGB"),
)
