"""insightface: buffalo_l face analysis (detection, landmarks, identity embedding)
and the inswapper_128 model, as FaceFusion and roop use them. Files live in
<models>/insightface/: buffalo_l comes from insightface's own release on first use;
inswapper_128.onnx from STUDIO_INSWAPPER_URL, which the user sets (the model's
licence keeps it off official mirrors)."""
from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.context import RunContext
from pipelines.faceswap.base import Face, FaceSwapEngine, FaceSwapParams
from pipelines.weights import WeightFile, ensure_weights, models_home

BUFFALO_URL = "https://github.com/deepinsight/insightface/releases/download/v0.7/buffalo_l.zip"
BUFFALO_FILES = ("det_10g.onnx", "w600k_r50.onnx", "2d106det.onnx", "1k3d68.onnx", "genderage.onnx")


def insightface_home() -> Path:
    return models_home() / "insightface"


class InsightFaceEngine(FaceSwapEngine):
    name = "insightface"
    label = "insightface inswapper_128"
    device = "gpu"

    def weights(self) -> list[WeightFile]:
        buffalo = insightface_home() / "models" / "buffalo_l"
        return [WeightFile(name, buffalo) for name in BUFFALO_FILES] + [
            WeightFile("inswapper_128.onnx", insightface_home(), os.environ.get("STUDIO_INSWAPPER_URL") or None)]

    def fetch_weights(self, ctx: RunContext) -> None:
        """buffalo_l arrives as a zip to unpack; inswapper as a single file."""
        *buffalo, swapper = self.weights()
        if not all(w.present() for w in buffalo):
            archive = WeightFile("buffalo_l.zip", insightface_home() / "models", BUFFALO_URL)
            path = ensure_weights(archive, ctx.span(0, 50))  # the zip itself may be put there by hand
            buffalo[0].folder.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(path) as zipped:
                for member in zipped.namelist():
                    if Path(member).name in BUFFALO_FILES:
                        (buffalo[0].folder / Path(member).name).write_bytes(zipped.read(member))
        if not swapper.present() and not swapper.url:
            raise swapper.missing("set STUDIO_INSWAPPER_URL to an address to fetch it from, or put it there by hand")
        ensure_weights(swapper, ctx.span(50, 100))

    def load(self) -> Any:
        import onnxruntime
        from insightface.app import FaceAnalysis
        from insightface.model_zoo import get_model

        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider")
                     if p in onnxruntime.get_available_providers()]
        analysis = FaceAnalysis(name="buffalo_l", root=str(insightface_home()), providers=providers,
                                allowed_modules=["detection", "recognition"])
        analysis.prepare(ctx_id=0 if providers[0].startswith("CUDA") else -1, det_size=(640, 640))
        swapper = get_model(str(self.weights()[-1].path), providers=providers)
        return analysis, swapper

    def detect(self, model: Any, rgb: np.ndarray) -> list[Face]:
        analysis, _ = model
        return [Face(tuple(float(v) for v in face.bbox), float(face.det_score), np.asarray(face.kps), face)
                for face in analysis.get(np.ascontiguousarray(rgb[..., ::-1]))]

    def swap(self, model: Any, source: np.ndarray, source_face: Face, target: np.ndarray, target_face: Face,
             params: FaceSwapParams) -> np.ndarray:
        _, swapper = model
        bgr = np.ascontiguousarray(target[..., ::-1])
        return swapper.get(bgr, target_face.native, source_face.native, paste_back=True)[..., ::-1].copy()
