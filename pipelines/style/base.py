"""What every style-transfer engine provides, and the operation's parameters."""
from __future__ import annotations

import abc
from typing import Any

from PIL import Image
from pydantic import BaseModel, Field

from pipelines.registry import AUTO, Engine

PRESET_COUNT = 26


class StyleTransferParams(BaseModel):
    engine: str = Field(AUTO, description="Engine name; 'auto' uses the style image if one is given, else a preset.")
    preset: int = Field(0, ge=0, lt=PRESET_COUNT, description="Preset style for the neural-preset engine (0-25).")
    strength: float = Field(1.0, ge=0.0, le=1.0, description="1 = fully stylised, 0 = the photo unchanged.")
    keep_colors: bool = Field(False, description="Keep the photo's colours, take only the style's texture.")
    max_side: int = Field(1024, ge=64, le=4096, description="Longest side of the output in pixels (never enlarges).")


class StyleEngine(Engine):
    needs_style_image = False

    @abc.abstractmethod
    def stylize(self, model: Any, image: Image.Image, style_image: Image.Image | None,
                params: StyleTransferParams) -> Image.Image:
        """RGB photo (already at output size) -> stylised RGB image of the same size."""

    def describe(self, params: StyleTransferParams) -> str:
        """Which style ran, for the result's caption."""
        return self.label
