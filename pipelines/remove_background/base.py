"""What every background-removal engine provides: a soft foreground mask."""
from __future__ import annotations

import abc
from typing import Any, Literal

from PIL import Image, ImageColor
from pydantic import BaseModel, Field, field_validator

from pipelines.imaging import OutputFormat, format_field
from pipelines.registry import AUTO, Engine


class RemoveBackgroundParams(BaseModel):
    """The form follows this model (ui.form): `json_schema_extra` holds the control hints."""

    engine: str = Field(AUTO, description="Engine name, or 'auto' for the best one available.",
                        json_schema_extra={"widget": "engine", "auto_label": "Auto (best available)"})
    output: Literal["transparent", "mask", "color"] = Field(
        "transparent", description="Transparent PNG, the mask itself, or the subject on a solid colour.",
        json_schema_extra={"label": "Output",
                           "choices": [["Transparent PNG", "transparent"], ["Mask", "mask"], ["Solid colour", "color"]]}
    )
    color: str = Field("#ffffff", description="Background colour for output='color': #rrggbb, rgb(...) or a name.",
                       json_schema_extra={"widget": "color", "label": "Background colour (for Solid colour)"})
    format: OutputFormat = format_field()

    @field_validator("color", mode="before")
    @classmethod
    def _hex_colour(cls, value: str) -> str:
        try:
            red, green, blue = ImageColor.getrgb(str(value).strip())[:3]
        except ValueError:
            raise ValueError(f"{value!r} is not a colour (use #rrggbb)") from None
        return f"#{red:02x}{green:02x}{blue:02x}"


class BackgroundEngine(Engine):
    @abc.abstractmethod
    def segment(self, model: Any, image: Image.Image) -> Image.Image:
        """RGB image -> mode "L" mask of the same size, 255 = foreground."""
