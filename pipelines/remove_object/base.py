"""What every object-removal engine provides, and the operation's parameters."""
from __future__ import annotations

import abc
import os
from typing import Any

import numpy as np
from PIL import Image
from pydantic import BaseModel, Field, field_validator

from pipelines.context import RunContext
from pipelines.diffusion import check_model_name, model_field, seed_field, steps_field
from pipelines.imaging import OutputFormat, format_field
from pipelines.registry import AUTO, Engine
from pipelines.weights import WeightFile, models_home

SD_GROUP = "Stable Diffusion inpainting (engine sd-inpaint, GPU workers)"


class RemoveObjectParams(BaseModel):
    """The form follows this model (ui.form): `json_schema_extra` holds the control hints."""

    engine: str = Field(AUTO, description="Engine name; 'auto' takes LaMa, else MI-GAN, when a worker has its "
                                          "weights, else OpenCV.",
                        json_schema_extra={"widget": "engine",
                                           "auto_label": "Auto (LaMa or MI-GAN if present, else OpenCV)"})
    dilate: int = Field(8, ge=0, le=128, description="Grow the mask by this many pixels (catches edges and shadows).",
                        json_schema_extra={"label": "Grow the mask (px)", "row": "edge"})
    feather: int = Field(4, ge=0, le=64, description="Soften the pasted edge over this many pixels.",
                         json_schema_extra={"label": "Feather the edge (px)", "row": "edge"})
    prompt: str = Field("", max_length=1000, description="For Stable Diffusion: what should be there instead.",
                        json_schema_extra={"label": "What should be there instead (optional)", "group": SD_GROUP})
    model: str = model_field("sd-2-inpainting", "sd-inpaint", SD_GROUP)
    steps: int = steps_field(25, "sd-inpaint", SD_GROUP)
    seed: int = seed_field("sd-inpaint", SD_GROUP)
    format: OutputFormat = format_field()

    _model_name = field_validator("model")(lambda cls, value: check_model_name(value))


class InpaintEngine(Engine):
    work_size: int | None = None  # longest side the engine works at; None = the crop's own size
    min_size: int | None = None  # smaller crops are scaled up to this longest side (the model's training size)
    pad_mod = 1  # the engine needs sides that are multiples of this

    @abc.abstractmethod
    def inpaint(self, model: Any, image: Image.Image, mask: Image.Image, params: RemoveObjectParams,
                ctx: RunContext) -> Image.Image:
        """RGB crop + "L" mask (255 = remove), same size -> RGB crop of that size."""


class TorchScriptInpaintEngine(InpaintEngine):
    """A model shipped as one TorchScript file from IOPaint's releases (LaMa, MI-GAN),
    pinned by IOPaint's md5; the environment variable `mirror` names a mirror, held to
    the same pin. It loads on the GPU when there is one."""

    filename: str
    url: str
    md5: str
    mirror: str

    def weights(self) -> list[WeightFile]:
        url = os.environ.get(self.mirror) or self.url
        return [WeightFile(self.filename, models_home() / self.name, url, md5=self.md5)]

    def load(self) -> Any:
        import torch

        model = torch.jit.load(str(self.weights()[0].path), map_location="cuda" if torch.cuda.is_available() else "cpu")
        model.eval()
        return model


def to_tensors(model: Any, image: Image.Image, mask: Image.Image) -> tuple[Any, Any]:
    """The crop as [1,3,H,W] RGB in 0..1 and the mask as [1,1,H,W] in {0,1} (1 = fill),
    on the model's device."""
    import torch

    device = next(iter(model.parameters()), torch.empty(0)).device
    pixels = torch.from_numpy(np.asarray(image.convert("RGB"), np.float32) / 255.0).permute(2, 0, 1)[None]
    holes = torch.from_numpy((np.asarray(mask) > 127).astype(np.float32))[None, None]
    return pixels.to(device), holes.to(device)
