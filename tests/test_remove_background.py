"""Background removal in-process, with the real u2netp and MediaPipe models,
plus the weight handling every engine shares (missing file, download with progress)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pipelines.context import RunContext
from pipelines.errors import WeightsMissing
from pipelines.remove_background import OPERATION, remove_background
from pipelines.remove_background.base import RemoveBackgroundParams

FACE = (230, 110)  # (x, y) inside the astronaut's face
SKY_CORNER = (500, 10)  # top-right corner: studio backdrop


def run(image, ctx=None, **params):
    ctx = ctx or RunContext()
    return remove_background({"image": image}, RemoveBackgroundParams(**params), ctx), ctx


@pytest.mark.parametrize("engine", ["u2netp", "mediapipe-person"])
def test_subject_kept_and_backdrop_removed(astronaut, u2netp_installed, engine):
    result, _ = run(astronaut, engine=engine)
    cutout = result.images[0]
    assert result.engine == engine
    assert cutout.mode == "RGBA" and cutout.size == astronaut.size
    alpha = cutout.getchannel("A")
    assert alpha.getpixel(FACE) > 200 and alpha.getpixel(SKY_CORNER) < 40
    assert cutout.getpixel(FACE)[:3] == astronaut.getpixel(FACE)  # colours untouched
    pixels = np.asarray(cutout)
    hidden, shown = pixels[..., 3] == 0, pixels[..., 3] > 0
    assert hidden.any() and not pixels[hidden][:, :3].any()  # nothing kept where nothing shows
    assert np.array_equal(pixels[shown][:, :3], np.asarray(astronaut)[shown])


def test_mask_and_solid_colour_outputs(astronaut, u2netp_installed):
    mask = run(astronaut, engine="u2netp", output="mask")[0].images[0]
    on_green = run(astronaut, engine="u2netp", output="color", color="#00ff00")[0].images[0]
    assert mask.mode == "L" and mask.size == astronaut.size
    assert on_green.mode == "RGB"
    red, green, blue = on_green.getpixel(SKY_CORNER)
    assert green > 200 and red < 60 and blue < 60
    assert np.allclose(on_green.getpixel(FACE), astronaut.getpixel(FACE), atol=3)


def test_existing_transparency_is_respected(astronaut, u2netp_installed):
    half_transparent = astronaut.convert("RGBA")
    half_transparent.putalpha(Image.new("L", astronaut.size, 0).crop((0, 0, 256, 512)).resize(astronaut.size))
    left_clear = np.asarray(half_transparent.getchannel("A")).copy()
    left_clear[:, 256:] = 255
    half_transparent.putalpha(Image.fromarray(left_clear))
    cutout = run(half_transparent, engine="u2netp")[0].images[0]
    assert cutout.getchannel("A").getpixel((100, 300)) == 0  # was transparent, stays so


def test_progress_goes_through_the_stages_to_compositing(astronaut, u2netp_installed):
    seen: list[tuple[float, str]] = []
    ctx = RunContext(report=lambda percent, stage, preview: seen.append((percent, stage)))
    run(astronaut, ctx, engine="u2netp")
    percents = [p for p, _ in seen]
    assert percents == sorted(percents)
    assert any("segmenting" in s for _, s in seen) and seen[-1][1] == "compositing"


def test_explicit_model_missing_offline_names_file_and_folder(astronaut, tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_MODELS_DIR", str(tmp_path))
    with pytest.raises(WeightsMissing) as missing:
        run(astronaut, engine="isnet-general-use")
    message = str(missing.value)
    assert "isnet-general-use.onnx" in message and str(tmp_path / "rembg") in message


def test_auto_without_weights_falls_back_and_says_so(astronaut, tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_MODELS_DIR", str(tmp_path))
    result, ctx = run(astronaut, engine="auto")
    assert result.engine == "mediapipe-person"
    assert len(ctx.notes) == 1
    assert "u2net.onnx" in ctx.notes[0] and str(tmp_path / "rembg") in ctx.notes[0]
    assert "Ran MediaPipe person segmentation" in ctx.notes[0]


def test_auto_prefers_present_rembg_weights(astronaut, u2netp_installed):
    result, ctx = run(astronaut, engine="auto")
    assert result.engine == "u2netp" and ctx.notes == []


def test_first_use_downloads_with_progress_and_checksum(astronaut, weights_server, tmp_path, monkeypatch):
    from tests.assets import u2netp_onnx

    served, url = weights_server
    (served / "u2netp.onnx").write_bytes(u2netp_onnx().read_bytes())
    models = tmp_path / "models"
    monkeypatch.setenv("STUDIO_MODELS_DIR", str(models))
    monkeypatch.setenv("STUDIO_REMBG_BASE_URL", url)
    stages: list[str] = []
    result, _ = run(astronaut, RunContext(report=lambda p, stage, _: stages.append(stage)), engine="u2netp")
    assert result.engine == "u2netp"
    assert (models / "rembg" / "u2netp.onnx").stat().st_size == u2netp_onnx().stat().st_size
    assert any(s.startswith("downloading u2netp.onnx") and "%" in s for s in stages)


def test_download_with_wrong_checksum_leaves_no_file(astronaut, weights_server, tmp_path, monkeypatch):
    served, url = weights_server
    (served / "u2netp.onnx").write_bytes(b"not the model" * 1000)
    monkeypatch.setenv("STUDIO_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("STUDIO_REMBG_BASE_URL", url)
    with pytest.raises(WeightsMissing, match="its md5 is .*, not the pinned .*; the downloaded file was deleted"):
        run(astronaut, engine="u2netp")
    assert not list((tmp_path / "models" / "rembg").iterdir())


def test_every_engine_is_registered_with_a_label():
    assert {"u2netp", "u2net", "isnet-general-use", "birefnet-general", "mediapipe-person"} <= set(OPERATION.engines)
    assert all(engine.label for engine in OPERATION.engines.values())
