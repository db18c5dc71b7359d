"""Remove object: OpenCV on a real photo, LaMa's loader and runner with a tiny
TorchScript model of the same contract, Stable Diffusion inpainting with the tiny
random pipeline; then through the queue and the UI's API."""
from __future__ import annotations

import io

import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from pipelines.context import RunContext
from pipelines.errors import Cancelled, InvalidInput, WeightsMissing
from pipelines.remove_object import RemoveObjectParams, remove_object
from tests import standins
from tests.conftest import encode, wait_for

BOX = (300, 300, 360, 380)  # a patch of the astronaut's suit


@pytest.fixture(scope="module")
def photo(astronaut):
    return astronaut


@pytest.fixture(scope="module")
def mask(photo):
    mask = Image.new("L", photo.size, 0)
    mask.paste(255, BOX)
    return mask


def run(photo, mask, ctx=None, **params):
    return remove_object({"image": photo, "mask": mask}, RemoveObjectParams(**params), ctx or RunContext())


def outside_identical(result, photo, mask) -> bool:
    outside = np.asarray(mask) == 0
    return np.array_equal(np.asarray(result.convert("RGB"))[outside], np.asarray(photo.convert("RGB"))[outside])


@pytest.mark.parametrize("engine", ["opencv-telea", "opencv-ns"])
def test_opencv_fills_better_than_the_mean_colour_and_touches_nothing_else(photo, mask, engine):
    result = run(photo, mask, engine=engine, dilate=0, feather=0)
    out = result.images[0]
    assert result.engine == engine and out.size == photo.size
    assert outside_identical(out, photo, mask)
    hole = np.asarray(mask) > 0
    original = np.asarray(photo, np.float32)
    surroundings = original[np.asarray(mask.crop((290, 290, 370, 390)).resize(photo.size)) == 0].mean(0)
    mean_fill_error = np.abs(original[hole] - surroundings).mean()
    engine_error = np.abs(np.asarray(out, np.float32)[hole] - original[hole]).mean()
    assert engine_error < mean_fill_error


def test_dilate_and_feather_bound_what_changes(photo, mask):
    out = run(photo, mask, engine="opencv-telea", dilate=10, feather=6).images[0]
    grown = Image.new("L", photo.size, 0)
    grown.paste(255, (BOX[0] - 16, BOX[1] - 16, BOX[2] + 16, BOX[3] + 16))  # dilate + feather margin
    assert outside_identical(out, photo, grown)
    assert not outside_identical(out, photo, mask)  # the dilated ring did change


def test_twelve_megapixels_keep_their_resolution(photo):
    big = photo.resize((4000, 3000))
    small_mask = Image.new("L", big.size, 0)
    small_mask.paste(255, (2000, 1500, 2100, 1600))
    out = run(big, small_mask, engine="opencv-telea", dilate=0, feather=0).images[0]
    assert out.size == (4000, 3000) and outside_identical(out, big, small_mask)


def test_empty_or_misfit_mask_is_refused(photo):
    with pytest.raises(InvalidInput, match="mask is empty"):
        run(photo, Image.new("L", photo.size, 0))
    with pytest.raises(InvalidInput, match="same shape"):
        run(photo, Image.new("L", (100, 300), 255))


@pytest.fixture
def tiny_lama(tmp_path, monkeypatch):
    """A TorchScript model with LaMa's contract (tests/standins.py): it checks what it
    receives and fills the hole with one flat colour."""
    monkeypatch.setenv("STUDIO_MODELS_DIR", str(tmp_path))
    return standins.lama(tmp_path / "lama" / "big-lama.pt")


def test_lama_loader_and_runner_follow_the_torchscript_contract(photo, mask, tiny_lama):
    result = run(photo, mask, engine="auto", dilate=0, feather=0)  # auto takes LaMa once the file is there
    out = np.asarray(result.images[0], np.float32)
    assert result.engine == "lama"
    hole = np.asarray(mask) > 0
    filled = out[hole]
    assert filled.std(0).max() < 1.5  # one flat colour: the model's mean fill came through
    assert outside_identical(result.images[0], photo, mask)


def test_lama_missing_offline_names_the_file(photo, mask, tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_MODELS_DIR", str(tmp_path))
    with pytest.raises(WeightsMissing, match=r"big-lama.pt is missing .* Put it in .*lama"):
        run(photo, mask, engine="lama")


def test_auto_offline_without_weights_says_once_what_it_ran_instead(photo, mask, tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_MODELS_DIR", str(tmp_path))
    ctx = RunContext()
    assert run(photo, mask, ctx).engine == "opencv-telea"
    assert len(ctx.notes) == 1 and ctx.notes[0].count("Ran OpenCV Telea") == 1
    assert "big-lama.pt is missing" in ctx.notes[0] and "migan_traced.pt is missing" in ctx.notes[0]


def test_sd_inpainting_with_the_tiny_pipeline(photo, mask, tiny_inpaint):
    stages = []
    result = run(photo, mask, RunContext(report=lambda p, stage, _: stages.append(stage)), engine="sd-inpaint",
                 model=tiny_inpaint, steps=4, seed=3, dilate=0, feather=0)
    assert result.engine == "sd-inpaint" and result.detail == "seed 3"
    assert [s for s in stages if s.startswith("step")] == [f"step {i}/4" for i in range(1, 5)]
    assert outside_identical(result.images[0], photo, mask)


def test_sd_inpainting_stops_between_steps(photo, mask, tiny_inpaint):
    steps_seen = []
    ctx = RunContext(report=lambda p, stage, _: stage.startswith("step") and steps_seen.append(stage),
                     is_cancelled=lambda: len(steps_seen) >= 2)
    with pytest.raises(Cancelled):
        run(photo, mask, ctx, engine="sd-inpaint", model=tiny_inpaint, steps=30)
    assert steps_seen == ["step 1/30", "step 2/30"]


def test_through_the_queue_with_a_separate_mask(client, cpu_worker, astronaut_jpeg, mask):
    job = client.submit("remove_object", {"image": astronaut_jpeg, "mask": encode(mask)},
                        {"engine": "opencv-telea"})
    status = client.wait(job, timeout=60)
    assert status.state == "succeeded" and status.engine == "opencv-telea" and status.queue == "light"  # one-core work
    assert Image.open(io.BytesIO(client.results(job)[0])).size == (512, 512)


def test_empty_mask_is_not_queued(client, astronaut_jpeg):
    with pytest.raises(InvalidInput, match="mask is empty"):
        client.submit("remove_object", {"image": astronaut_jpeg, "mask": encode(Image.new("L", (512, 512)))}, {})


def test_sd_inpaint_routes_to_gpu_and_cancels_between_steps(client, gpu_worker, tiny_inpaint, photo, mask):
    small = {"image": encode(photo.resize((128, 128))), "mask": encode(mask.resize((128, 128)))}  # ~0.7 s a step
    job = client.submit("remove_object", small, {"engine": "sd-inpaint", "model": tiny_inpaint, "steps": 150})
    wait_for(lambda: client.status(job).stage.startswith("step "), timeout=60)
    assert client.status(job).queue == "gpu"
    client.cancel(job)
    assert client.wait(job, timeout=10).stage == "cancelled"


def test_missing_lama_offline_through_the_queue(client, gpu_worker, astronaut_jpeg, mask):
    job = client.submit("remove_object", {"image": astronaut_jpeg, "mask": encode(mask)}, {"engine": "lama"})
    status = client.wait(job, timeout=60)
    assert status.state == "failed" and "big-lama.pt" in status.error


@pytest.fixture(scope="module")
def files(tmp_path_factory, astronaut_jpeg, mask):
    folder = tmp_path_factory.mktemp("remove-object")
    (folder / "photo.jpg").write_bytes(astronaut_jpeg)
    (folder / "mask.png").write_bytes(encode(mask))
    layer = Image.new("RGBA", (512, 512), (0, 0, 0, 0))
    layer.paste((255, 59, 48, 255), BOX)  # a brush stroke
    (folder / "layer.png").write_bytes(encode(layer))
    (folder / "empty_layer.png").write_bytes(encode(Image.new("RGBA", (512, 512), (0, 0, 0, 0))))
    return folder


SD = ("", "sd-2-inpainting", 25, -1)  # prompt, model, steps, seed


def test_ui_api_with_two_files_and_with_an_editor_value(ui_url, files):
    api = Client(ui_url, verbose=False)
    out, info = api.predict(None, handle_file(str(files / "photo.jpg")), handle_file(str(files / "mask.png")),
                            "opencv-telea", 0, 0, *SD, api_name="/remove_object")
    assert Image.open(out).size == (512, 512) and "opencv-telea" in info
    editor = {"background": handle_file(str(files / "photo.jpg")), "layers": [handle_file(str(files / "layer.png"))],
              "composite": None}
    out, info = api.predict(editor, None, None, "opencv-ns", 0, 0, *SD, api_name="/remove_object")
    result = Image.open(out).convert("RGB")
    assert "opencv-ns" in info
    original = Image.open(files / "photo.jpg").convert("RGB")
    # a JPEG photo gives a JPEG (quality 95): outside the box only its small re-encoding error
    changed = np.abs(np.asarray(result, np.int16) - np.asarray(original, np.int16)).sum(2) > 60
    ys, xs = np.nonzero(changed)
    assert BOX[0] - 2 <= xs.min() and xs.max() < BOX[2] + 2 and BOX[1] - 2 <= ys.min() and ys.max() < BOX[3] + 2
    empty = {"background": handle_file(str(files / "photo.jpg")),
             "layers": [handle_file(str(files / "empty_layer.png"))], "composite": None}
    with pytest.raises(AppError, match="mask is empty"):
        api.predict(empty, None, None, "auto", 8, 4, *SD, api_name="/remove_object")
