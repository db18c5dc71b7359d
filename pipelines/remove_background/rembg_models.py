"""rembg's ONNX sessions (U2-Net family, IS-Net, BiRefNet) as engines.

We keep the catalogue (file, checksum) here so the file lives in our models
folder and its download shows progress; rembg does the inference.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from PIL import Image

from pipelines.onnx_runtime import onnx_providers
from pipelines.remove_background.base import BackgroundEngine
from pipelines.weights import WeightFile, models_home

RELEASES = "https://github.com/danielgatis/rembg/releases/download/v0.0.0"

# rembg model name -> (label, file name in rembg's releases, md5)
CATALOGUE = {
    "birefnet-general": ("BiRefNet general (best, 970 MB)", "BiRefNet-general-epoch_244.onnx",
                         "7a35a0141cbbc80de11d9c9a28f52697"),
    "birefnet-portrait": ("BiRefNet portrait (970 MB)", "BiRefNet-portrait-epoch_150.onnx",
                          "c3a64a6abf20250d090cd055f12a3b67"),
    "isnet-general-use": ("IS-Net general (170 MB)", "isnet-general-use.onnx", "fc16ebd8b0c10d971d3513d564d01e29"),
    "isnet-anime": ("IS-Net anime (170 MB)", "isnet-anime.onnx", "6f184e756bb3bd901c8849220a83e38e"),
    "u2net": ("U2-Net (170 MB)", "u2net.onnx", "60024c5c889badc19c04ad937298a77b"),
    "u2net_human_seg": ("U2-Net people (170 MB)", "u2net_human_seg.onnx", "c09ddc2e0104f800e3e1bb4652583d1f"),
    "silueta": ("Silueta (43 MB)", "silueta.onnx", "55e59e0d8062d2f5d013f4725ee84782"),
    "u2netp": ("U2-Net small (4.6 MB)", "u2netp.onnx", "8e83ca70e441ab06c318d82300c84806"),
}


def rembg_folder() -> Path:
    """`U2NET_HOME` when set (rembg's own variable), else `<models>/rembg`."""
    return Path(os.environ.get("U2NET_HOME") or models_home() / "rembg").expanduser()


class RembgEngine(BackgroundEngine):
    def __init__(self, model: str):
        self.name = model
        self.label, self.filename, self.md5 = CATALOGUE[model]
        self.label = f"rembg {self.label}"

    def weights(self) -> list[WeightFile]:
        base = os.environ.get("STUDIO_REMBG_BASE_URL", RELEASES).rstrip("/")
        return [WeightFile(self.filename, rembg_folder(), f"{base}/{self.filename}", self.md5)]

    def load(self) -> Any:
        import onnxruntime
        from rembg.sessions import sessions_class

        session_class = next(cls for cls in sessions_class if cls.name() == self.name)
        path = str(self.weights()[0].path)

        class LocalSession(session_class):
            """rembg's session, reading our file instead of fetching its own."""

            @classmethod
            def download_models(cls, *args: Any, **kwargs: Any) -> str:
                return path

        return LocalSession(self.name, onnxruntime.SessionOptions(), providers=onnx_providers())

    def segment(self, model: Any, image: Image.Image) -> Image.Image:
        return model.predict(image)[0].convert("L")


ENGINES = [RembgEngine(name) for name in CATALOGUE]
