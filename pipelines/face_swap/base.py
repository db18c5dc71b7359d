"""What every face-swap engine provides: finding faces, and putting one face onto another."""
from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from pipelines.imaging import OutputFormat, format_field
from pipelines.registry import AUTO, Engine


class DetectFacesParams(BaseModel):
    """The form follows these models (ui.form): `json_schema_extra` holds the control hints."""

    engine: str = Field(AUTO, description="insightface when its models are present, else landmarks.",
                        json_schema_extra={"widget": "engine",
                                           "auto_label": "Auto (insightface if present, else face mesh)"})


class FaceSwapParams(DetectFacesParams):
    source_face: int = Field(1, ge=1, le=100, description="Which face of the source photo, as numbered (from 1).")
    target_faces: list[int] = Field(default_factory=list, max_length=100,
                                    description="Which faces of the target photo to replace (from 1); empty = all.")
    color_correct: bool = Field(True, description="Match the swapped face to the target's skin tone (landmarks).",
                                json_schema_extra={"label": "Match the target's skin tone (face mesh engine)"})
    enhance: float = Field(1.0, ge=0.0, le=1.0, description="Face enhancer (GFPGAN 1.4) strength after the "
                                                             "insightface swap; 0 turns it off.",
                           json_schema_extra={"label": "Face enhancer strength (GFPGAN 1.4, after the insightface "
                                                       "swap; 0 = off)"})
    format: OutputFormat = format_field()


@dataclass
class Face:
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels of the photo
    score: float
    points: np.ndarray  # (N, 2) landmarks in pixels
    native: Any = field(default=None, repr=False)  # the engine's own face record


class FaceSwapEngine(Engine):
    @abc.abstractmethod
    def detect(self, model: Any, rgb: np.ndarray) -> list[Face]:
        """Faces in an RGB uint8 array, any order (the operation numbers them left to right)."""

    @abc.abstractmethod
    def swap(self, model: Any, source: np.ndarray, source_face: Face, target: np.ndarray, target_face: Face,
             params: FaceSwapParams) -> np.ndarray:
        """`target` (RGB uint8) with `target_face` replaced by `source_face`; pixels away from it unchanged."""
