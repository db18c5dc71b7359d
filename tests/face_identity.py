"""An independent face recogniser for the swap tests: dlib's ResNet (face-recognition-models'
weights, loaded from their package folder: its own `__init__` needs `pkg_resources`), and
the people the tests compose: each has the photo that ships in a package and a second one
made from it (mirrored, smaller, lit differently)."""
from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageOps


@functools.cache
def _models():
    import dlib

    folder = Path(importlib.util.find_spec("face_recognition_models").submodule_search_locations[0]) / "models"
    return (dlib.shape_predictor(str(folder / "shape_predictor_5_face_landmarks.dat")),
            dlib.face_recognition_model_v1(str(folder / "dlib_face_recognition_resnet_model_v1.dat")))


def embedding(image: Image.Image, box: tuple[float, float, float, float]) -> np.ndarray:
    """dlib's 128-number description of the face in `box` (x0, y0, x1, y1)."""
    import dlib

    landmarks, recogniser = _models()
    rgb = np.ascontiguousarray(np.asarray(image.convert("RGB")))
    rectangle = dlib.rectangle(*(int(round(v)) for v in box))
    return np.array(recogniser.compute_face_descriptor(rgb, landmarks(rgb, rectangle)))


def second_photo(photo: Image.Image) -> Image.Image:
    """Another photo of the same person: mirrored, at 80 % of the size, lit warmer and darker."""
    other = ImageOps.mirror(photo).resize((round(photo.width * 0.8), round(photo.height * 0.8)), Image.LANCZOS)
    other = ImageEnhance.Brightness(other).enhance(0.85)
    r, g, b = other.split()
    return Image.merge("RGB", (r.point(lambda v: min(255, v * 1.06)), g, b.point(lambda v: v * 0.94)))
