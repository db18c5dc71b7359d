"""Face swap: the face from a source photo onto chosen faces of a target photo.
Also "detect faces", which the tab runs on each upload to show numbered faces.

Faces are numbered from 1, left to right, the same way for both operations.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from pipelines.context import RunContext
from pipelines.errors import InvalidInput, StudioError, WeightsMissing
from pipelines.face_swap.base import DetectFacesParams, Face, FaceNotPlaced, FaceSwapEngine, FaceSwapParams
from pipelines.face_swap.enhancer import ENHANCERS, enhance_face, load_enhancer
from pipelines.face_swap.insightface_engine import InsightFaceEngine
from pipelines.face_swap.landmarks import LandmarkEngine
from pipelines.registry import Example, Operation, Result, load_model, pick_engine

__all__ = ["DETECT_FACES", "FACE_SWAP", "DetectFacesParams", "FaceSwapParams", "detect_faces", "face_swap"]


def numbered_faces(engine: FaceSwapEngine, model: object, rgb: np.ndarray) -> list[Face]:
    """The faces in the order they are numbered: left to right."""
    return sorted(engine.detect(model, rgb), key=lambda face: face.box[0])


def find_faces(engine: FaceSwapEngine, model: object, image: Image.Image, which: str) -> tuple[np.ndarray, list[Face]]:
    rgb = np.asarray(image.convert("RGB"))
    faces = numbered_faces(engine, model, rgb)
    if not faces:
        raise InvalidInput(f"No face was found in the {which} photo.")
    return rgb, faces


def _ready(op: Operation[FaceSwapEngine], params: DetectFacesParams, ctx: RunContext
           ) -> tuple[FaceSwapEngine, object]:
    engine = pick_engine(op, params.engine, ctx.span(0, 60))
    return engine, load_model(engine, ctx.span(60, 100))


def face_swap(inputs: dict[str, Image.Image], params: FaceSwapParams, ctx: RunContext) -> Result:
    engine, model = _ready(FACE_SWAP, params, ctx.span(0, 20))
    ctx.progress(20, "finding faces")
    source, source_faces = find_faces(engine, model, inputs["source"], "source")
    target, target_faces = find_faces(engine, model, inputs["target"], "target")
    if params.source_face > len(source_faces):
        raise InvalidInput(f"The source photo has {len(source_faces)} face(s); there is no face {params.source_face}.")
    chosen = params.target_faces or list(range(1, len(target_faces) + 1))
    missing = [n for n in chosen if not 1 <= n <= len(target_faces)]
    if missing:
        raise InvalidInput(f"The target photo has {len(target_faces)} face(s); there is no face {missing[0]}.")
    result = target
    for done, number in enumerate(chosen):
        ctx.check_cancelled()
        ctx.progress(30 + 55 * done / len(chosen), f"swapping face {number} ({done + 1} of {len(chosen)})")
        try:
            result = engine.swap(model, source, source_faces[params.source_face - 1], result,
                                 target_faces[number - 1], params)
        except FaceNotPlaced as exc:
            raise StudioError(f"Target face {number} was not swapped by the {engine.label}: {exc}. "
                              "Try another photo or engine.") from None
    detail = f"source face {params.source_face} onto target face(s) {', '.join(map(str, chosen))}"
    if engine.name == InsightFaceEngine.name and params.enhance > 0:
        result, applied = enhanced(result, [target_faces[n - 1] for n in chosen], params, ctx.span(85, 100))
        detail += f", enhanced by {ENHANCERS[params.enhancer][0]} at {params.enhance:g}" if applied else ""
    swapped = Image.fromarray(result)
    if inputs["target"].mode == "RGBA":
        swapped.putalpha(inputs["target"].getchannel("A"))
    return Result([swapped], engine.name, detail=detail)


def enhanced(rgb: np.ndarray, faces: list[Face], params: FaceSwapParams, ctx: RunContext) -> tuple[np.ndarray, bool]:
    """The swapped faces restored by the chosen face enhancer, and whether it ran: without
    its weights, the swap as it is, with a note saying how to get them."""
    try:
        session = load_enhancer(params.enhancer, ctx.span(0, 50))
    except WeightsMissing as exc:
        ctx.note(f"{exc} The swapped face was not enhanced.")
        return rgb, False
    for done, face in enumerate(faces):
        ctx.check_cancelled()
        ctx.progress(50 + 50 * done / len(faces), f"enhancing face {done + 1} of {len(faces)}")
        rgb = enhance_face(session, rgb, face.points, params.enhance)
    return rgb, True


def detect_faces(inputs: dict[str, Image.Image], params: DetectFacesParams, ctx: RunContext) -> Result:
    engine, model = _ready(DETECT_FACES, params, ctx.span(0, 50))
    ctx.progress(50, "finding faces")
    rgb = np.asarray(inputs["image"].convert("RGB"))
    faces = numbered_faces(engine, model, rgb)
    return Result([numbered(Image.fromarray(rgb), faces)], engine.name, detail=f"{len(faces)} face(s)")


def numbered(image: Image.Image, faces: list[Face]) -> Image.Image:
    """The photo with each face boxed and numbered from 1, the number on a large dark badge
    above the box (inside it at the top edge) so it reads at thumbnail size."""
    drawn = image.copy()
    draw = ImageDraw.Draw(drawn)
    width = max(2, round(max(image.size) / 400))
    font = ImageFont.load_default(size=max(18, round(max(image.size) / 18)))
    for number, face in enumerate(faces, start=1):
        draw.rectangle(face.box, outline=(255, 214, 0), width=width)
        left, top, right, bottom = draw.textbbox((0, 0), str(number), font=font)
        pad = max(4, (bottom - top) // 4)
        badge_w, badge_h = right - left + 2 * pad, bottom - top + 2 * pad
        x = min(max(0, round(face.box[0])), image.width - badge_w)
        y = round(face.box[1]) - badge_h if face.box[1] >= badge_h else round(face.box[1])
        draw.rectangle((x, y, x + badge_w, y + badge_h), fill=(0, 0, 0), outline=(255, 214, 0), width=width)
        draw.text((x + pad - left, y + pad - top), str(number), fill=(255, 255, 255), font=font)
    return drawn


_engines: dict[str, FaceSwapEngine] = {engine.name: engine for engine in (InsightFaceEngine(), LandmarkEngine())}

FACE_SWAP: Operation[FaceSwapEngine] = Operation(
    name="face_swap",
    title="Face swap",
    params=FaceSwapParams,
    inputs=("source", "target"),
    photo_input="target",
    engines=_engines,
    run=face_swap,
    auto_order=(InsightFaceEngine.name,),
    first_use=(InsightFaceEngine.name, LandmarkEngine.name),
    example=Example({"source": "portrait.jpg", "target": "astronaut.jpg"}, {}, (512, 512), "RGB"),
)

DETECT_FACES: Operation[FaceSwapEngine] = Operation(
    name="detect_faces",
    title="Detect faces",
    params=DetectFacesParams,
    inputs=("image",),
    engines=_engines,
    run=detect_faces,
    auto_order=(InsightFaceEngine.name,),
    first_use=(InsightFaceEngine.name, LandmarkEngine.name),
    example=Example({"image": "astronaut.jpg"}, {}, (512, 512), "RGB"),
)
