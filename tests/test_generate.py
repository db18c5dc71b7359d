"""Generate with a tiny random Stable Diffusion pipeline that the tests build and
save as a diffusers folder, loaded through the same code path as a real model."""
from __future__ import annotations

import io
import time

import numpy as np
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError
from PIL import Image

from pipelines.context import RunContext
from pipelines.errors import InvalidInput
from pipelines.generate import GenerateParams, generate, parse_parameters
from tests.conftest import wait_for

SMALL = {"width": 64, "height": 64}


def run_job(client, **params):
    job = client.submit("generate", {}, {"prompt": "a cat", **SMALL, **params})
    status = client.wait(job, timeout=180)
    assert status.state == "succeeded", status.error
    return job, status, [Image.open(io.BytesIO(png)) for png in client.results(job)]


def test_each_step_is_reported_with_previews(tiny_sd):
    seen = []
    ctx = RunContext(report=lambda percent, stage, preview: seen.append((percent, stage, preview)))
    generate({}, GenerateParams(prompt="a cat", model=tiny_sd, steps=8, seed=1, **SMALL), ctx)
    steps = [stage for _, stage, _ in seen if stage.startswith("step ")]
    assert steps == [f"step {i}/8" for i in range(1, 9)]
    previews = [preview for _, _, preview in seen if preview is not None]
    assert len(previews) == 3 and previews[0].size == (64, 64)
    assert [p for p, _, _ in seen] == sorted(p for p, _, _ in seen)


def test_same_seed_same_image_other_seed_other_image(client, gpu_worker, tiny_sd):
    _, first, (a,) = run_job(client, model=tiny_sd, seed=1234, steps=3)
    _, _, (b,) = run_job(client, model=tiny_sd, seed=1234, steps=3)
    _, _, (c,) = run_job(client, model=tiny_sd, seed=99, steps=3)
    assert np.array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(c))
    assert first.detail == f"{tiny_sd}, seed 1234" and first.engine == "diffusers"
    assert first.queue == "gpu"


def test_several_images_carry_their_parameters(client, gpu_worker, tiny_sd):
    _, status, images = run_job(client, model=tiny_sd, seed=7, steps=2, num_images=3,
                                negative_prompt="blurry", guidance=2.5)
    assert status.outputs == 3
    found = [parse_parameters(image.info["parameters"]) for image in images]
    assert [f["seed"] for f in found] == [7, 8, 9]
    assert found[0] == {"prompt": "a cat", "negative_prompt": "blurry", "steps": 2, "guidance": 2.5, "seed": 7,
                        "model": tiny_sd, "width": 64, "height": 64}
    assert len({images[0].tobytes(), images[1].tobytes(), images[2].tobytes()}) == 3


def test_random_seed_is_reported_and_reproduces(client, gpu_worker, tiny_sd):
    _, status, (image,) = run_job(client, model=tiny_sd, steps=2)
    seed = parse_parameters(image.info["parameters"])["seed"]
    assert status.detail.endswith(f"seed {seed}")
    _, _, (again,) = run_job(client, model=tiny_sd, steps=2, seed=seed)
    assert np.array_equal(np.asarray(image), np.asarray(again))


def test_progress_and_preview_through_the_queue(client, gpu_worker, tiny_sd):
    job = client.submit("generate", {}, {"prompt": "a cat", "model": tiny_sd, "steps": 60, "width": 128,
                                         "height": 128, "seed": 3})
    percents = set()
    while not (status := client.status(job)).done:
        if status.state == "running":
            percents.add(status.percent)
        time.sleep(0.02)
    assert status.state == "succeeded"
    assert len([p for p in percents if 20 < p < 98]) >= 3  # several steps seen on the way
    preview = Image.open(io.BytesIO(client.preview(job)))
    assert preview.size == (128, 128)


def test_cancel_between_steps_keeps_the_worker(client, gpu_worker, tiny_sd):
    job = client.submit("generate", {}, {"prompt": "a cat", "model": tiny_sd, "steps": 150, "width": 128,
                                         "height": 128})  # about 0.2 s a step here
    wait_for(lambda: client.status(job).stage.startswith("step "), timeout=60)
    pid = client.store.get(job)["pid"]
    client.cancel(job)
    status = client.wait(job, timeout=10)
    assert status.state == "cancelled" and status.stage == "cancelled"
    after, _, _ = run_job(client, model=tiny_sd, steps=1)
    assert client.store.get(after)["pid"] == pid  # stopped between steps, no process restart


def test_missing_model_offline_says_how_to_get_it(client, gpu_worker):
    job = client.submit("generate", {}, {"prompt": "a cat", "model": "sdxl-turbo"})
    status = client.wait(job, timeout=60)
    assert status.state == "failed"
    assert "stabilityai/sdxl-turbo is not downloaded" in status.error and "hf download" in status.error


@pytest.mark.parametrize(
    "params, message",
    [
        ({"width": 100}, "multiple of 8"),
        ({"prompt": ""}, "prompt"),
        ({"model": "../../etc"}, "Unknown model"),
        ({"num_images": 20}, "num_images"),
    ],
)
def test_bad_generate_parameters(client, params, message):
    with pytest.raises(InvalidInput, match=message):
        client.submit("generate", {}, {"prompt": "a cat", **params})


def test_a_model_folder_that_is_not_there_is_named(client, gpu_worker):
    job = client.submit("generate", {}, {"prompt": "a cat", "model": "my-finetune"})
    status = client.wait(job, timeout=60)
    assert status.state == "failed" and "Unknown model 'my-finetune'" in status.error


def test_ui_api_returns_images_and_the_seed(ui_url, gpu_worker, tiny_sd):
    api = Client(ui_url, verbose=False)
    preview, gallery, seed, info = api.predict("a cat", "", tiny_sd, 2, 0, 64, 64, 42, 2, api_name="/generate")
    assert seed == 42 and len(gallery) == 2 and "seed 42" in info
    assert parse_parameters(Image.open(gallery[1]["image"]).info["parameters"])["seed"] == 43
    with pytest.raises(AppError, match="multiple of 8"):
        api.predict("a cat", "", tiny_sd, 2, 0, 65, 64, 1, 1, api_name="/generate")
