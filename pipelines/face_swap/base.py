"""What every face-swap engine provides: finding faces, and putting one face onto another."""
from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from pipelines.errors import StudioError
from pipelines.imaging import OutputFormat, format_field
from pipelines.registry import AUTO, Engine

Enhancer = Literal["gfpgan", "codeformer"]  # the face enhancers (pipelines.face_swap.enhancer)


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
    enhance: float = Field(1.0, ge=0.0, le=1.0, description="The face enhancer's strength after the insightface "
                                                             "swap; 0 turns it off.",
                           json_schema_extra={"label": "Face enhancer strength (after the insightface swap; 0 = off)"})
    format: OutputFormat = format_field()
    # after `format`, so Gradio clients that pass `format` by position keep working
    enhancer: Enhancer = Field(
        "gfpgan", description="Which face enhancer runs after the insightface swap: GFPGAN 1.4 (Apache-2.0) or "
                              "CodeFormer (S-Lab licence, non-commercial).",
        json_schema_extra={"label": "Face enhancer (after the insightface swap)",
                           "choices": [["GFPGAN 1.4", "gfpgan"], ["CodeFormer (non-commercial)", "codeformer"]]})


class FaceNotPlaced(StudioError):
    """An engine could put nothing of the source face onto a target face; the operation
    names the face and fails rather than return the photo as if it were swapped."""


@dataclass
class Face:
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels of the photo
    score: float
    points: np.ndarray  # (N, 2) landmarks in pixels
    native: Any = field(default=None, repr=False)  # the engine's own face record


def footprint(matrix: np.ndarray, size: int, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """The box (x0, y0, x1, y1) of a photo of `shape` that an aligned `size` px crop, cut with
    the affine `matrix`, covers when it is warped back, with a margin; clipped to the photo.
    A paste-back through that crop changes nothing outside it, so it can run on the box
    alone: on a 12 MP photo, a tenth of a second per face instead of two."""
    import cv2

    inverse = cv2.invertAffineTransform(np.asarray(matrix, np.float64))
    corners = np.array([[0, 0], [size, 0], [0, size], [size, size]], np.float64) @ inverse[:, :2].T + inverse[:, 2]
    return box_around(corners, 4 + 0.05 * np.ptp(corners, 0).max(), shape)


def box_around(points: np.ndarray, margin: float, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """The box (x0, y0, x1, y1) holding `points` with `margin` px on each side, clipped to a
    photo of `shape`."""
    (left, top), (right, bottom) = points.min(0), points.max(0)
    height, width = shape[:2]
    return (max(0, int(left - margin)), max(0, int(top - margin)),
            min(width, int(right + margin) + 1), min(height, int(bottom + margin) + 1))


class FaceSwapEngine(Engine):
    @abc.abstractmethod
    def detect(self, model: Any, rgb: np.ndarray) -> list[Face]:
        """Faces in an RGB uint8 array, any order (the operation numbers them left to right)."""

    @abc.abstractmethod
    def swap(self, model: Any, source: np.ndarray, source_face: Face, target: np.ndarray, target_face: Face,
             params: FaceSwapParams) -> np.ndarray:
        """`target` (RGB uint8) with `target_face` replaced by `source_face`; pixels away from it unchanged.
        Raises FaceNotPlaced when nothing of the source face fits on the target face."""
