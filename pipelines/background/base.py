"""What every background-removal engine provides: a soft foreground mask."""
from __future__ import annotations

import abc
import re
from typing import Any, Literal

from PIL import Image
from pydantic import BaseModel, Field, field_validator

from pipelines.registry import AUTO, Engine

HEX_COLOUR = re.compile(r"^#?([0-9a-fA-F]{6})$")


class RemoveBackgroundParams(BaseModel):
    engine: str = Field(AUTO, description="Engine name, or 'auto' for the best one available.")
    output: Literal["transparent", "mask", "color"] = Field(
        "transparent", description="Transparent PNG, the mask itself, or the subject on a solid colour."
    )
    color: str = Field("#ffffff", description="Background colour for output='color', as #rrggbb.")

    @field_validator("color", mode="before")
    @classmethod
    def _hex_colour(cls, value: str) -> str:
        match = HEX_COLOUR.match(str(value).strip())
        if not match:
            raise ValueError("colour must look like #rrggbb")
        return "#" + match.group(1).lower()


class BackgroundEngine(Engine):
    @abc.abstractmethod
    def segment(self, model: Any, image: Image.Image) -> Image.Image:
        """RGB image -> mode "L" mask of the same size, 255 = foreground."""
