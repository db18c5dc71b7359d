"""Generate: text to image with Stable Diffusion (diffusers), on GPU workers.

Each image carries its parameters in a PNG text chunk named "parameters", in the
format AUTOMATIC1111 and others write, so the Generate tab (and those tools) can
read them back.
"""
from __future__ import annotations

import contextlib
from typing import Any

from PIL import Image
from pydantic import AliasChoices, BaseModel, Field, field_validator, model_validator

from pipelines import diffusion
from pipelines.context import RunContext
from pipelines.imaging import OutputFormat, format_field
from pipelines.registry import Engine, Example, Operation, Result, pick_engine


class GenerateParams(BaseModel):
    """The form follows this model (ui.form): `json_schema_extra` holds the control hints."""

    prompt: str = Field(..., min_length=1, max_length=2000, json_schema_extra={
        "lines": 3, "placeholder": "a lighthouse on a cliff at dusk, oil painting"})
    negative_prompt: str = Field("", max_length=2000, validation_alias=AliasChoices("negative_prompt", "negative"))
    model: str = Field("sd-turbo", max_length=200,
                       description="Preset (sd-turbo, sdxl-turbo, sd-1.5), a Hugging Face id, or a folder "
                                   "name in <models>/diffusers/.")
    steps: int = Field(4, ge=1, le=150, json_schema_extra={"row": "steps"})
    guidance: float = Field(0.0, ge=0.0, le=30.0, description="Classifier-free guidance (0 for the turbo models).",
                            json_schema_extra={"label": "Guidance (0 for turbo models)", "step": 0.5, "row": "steps"})
    width: int = Field(512, ge=64, le=2048, description="A multiple of 8.",
                       json_schema_extra={"step": 8, "row": "size"})
    height: int = Field(512, ge=64, le=2048, description="A multiple of 8.",
                        json_schema_extra={"step": 8, "row": "size"})
    seed: int = Field(-1, ge=-1, le=diffusion.MAX_SEED, description="-1 picks a random seed; it is reported back.",
                      json_schema_extra={"label": "Seed (-1 = random)", "widget": "number", "row": "seed"})
    num_images: int = Field(1, ge=1, le=8, validation_alias=AliasChoices("num_images", "count"),
                            json_schema_extra={"label": "Images", "row": "seed"})
    engine: str = Field("diffusers", description="Only 'diffusers' (or 'auto').", json_schema_extra={"widget": "none"})
    format: OutputFormat = format_field()

    _model_name = field_validator("model")(lambda cls, value: diffusion.check_model_name(value))

    @field_validator("width", "height")
    @classmethod
    def _multiple_of_8(cls, value: int) -> int:
        if value % 8:
            raise ValueError(f"must be a multiple of 8 (got {value}; {value // 8 * 8} would do)")
        return value

    @model_validator(mode="after")
    def _bounded_work(self) -> GenerateParams:
        """One job's compute: steps × pixels × images, within the studio's budget."""
        work, most = megapixel_steps(self), diffusion.max_work()
        if work > most:
            raise ValueError(f"{self.steps} steps × {self.width}×{self.height} × {self.num_images} image(s) is "
                             f"{work:.0f} megapixel-steps; a job may take at most {most:.0f} "
                             "(STUDIO_MAX_GENERATE_WORK): fewer steps, images or pixels")
        return self


def megapixel_steps(params: GenerateParams) -> float:
    """A Generate job's compute: steps × width × height × images / 10⁶."""
    return params.steps * params.width * params.height * params.num_images / 1e6


class DiffusersEngine(diffusion.UsesDiffusers, Engine):
    name = "diffusers"
    label = "Stable Diffusion (diffusers)"
    device = "gpu"

    def load(self) -> None:  # the pipeline depends on the job's model: see diffusion.load_pipeline
        return None


def generate(inputs: dict[str, Image.Image], params: GenerateParams, ctx: RunContext) -> Result:
    import torch

    pick_engine(OPERATION, params.engine, ctx)
    seed = diffusion.resolve_seed(params.seed)
    pipe = diffusion.load_pipeline(params.model, "text2image", ctx.span(0, 20))
    ctx.progress(20, f"generating {params.num_images} image(s)")
    count = params.num_images
    negative = [params.negative_prompt] * count if params.negative_prompt else None
    images = diffusion.run_steps(
        pipe, params.steps, ctx.span(20, 98), preview_every=max(1, params.steps // 4),
        prompt=[params.prompt] * count, negative_prompt=negative, guidance_scale=params.guidance,
        width=params.width, height=params.height,
        generator=[torch.Generator().manual_seed(seed + i) for i in range(count)])  # image i: seed + i
    for index, image in enumerate(images):
        image.info["parameters"] = format_parameters(params, seed + index)
    return Result(images, DiffusersEngine.name, detail=f"{params.model}, seed {seed}")


def format_parameters(params: GenerateParams, seed: int) -> str:
    """AUTOMATIC1111's "parameters" text."""
    negative = f"\nNegative prompt: {params.negative_prompt}" if params.negative_prompt else ""
    return (f"{params.prompt}{negative}\nSteps: {params.steps}, CFG scale: {params.guidance:g}, Seed: {seed}, "
            f"Size: {params.width}x{params.height}, Model: {params.model}")


MAX_PARAMETERS_TEXT = 20_000  # A1111's text is a few hundred characters; a PNG can carry a megabyte


def parse_parameters(text: str) -> dict[str, Any]:
    """The fields `format_parameters` (or AUTOMATIC1111) wrote, as GenerateParams keys.
    Linear in the text, which is untrusted (it comes from a dropped PNG), and capped."""
    lines = text[:MAX_PARAMETERS_TEXT].strip().split("\n")
    settings = _settings(lines[-1]) if len(lines) > 1 else {}
    prompt_lines = lines[:-1] if settings else lines
    negative = [line for line in prompt_lines if line.startswith("Negative prompt:")]
    found: dict[str, Any] = {
        "prompt": "\n".join(line for line in prompt_lines if not line.startswith("Negative prompt:")),
        "negative_prompt": negative[0].removeprefix("Negative prompt:").strip() if negative else "",
    }
    conversions = {"Steps": ("steps", int), "CFG scale": ("guidance", float), "Seed": ("seed", int),
                   "Model": ("model", str)}
    for key, (field, convert) in conversions.items():
        if key in settings:
            with contextlib.suppress(ValueError):
                found[field] = convert(settings[key][:40])
    width, _, height = settings.get("Size", "").partition("x")
    if width.isdigit() and height.isdigit() and len(width) < 6 and len(height) < 6:
        found["width"], found["height"] = int(width), int(height)
    return found


def _settings(line: str) -> dict[str, str]:
    """"Steps: 4, CFG scale: 0, Seed: 7" -> {"Steps": "4", ...}, by splitting (no regex backtracking)."""
    pairs = (part.partition(":") for part in line.split(","))
    return {key.strip(): value.strip() for key, colon, value in pairs if colon and key.strip()}


OPERATION = Operation(
    name="generate",
    title="Generate",
    params=GenerateParams,
    inputs=(),
    engines={DiffusersEngine.name: DiffusersEngine()},
    run=generate,
    auto_order=(DiffusersEngine.name,),
    first_use=(DiffusersEngine.name,),
    auto_device="gpu",
    time_limit=1800,
    work=megapixel_steps,
    work_unit="megapixel-steps",
    example=Example({}, {"prompt": "a red fox in fresh snow, photo", "steps": 2, "width": 64, "height": 64},
                    (64, 64), "RGB"),
)
