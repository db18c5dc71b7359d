"""The REST API through the real stack: UI process (`launch.py --no-worker`),
Valkey and a worker. Webhooks go to a receiver the test runs on 127.0.0.1."""
from __future__ import annotations

import base64
import http.server
import io
import json
import threading
import time

import pytest
import requests
from PIL import Image

from tests.conftest import wait_for
from tests.test_queue import running, slow_job


@pytest.fixture(scope="module")
def api(ui_url):
    return ui_url.rstrip("/") + "/api/v1"


def submit_multipart(api, image: bytes, operation="remove_background", **params) -> requests.Response:
    return requests.post(f"{api}/tasks/submit/", data={"operation": operation, "params": json.dumps(params)},
                         files={"image": ("photo.jpg", image, "image/jpeg")})


def wait_done(api, job_id, timeout=90) -> dict:
    return wait_for(lambda: (s := requests.get(f"{api}/tasks/{job_id}/status/").json())["state"]
                    in ("succeeded", "failed", "cancelled") and s, timeout=timeout, poll=0.1)


def test_multipart_submit_status_and_result(api, astronaut_jpeg):
    answer = submit_multipart(api, astronaut_jpeg, engine="u2netp", output="color", color="#0000ff")
    assert answer.status_code == 202
    job = answer.json()
    assert job["state"] == "queued" and job["status_url"] == f"{api}/tasks/{job['id']}/status/"
    status = wait_done(api, job["id"])
    assert status["state"] == "succeeded" and status["percent"] == 100 and status["engine"] == "u2netp"
    result = requests.get(f"{api}/tasks/{job['id']}/result/")
    assert result.headers["content-type"] == "image/jpeg"  # a JPEG photo on an opaque backdrop
    image = Image.open(io.BytesIO(result.content))
    assert image.size == (512, 512) and image.getpixel((500, 10))[2] > 200  # blue backdrop


def test_json_base64_submit_and_base64_result(api, astronaut_jpeg):
    body = {"operation": "remove_background", "params": {"engine": "u2netp"},
            "images": {"image": "data:image/jpeg;base64," + base64.b64encode(astronaut_jpeg).decode()}}
    job = requests.post(f"{api}/tasks/submit/", json=body).json()
    assert wait_done(api, job["id"])["state"] == "succeeded"
    result = requests.get(f"{api}/tasks/{job['id']}/result/", params={"format": "base64"}).json()
    cutout = Image.open(io.BytesIO(base64.b64decode(result["images"][0])))
    assert cutout.mode == "RGBA" and result["engine"] == "u2netp"


def test_queue_position_result_before_completion_and_cancel(api, client, tiny_png, astronaut_jpeg):
    blocker = slow_job(client, tiny_png, steps=100)
    wait_for(lambda: running(client, blocker))
    job = submit_multipart(api, astronaut_jpeg, engine="u2netp").json()
    status = requests.get(job["status_url"]).json()
    assert status["state"] == "queued" and status["position"] == 1
    early = requests.get(f"{api}/tasks/{job['id']}/result/")
    assert early.status_code == 409 and "queued" in early.json()["detail"]
    running_cancel = requests.post(f"{api}/tasks/{blocker}/cancel/")
    assert running_cancel.status_code == 200
    assert wait_done(api, blocker)["state"] == "cancelled"
    assert wait_done(api, job["id"])["state"] == "succeeded"
    again = requests.post(f"{api}/tasks/{job['id']}/cancel/")
    assert again.status_code == 409 and "already succeeded" in again.json()["detail"]


@pytest.mark.parametrize("path", ["status/", "result/"])
def test_unknown_id_is_404(api, path):
    answer = requests.get(f"{api}/tasks/{'ab' * 16}/{path}")
    assert answer.status_code == 404 and "No job" in answer.json()["detail"]


@pytest.mark.parametrize(
    "send, status, message",
    [
        (lambda api, jpeg: submit_multipart(api, b"\x00garbage"), 422, "not an image"),
        (lambda api, jpeg: submit_multipart(api, jpeg, engine="nope"), 422, "Unknown engine"),
        (lambda api, jpeg: submit_multipart(api, jpeg, operation="paint"), 422, "Unknown operation"),
        (lambda api, jpeg: requests.post(f"{api}/tasks/submit/", json={"operation": "remove_background",
                                                                       "images": {"image": "@@@"}}), 422, "base64"),
        (lambda api, jpeg: requests.post(f"{api}/tasks/submit/", data=b"x", headers={"Content-Type": "text/plain"}),
         415, "multipart"),
        (lambda api, jpeg: requests.post(f"{api}/tasks/submit/", data={"operation": "remove_background"}),
         422, "No image was given"),
    ],
    ids=["corrupt-image", "engine", "operation", "base64", "content-type", "no-image"],
)
def test_bad_requests_get_clear_4xx(api, astronaut_jpeg, send, status, message):
    answer = send(api, astronaut_jpeg)
    assert answer.status_code == status and message in answer.json()["detail"]


def test_operations_list_parameters_for_parity_with_the_ui(api):
    operations = {op["name"]: op for op in requests.get(f"{api}/operations/").json()}
    background = operations["remove_background"]
    assert background["inputs"] == ["image"] and "u2netp" in background["engines"]
    assert {"engine", "output", "color"} <= set(background["params_schema"]["properties"])


def test_old_parameter_names_still_reach_the_job(api, astronaut_jpeg):
    """`sd_model` (now `model`) from a client written before the names were unified."""
    answer = submit_multipart(api, astronaut_jpeg, "style_transfer", sd_model="../etc")
    assert answer.status_code == 422 and "model: Value error, Unknown model '../etc'" in answer.json()["detail"]


class Receiver:
    """A local webhook receiver: answers 500 to the first `failures` calls, then 200."""

    def __init__(self, failures: int = 0):
        self.calls: list[dict] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                receiver.calls.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(500 if len(receiver.calls) <= failures else 200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_webhook_is_delivered_with_retries(api, astronaut_jpeg):
    receiver = Receiver(failures=1)
    job = requests.post(f"{api}/tasks/submit/", data={"operation": "remove_background", "callback_url": receiver.url,
                                                      "params": json.dumps({"engine": "u2netp"})},
                        files={"image": ("a.jpg", astronaut_jpeg)}).json()
    assert "id" in job, job
    wait_for(lambda: len(receiver.calls) >= 2, timeout=30)
    assert receiver.calls[-1]["id"] == job["id"] and receiver.calls[-1]["state"] == "succeeded"
    assert receiver.calls[-1]["event"] == "job.finished"
    receiver.server.shutdown()


def test_webhook_to_a_private_address_is_refused(api, astronaut_jpeg):
    answer = requests.post(f"{api}/tasks/submit/", data={"operation": "remove_background",
                                                         "callback_url": "http://10.20.30.40/hook"},
                           files={"image": ("a.jpg", astronaut_jpeg)})
    assert answer.status_code == 422 and "private" in answer.json()["detail"]


@pytest.fixture(scope="module")
def locked_api(locked_ui):
    """The API of a UI process with a bearer token and no webhook allow-list."""
    return f"{locked_ui.url}api/v1"


def test_token_is_required_when_set(locked_api, astronaut_jpeg):
    assert requests.get(f"{locked_api}/operations/").status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert requests.get(f"{locked_api}/tasks/{'ab' * 16}/status/", headers=wrong).status_code == 401
    right = {"Authorization": "Bearer s3cret"}
    assert requests.get(f"{locked_api}/operations/", headers=right).status_code == 200


def test_loopback_webhook_refused_without_allow_list(locked_api, astronaut_jpeg):
    answer = requests.post(f"{locked_api}/tasks/submit/", headers={"Authorization": "Bearer s3cret"},
                           data={"operation": "remove_background", "callback_url": "http://127.0.0.1:9/hook"},
                           files={"image": ("a.jpg", astronaut_jpeg)})
    assert answer.status_code == 422 and "loopback" in answer.json()["detail"]


def test_openapi_documents_the_api_alone(api, ui_url):
    spec = requests.get(ui_url + "openapi.json").json()
    assert set(spec["paths"]) == {"/api/v1/tasks/submit/", "/api/v1/tasks/{job_id}/status/",
                                  "/api/v1/tasks/{job_id}/result/", "/api/v1/tasks/{job_id}/cancel/",
                                  "/api/v1/operations/", "/api/v1/batches/", "/api/v1/batches/{batch_id}/status/",
                                  "/api/v1/batches/{batch_id}/cancel/"}
    assert requests.get(ui_url + "docs").status_code == 200


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_a_batch_runs_one_job_per_item_and_cancels_as_a_whole(api, client, tiny_png, astronaut_jpeg):
    blocker = slow_job(client, tiny_png, steps=100)  # so the batch is still queued when it is cancelled
    wait_for(lambda: running(client, blocker))
    body = {"operation": "remove_background", "params": {"engine": "u2netp", "output": "mask"},
            "items": [{"images": {"image": b64(astronaut_jpeg)}}, {"images": {"image": b64(astronaut_jpeg)}},
                      {"images": {"image": b64(astronaut_jpeg)}, "params": {"output": "transparent"}}]}
    batch = requests.post(f"{api}/batches/", json=body)
    assert batch.status_code == 202 and len(batch.json()["jobs"]) == 3
    state = requests.get(batch.json()["status_url"]).json()
    assert state["counts"]["queued"] == 3 and not state["done"]
    assert [job["batch"] for job in state["jobs"]] == [batch.json()["id"]] * 3
    cancelled = requests.post(f"{api}/batches/{batch.json()['id']}/cancel/").json()
    assert cancelled["done"] and cancelled["counts"]["cancelled"] == 3
    client.cancel(blocker)
    again = requests.post(f"{api}/batches/", json=body).json()
    finished = wait_for(lambda: (s := requests.get(again["status_url"]).json())["done"] and s, timeout=90)
    assert finished["counts"]["succeeded"] == 3 and finished["percent"] == 100
    modes = [Image.open(io.BytesIO(requests.get(f"{api}/tasks/{job}/result/").content)).mode for job in again["jobs"]]
    assert modes == ["L", "L", "RGBA"]  # the shared parameters, and the third item's own


def test_a_batch_of_one_item_is_a_batch_too(api, astronaut_jpeg):  # a photo with a subject to cut out
    batch = requests.post(f"{api}/batches/", json={"operation": "remove_background", "params": {"engine": "u2netp"},
                                                   "items": [{"images": {"image": b64(astronaut_jpeg)}}]}).json()
    finished = wait_for(lambda: (s := requests.get(batch["status_url"]).json()).get("done") and s, timeout=60)
    assert finished["counts"]["succeeded"] == 1 and finished["jobs"][0]["batch"] == batch["id"]


def test_a_batch_with_one_bad_item_queues_nothing(api, client, astronaut_jpeg):
    waiting = client.store.waiting_count(("cpu", "gpu"))
    body = {"operation": "remove_background", "items": [{"images": {"image": b64(astronaut_jpeg)}},
                                                         {"images": {"image": b64(b"not an image")}}]}
    answer = requests.post(f"{api}/batches/", json=body)
    assert answer.status_code == 422 and answer.json()["detail"].startswith("Item 2 of the batch:")
    assert client.store.waiting_count(("cpu", "gpu")) == waiting
    assert requests.get(f"{api}/batches/{'0' * 32}/status/").status_code == 404


def test_a_long_poll_answers_when_the_job_ends(api, client, tiny_png):
    job = slow_job(client, tiny_png, steps=10, step_seconds=0.2)  # about 2 s
    started = time.monotonic()
    status = requests.get(f"{api}/tasks/{job}/status/", params={"wait": 30}, timeout=40).json()
    assert status["state"] == "succeeded" and time.monotonic() - started < 10  # not the whole 30 s
    again = time.monotonic()
    assert requests.get(f"{api}/tasks/{job}/status/", params={"wait": 30}, timeout=40).json()["state"] == "succeeded"
    assert time.monotonic() - again < 1  # an ended job answers at once
    running_job = slow_job(client, tiny_png, steps=100, step_seconds=0.1)
    early = requests.get(f"{api}/tasks/{running_job}/status/", params={"wait": 1}, timeout=10).json()
    assert early["state"] in ("queued", "running")  # the wait is bounded
    client.cancel(running_job)
    assert requests.get(f"{api}/tasks/{'0' * 32}/status/", params={"wait": 30}, timeout=5).status_code == 404
