"""Render the preset gallery's thumbnails (committed under ui/assets/style_presets/):

    python -m pipelines.style_transfer.thumbnails
"""
from __future__ import annotations

from pathlib import Path

from PIL import Image

from pipelines.style_transfer.base import PRESET_COUNT
from pipelines.style_transfer.neural import NeuralPresetEngine

OUT = Path(__file__).resolve().parents[2] / "ui" / "assets" / "style_presets"


def render(out: Path = OUT, side: int = 160) -> None:
    from skimage import data

    photo = Image.fromarray(data.chelsea())
    photo = photo.crop((75, 0, 375, 300)).resize((side, side), Image.Resampling.LANCZOS)
    engine = NeuralPresetEngine()
    model = engine.load()
    out.mkdir(parents=True, exist_ok=True)
    for preset in range(PRESET_COUNT):
        model.stylize(photo, style=preset, max_size=0).save(out / f"preset_{preset:02d}.webp", quality=80)


if __name__ == "__main__":
    render()
