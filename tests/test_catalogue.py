"""The catalogue drives these tests: each operation's `Example` runs with every engine
whose weights are present here (REST), with the tab's defaults (the Gradio API), and
through its tab in Chromium. A new operation or engine is covered without a new test."""
from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
import requests
from gradio_client import Client, handle_file
from PIL import Image

from pipelines import samples
from pipelines.catalogue import OPERATIONS
from pipelines.diffusion import UsesDiffusers
from pipelines.registry import AUTO, Operation
from tests.test_browser import open_tab, result_size, screenshot, wait_done
from tests.test_rest_api import wait_done as rest_done
from ui.app import TABS

WITH_TAB = {module.__name__.rsplit(".", 1)[1]: title for title, module in TABS}


@pytest.fixture(scope="module")
def api(ui_url):
    return ui_url.rstrip("/") + "/api/v1"


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("samples")
    for name in samples.SOURCES:
        samples.write(name, folder)
    return folder


@pytest.fixture(scope="module")
def stand_in_models(tiny_sd, tiny_inpaint, u2netp_installed) -> dict[str, str]:
    """The diffusers folders the tests build, for the engines whose weights are the job's model."""
    return {"sd-inpaint": tiny_inpaint, "default": tiny_sd}


def operation(name: str) -> Operation:
    op = OPERATIONS[name]
    assert op.example is not None, f"{name}: give its Operation an Example (pipelines.registry.Example)"
    return op


def params_for(op: Operation, engine: str, models: dict[str, str]) -> dict:
    """The example's parameters with `engine`; where the engine (or the one "auto" takes
    first) runs a diffusion model, the stand-in model the tests built."""
    params = {**op.example.params, "engine": engine}
    if isinstance(op.engines[op.auto_order[0] if engine == AUTO else engine], UsesDiffusers):
        params["model"] = models.get(engine, models["default"])
    return params


def check(image: Image.Image, op: Operation, where: str) -> None:
    assert (image.size, image.mode) == (op.example.size, op.example.mode), (where, image.size, image.mode)


@pytest.mark.parametrize("name", list(OPERATIONS))
def test_every_engine_present_runs_the_example_through_rest(api, gpu_worker, files, stand_in_models, name):
    op = operation(name)
    present = [engine for engine, found in op.engines.items() if found.weights_present()]
    assert present, f"{name}: no engine can run here"
    for engine in [AUTO, *present]:
        upload = {input_name: (sample, (files / sample).read_bytes())
                  for input_name, sample in op.example.inputs.items()}
        answer = requests.post(f"{api}/tasks/submit/", files=upload or None, data={
            "operation": name, "params": json.dumps(params_for(op, engine, stand_in_models))})
        assert answer.status_code == 202, (engine, answer.text)
        status = rest_done(api, answer.json()["id"], timeout=180)
        assert status["state"] == "succeeded", (engine, status["error"])
        assert status["engine"] == engine if engine != AUTO else status["engine"] in op.engines, (engine, status)
        result = requests.get(answer.json()["result_url"])
        image = Image.open(io.BytesIO(result.content))
        check(image, op, f"{name}/{engine}")
        assert result.headers["content-type"] == f"image/{image.format.lower()}"
        as_json = requests.get(answer.json()["result_url"], params={"format": "base64"}).json()
        assert base64.b64decode(as_json["images"][0]) == result.content
        assert requests.post(f"{api}/tasks/{answer.json()['id']}/cancel/").status_code == 409  # it has ended


def result_path(outputs: tuple) -> str:
    """The first image of a tab's outputs: a file, or a gallery's first item."""
    for value in outputs:
        if isinstance(value, str) and Path(value).is_file():
            return value
        if isinstance(value, list) and value:
            return value[0]["image"]
    raise AssertionError(f"no image in {outputs}")


@pytest.mark.parametrize("name", list(WITH_TAB))
def test_each_tab_runs_its_example_through_the_gradio_api_with_defaults(ui_url, gpu_worker, files, stand_in_models,
                                                                      name):
    """Only the example's photos and parameters (Generate: a model that is on disk); the
    rest takes the tab's defaults."""
    op = operation(name)
    photos = {input_name: handle_file(str(files / sample)) for input_name, sample in op.example.inputs.items()}
    params = {key: value for key, value in params_for(op, AUTO, stand_in_models).items() if key != "engine"}
    outputs = Client(ui_url, verbose=False).predict(**photos, **params, api_name=f"/{name}")
    assert "Done" in outputs[-1] and "engine" in outputs[-1], outputs[-1]
    check(Image.open(result_path(outputs)), op, name)


def reveal(page, element_id: str):
    """The control, on screen: where it is not drawn yet, its tab's accordions are opened
    (Gradio draws an accordion's content when it first opens), as a person would."""
    control = page.locator(f"#{element_id}")
    if not control.count():
        for header in page.locator("button.label-wrap:not(.open):visible").element_handles():
            header.click()
    control.wait_for(state="visible")
    return control


def fill(page, element_id: str, value: object) -> None:
    """Type `value` into a form control (a text box, a slider's number, a dropdown), as a person would."""
    field = reveal(page, element_id).locator("textarea, input[type=number], input[type=text], input:not([type])").first
    field.fill(str(value))
    field.press("Tab")


@pytest.mark.parametrize("name", list(WITH_TAB))
def test_each_tab_runs_its_example_in_the_page(browser, ui_url, gpu_worker, files, stand_in_models, name):
    op = operation(name)
    key = name.replace("_", "-")
    page = open_tab(browser, ui_url, WITH_TAB[name])
    page.locator(f"#{key}-run").wait_for()  # the tab is drawn
    for input_name, sample in op.example.inputs.items():
        reveal(page, f"{key}-{input_name.replace('_', '-')}").locator("input[type=file]").first.set_input_files(
            str(files / sample))
    for param, value in params_for(op, AUTO, stand_in_models).items():
        if param != "engine":
            fill(page, f"{key}-{param.replace('_', '-')}", value)
    page.locator(f"#{key}-run").click()
    text = wait_done(page, key, timeout=180)
    assert text.startswith("Done") and "engine" in text, text
    assert result_size(page, key) == list(op.example.size)
    screenshot(page, f"example-{name}")
