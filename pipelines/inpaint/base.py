"""What every object-removal engine provides, and the operation's parameters."""
from __future__ import annotations

import abc
from typing import Any

from PIL import Image
from pydantic import BaseModel, Field, field_validator

from pipelines.context import RunContext
from pipelines.diffusion import MAX_SEED, check_model_name
from pipelines.registry import AUTO, Engine


class RemoveObjectParams(BaseModel):
    engine: str = Field(AUTO, description="Engine name; 'auto' takes LaMa when its weights are present, else OpenCV.")
    dilate: int = Field(8, ge=0, le=128, description="Grow the mask by this many pixels (catches edges and shadows).")
    feather: int = Field(4, ge=0, le=64, description="Soften the pasted edge over this many pixels.")
    prompt: str = Field("", max_length=1000, description="For Stable Diffusion: what should be there instead.")
    sd_model: str = Field("sd-2-inpainting", max_length=200, description="Model for the sd-inpaint engine.")
    steps: int = Field(25, ge=1, le=150, description="Denoising steps for sd-inpaint.")
    seed: int = Field(-1, ge=-1, le=MAX_SEED, description="Seed for sd-inpaint; -1 picks one.")

    _sd_model = field_validator("sd_model")(lambda cls, value: check_model_name(value))


class InpaintEngine(Engine):
    work_size: int | None = None  # longest side the engine works at; None = the crop's own size
    pad_mod = 1  # the engine needs sides that are multiples of this

    @abc.abstractmethod
    def inpaint(self, model: Any, image: Image.Image, mask: Image.Image, params: RemoveObjectParams,
                ctx: RunContext) -> Image.Image:
        """RGB crop + "L" mask (255 = remove), same size -> RGB crop of that size."""
