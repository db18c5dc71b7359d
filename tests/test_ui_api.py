"""The UI process as API clients see it: `gradio_client` against `launch.py --no-worker`."""
from __future__ import annotations

import time
import zipfile

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from pipelines.catalogue import OPERATIONS
from tests.conftest import wait_for
from tests.test_queue import running, slow_job


@pytest.fixture(scope="module")
def api(ui_url):
    return Client(ui_url, verbose=False)


@pytest.fixture(scope="module")
def photo(tmp_path_factory, astronaut_jpeg):
    path = tmp_path_factory.mktemp("photos") / "astronaut.jpg"
    path.write_bytes(astronaut_jpeg)
    return str(path)


def test_remove_background_endpoint_returns_a_transparent_png(api, photo):
    image_path, info = api.predict(handle_file(photo), "u2netp", "transparent", "#ffffff",
                                   api_name="/remove_background")
    cutout = Image.open(image_path)
    assert cutout.format == "PNG" and cutout.mode == "RGBA" and cutout.size == (512, 512)
    assert "Done" in info and "u2netp" in info


def test_queue_position_and_progress_are_visible_in_job_status(api, client, photo, tiny_png):
    blocker = slow_job(client, tiny_png, steps=50)  # long enough to outlast the upload on a loaded machine
    wait_for(lambda: running(client, blocker))
    job = api.submit(handle_file(photo), "u2netp", "mask", "#ffffff", api_name="/remove_background")
    descriptions = set()
    while not job.done():
        status = job.status()
        descriptions.update(p.desc for p in status.progress_data or [] if p.desc)
        time.sleep(0.05)
    mask_path, _ = job.result()
    assert any(d.startswith("queued: position 1") for d in descriptions)
    assert Image.open(mask_path).mode == "L"


def test_api_cancel_cancels_the_queued_job(api, client, photo, tiny_png):
    blocker = slow_job(client, tiny_png, steps=100)
    wait_for(lambda: running(client, blocker))
    job = api.submit(handle_file(photo), "u2netp", "transparent", "#ffffff", api_name="/remove_background")
    waiting = wait_for(lambda: client.store.redis.zrange("studio:waiting:cpu", 0, -1))
    job.cancel()
    job_id = waiting[0].decode()
    assert wait_for(lambda: client.status(job_id).state == "cancelled", timeout=10)
    client.cancel(blocker)


def test_bad_upload_gets_the_message_not_a_traceback(api, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(AppError, match="JPEG file is damaged"):
        api.predict(handle_file(str(broken)), "auto", "transparent", "#ffffff", api_name="/remove_background")


def test_missing_model_message_reaches_the_api(api, photo):
    with pytest.raises(AppError, match="isnet-anime.onnx is missing"):
        api.predict(handle_file(photo), "isnet-anime", "transparent", "#ffffff", api_name="/remove_background")


def test_inputs_are_named_and_defaulted_as_the_parameter_models_say(api, photo):
    """Each tab's endpoint names its parameters as the operation's model does, with the
    model's defaults, so a call with only the photo takes them all."""
    endpoints = api.view_api(print_info=False, return_format="dict")["named_endpoints"]
    for name in ("generate", "face_swap", "remove_background", "remove_object", "style_transfer"):
        parameters = {p["parameter_name"]: p for p in endpoints[f"/{name}"]["parameters"]}
        model = OPERATIONS[name].params
        shown = [field for field in model.model_fields if field in parameters]
        assert len(shown) >= len(model.model_fields) - 1, (name, shown)  # Generate's one engine is not offered
        for field in shown:
            info = model.model_fields[field]
            default = None if info.is_required() else info.get_default(call_default_factory=True)
            assert parameters[field]["parameter_has_default"], (name, field)
            assert parameters[field]["parameter_default"] == default, (name, field)
    styled, info = api.predict(image=handle_file(photo), api_name="/style_transfer")
    assert Image.open(styled).size == (512, 512) and "preset 0" in info


def test_old_parameter_names_still_work(api, photo):
    """Clients written before the names were unified: `photo`, `sd_model`, `count` (Gradio) reach the job."""
    styled, info = api.predict(photo=handle_file(photo), preset=3, max_side=128, api_name="/style_transfer")
    assert Image.open(styled).size == (128, 128) and "preset 3" in info
    with pytest.raises(AppError, match="model: .*Unknown model '../etc'"):
        api.predict(photo=handle_file(photo), sd_model="../etc", api_name="/style_transfer")
    with pytest.raises(AppError, match="num_images: Input should be less than or equal to 8"):
        api.predict("a cat", count=9, api_name="/generate")


def test_a_redis_stall_longer_than_the_socket_timeout_does_not_end_the_job(api, client, photo, redis_server,
                                                                           tiny_png):
    """Valkey frozen for 7 s (redis-py gives up on a read after 5 s): the page's job is
    neither cancelled nor failed, and its result arrives once Valkey answers again."""
    import os
    import signal

    blocker = slow_job(client, tiny_png, steps=20)
    wait_for(lambda: running(client, blocker))
    job = api.submit(handle_file(photo), "u2netp", api_name="/remove_background")
    wait_for(lambda: job.status().progress_data)  # the page follows its job
    os.kill(redis_server.process.pid, signal.SIGSTOP)
    try:
        time.sleep(7)
    finally:
        os.kill(redis_server.process.pid, signal.SIGCONT)
    cutout, info = job.result(timeout=60)
    assert Image.open(cutout).mode == "RGBA" and "Done" in info


def test_a_batch_through_the_gradio_api_gives_a_zip_of_every_result(api, photo, tmp_path):
    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.write(photo, "holiday/one.jpg")
        bundle.write(photo, "two.jpg")
        bundle.writestr("notes.txt", "not a photo")
    info, gallery, results = api.predict([handle_file(photo), handle_file(str(archive))], "u2netp", "mask",
                                         api_name="/remove_background_batch")
    assert "3 of 3 done" in info
    with zipfile.ZipFile(results) as bundle:
        names = sorted(bundle.namelist())
        assert len(names) == 3 and all(name.endswith("-mask.png") for name in names), names
        assert all(Image.open(bundle.open(name)).mode == "L" for name in names)
    assert len(gallery) == 3
