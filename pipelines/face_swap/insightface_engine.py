"""insightface: buffalo_l face analysis (detection, identity embedding) and the
inswapper_128 model, as FaceFusion and roop use them. Files live in
<models>/insightface/. inswapper_128.onnx comes from FaceFusion's model release
(sha256 pinned; STUDIO_INSWAPPER_URL names a mirror, held to the same pin);
buffalo_l from insightface's own release, fetched only once the swapper is there,
so a machine that cannot get the swapper does not download 280 MB for nothing."""
from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.context import RunContext
from pipelines.face_swap.base import Face, FaceNotPlaced, FaceSwapEngine, FaceSwapParams, footprint
from pipelines.face_swap.enhancer import enhancer_weights
from pipelines.onnx_runtime import onnx_providers
from pipelines.weights import WeightFile, ensure_weights, models_home

FACEFUSION_MODELS = "https://github.com/facefusion/facefusion-assets/releases/download/models-3.0.0"
INSWAPPER_SHA256 = "e4a3f08c753cb72d04e10aa0f7dbe3deebbf39567d4ead6dce08e98aa49e16af"
BUFFALO_URL = "https://github.com/deepinsight/insightface/releases/download/v0.7/buffalo_l.zip"
BUFFALO_FILES = ("det_10g.onnx", "w600k_r50.onnx")  # detection and recognition: what the swap uses


def insightface_home() -> Path:
    return models_home() / "insightface"


def swapper_weights() -> WeightFile:
    url = os.environ.get("STUDIO_INSWAPPER_URL") or f"{FACEFUSION_MODELS}/inswapper_128.onnx"
    return WeightFile("inswapper_128.onnx", insightface_home(), url, sha256=INSWAPPER_SHA256, size=554_253_681)


def buffalo_weights() -> list[WeightFile]:
    return [WeightFile(name, insightface_home() / "models" / "buffalo_l") for name in BUFFALO_FILES]


class InsightFaceEngine(FaceSwapEngine):
    name = "insightface"
    label = "insightface inswapper_128 (non-commercial licence)"
    device = "gpu"
    hint = "insightface's inswapper gives a photographic swap: see the README's models table."

    def weights(self) -> list[WeightFile]:
        return [*buffalo_weights(), swapper_weights()]

    def companions(self) -> list[WeightFile]:
        return [enhancer_weights()]

    def fetch_weights(self, ctx: RunContext) -> None:
        """The swapper first; then buffalo_l, which arrives as a zip to unpack."""
        ensure_weights(swapper_weights(), ctx.span(0, 65))
        buffalo = buffalo_weights()
        if all(w.present() for w in buffalo):
            return
        archive = WeightFile("buffalo_l.zip", insightface_home() / "models", BUFFALO_URL)
        path = ensure_weights(archive, ctx.span(65, 100))  # the zip itself may be put there by hand
        buffalo[0].folder.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(path) as zipped:
            for member in zipped.namelist():
                if Path(member).name in BUFFALO_FILES:
                    (buffalo[0].folder / Path(member).name).write_bytes(zipped.read(member))

    def load(self) -> Any:
        from insightface.app import FaceAnalysis
        from insightface.model_zoo import get_model

        providers = onnx_providers()
        analysis = FaceAnalysis(name=str(buffalo_weights()[0].folder), providers=providers,
                                allowed_modules=["detection", "recognition"])
        analysis.prepare(ctx_id=0 if providers[0] != "CPUExecutionProvider" else -1, det_size=(640, 640))
        swapper = get_model(str(swapper_weights().path), providers=providers)
        return analysis, swapper

    def detect(self, model: Any, rgb: np.ndarray) -> list[Face]:
        analysis, _ = model
        return [Face(tuple(float(v) for v in face.bbox), float(face.det_score), np.asarray(face.kps), face)
                for face in analysis.get(np.ascontiguousarray(rgb[..., ::-1]))]  # insightface reads BGR

    def swap(self, model: Any, source: np.ndarray, source_face: Face, target: np.ndarray, target_face: Face,
             params: FaceSwapParams) -> np.ndarray:
        from insightface.app.common import Face as FaceRecord
        from insightface.utils import face_align

        _, swapper = model
        native, size = target_face.native, swapper.input_size[0]
        x0, y0, x1, y1 = footprint(face_align.estimate_norm(native.kps, size), size, target.shape)
        on_crop = FaceRecord(native)  # the face as seen from its box (insightface pastes over all it is given)
        on_crop.kps = native.kps - (x0, y0)
        crop = np.ascontiguousarray(target[y0:y1, x0:x1, ::-1])
        pasted = swapper.get(crop, on_crop, source_face.native, paste_back=True)
        if np.array_equal(pasted, crop):  # its paste-back erodes a 10 px border off the face's mask
            raise FaceNotPlaced("it is too small for inswapper's paste-back (a few pixels across)")
        result = target.copy()
        result[y0:y1, x0:x1] = pasted[..., ::-1]
        return result
