"""One visitor cannot starve or sink a studio others share: every request here is one a
hostile visitor sent, and each is refused cheaply, before the work, with a clear answer.

`shared` is a studio with two named API tokens (alice, bob) and a share of 3 jobs each;
`login` one with a login. Both are real UI processes (`launch.py --no-worker`).
"""
from __future__ import annotations

import concurrent.futures
import io
import json
import threading
import zipfile

import pytest
import requests
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from tests.conftest import UIProcess, wait_for
from tests.test_hostile import rss_mb

ALICE, BOB = {"Authorization": "Bearer tok-a"}, {"Authorization": "Bearer tok-b"}
WAITS = {"operation": "style_transfer", "params": '{"engine": "sd-img2img"}'}  # no gpu worker: stays queued


@pytest.fixture(scope="module")
def shared(cpu_worker):
    ui = UIProcess(STUDIO_API_TOKENS="alice:tok-a,bob:tok-b", STUDIO_API_TOKEN=None, STUDIO_DIAGNOSTIC=None,
                   STUDIO_MAX_JOBS_PER_OWNER="3")
    yield ui
    ui.stop()


@pytest.fixture(scope="module")
def login(cpu_worker):
    ui = UIProcess("--auth", "ada:lovelace", STUDIO_API_TOKEN=None)
    yield ui
    ui.stop()


def submit(ui: UIProcess, image: bytes, headers: dict, **fields) -> requests.Response:
    return requests.post(f"{ui.url}api/v1/tasks/submit/", headers=headers, data=fields,
                         files={"image": ("photo.png", image)}, timeout=60)


def cancel_all(ui: UIProcess, answers: list[requests.Response], headers: dict) -> None:
    for answer in answers:
        if answer.status_code == 202:
            requests.post(f"{ui.url}api/v1/tasks/{answer.json()['id']}/cancel/", headers=headers, timeout=10)


# -- work bounded before it is done -----------------------------------------------------------------

def zipped(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize("case, members, words", [
    ("zip bomb: 3 photos of 40 MB zeros", {f"p{i}.png": bytes(40 * 2**20) for i in range(3)}, "not a photo"),
    ("zip of 2000 entries", {f"f{i}.txt": b"" for i in range(2000)}, "2000 entries"),
])
def test_a_zip_is_judged_by_its_directory_before_anything_is_read(shared, tmp_path, case, members, words):
    path = tmp_path / "photos.zip"
    path.write_bytes(zipped(members))
    assert path.stat().st_size < 1_000_000
    before = rss_mb(shared.process.pid)
    client = Client(shared.url, headers=ALICE, verbose=False)
    with pytest.raises(AppError, match=words):
        client.predict([handle_file(str(path))], "u2netp", "cutout", api_name="/remove_background_batch")
    assert rss_mb(shared.process.pid) - before < 60, case


def test_a_huge_rest_batch_is_refused_before_it_is_parsed(shared):
    before = rss_mb(shared.process.pid)
    body = b'{"operation": "remove_background", "items": [' + b"{}," * 2_000_000 + b"{}]}"
    answer = requests.post(f"{shared.url}api/v1/batches/", headers={**ALICE, "Content-Type": "application/json"},
                           data=body, timeout=60)
    assert answer.status_code == 422 and "more than 100,000 values" in answer.text, answer.text[:300]
    assert rss_mb(shared.process.pid) - before < 100
    four = requests.post(f"{shared.url}api/v1/batches/", headers=ALICE, timeout=10, json={
        "operation": "remove_background", "items": [{"images": {"image": "AAAA"}}] * 4})
    assert four.status_code == 422 and "at most 3" in four.text, four.text


def test_a_seed_list_is_counted_before_it_is_read(shared):
    client = Client(shared.url, headers=ALICE, verbose=False)
    with pytest.raises(AppError, match="at most 3 seeds"):
        client.predict("a cat", "", "sd-turbo", 1, 0, 512, 512, -1, 1, "1," * 200_000,
                       api_name="/generate_batch")


@pytest.mark.parametrize("case, path, body, status", [
    ("JSON nested 100,000 deep", "gradio_api/queue/join", b"[" * 100_000, 422),
    ("3 MB JSON to a Gradio route", "gradio_api/queue/join", json.dumps({"data": ["a" * 3_000_000]}).encode(), 413),
    ("100 KB cancel body", "gradio_api/cancel", json.dumps({"session_hash": "a" * 100_000}).encode(), 413),
])
def test_bodies_are_bounded_by_what_the_route_needs(shared, case, path, body, status):
    answer = requests.post(shared.url + path, headers={**ALICE, "Content-Type": "application/json"}, data=body,
                           timeout=30)
    assert answer.status_code == status and answer.json()["detail"], (case, answer.status_code, answer.text[:200])


def test_a_generate_job_has_a_compute_budget(shared):
    answer = requests.post(f"{shared.url}api/v1/tasks/submit/", headers=ALICE, timeout=10, json={
        "operation": "generate", "images": {},
        "params": {"prompt": "x", "steps": 150, "width": 2048, "height": 2048, "num_images": 8}})
    assert answer.status_code == 422 and "5033 megapixel-steps" in answer.text, answer.text


# -- shares -----------------------------------------------------------------------------------------

def test_twenty_concurrent_submits_admit_exactly_the_share_and_tokens_are_told_apart(shared, tiny_png):
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda _: submit(shared, tiny_png, ALICE, **WAITS), range(20)))
    bobs = [submit(shared, tiny_png, BOB, **WAITS)]
    try:
        assert sorted(a.status_code for a in answers) == [202] * 3 + [429] * 17
        assert bobs[0].status_code == 202, bobs[0].text  # alice's burst is alice's alone
    finally:
        cancel_all(shared, answers, ALICE)
        cancel_all(shared, bobs, BOB)


def test_long_polls_are_capped_per_visitor_and_others_still_poll(shared, tiny_png):
    """Nine long polls at once from one visitor: eight are held, one is refused at once;
    another visitor still long-polls; the job's end answers the eight."""
    queued = submit(shared, tiny_png, ALICE, **WAITS).json()["id"]
    status = f"{shared.url}api/v1/tasks/{queued}/status/"
    answers: list[requests.Response] = []
    polls = [threading.Thread(target=lambda: answers.append(requests.get(status + "?wait=30", headers=ALICE,
                                                                         timeout=60)), daemon=True)
             for _ in range(9)]
    for poll in polls:
        poll.start()
    try:
        wait_for(lambda: answers, timeout=20)
        assert answers[0].status_code == 429 and "8 long polls" in answers[0].text, answers[0].text
        others = requests.get(status + "?wait=0.5", headers=BOB, timeout=10)
        assert others.status_code == 200 and others.json()["state"] == "queued"
    finally:
        requests.post(f"{shared.url}api/v1/tasks/{queued}/cancel/", headers=ALICE, timeout=10)
    for poll in polls:
        poll.join(timeout=10)  # the job's end answers them at once
    assert sorted(answer.status_code for answer in answers) == [200] * 8 + [429]
    assert all(answer.json()["state"] == "cancelled" for answer in answers if answer.status_code == 200)


# -- the door ---------------------------------------------------------------------------------------

def test_tokens_cookies_and_redirects_cannot_be_turned(shared):
    odd = requests.get(f"{shared.url}?token=%C3%A9", timeout=10)
    assert odd.status_code == 401
    away = requests.get(f"http://127.0.0.1:{shared.port}//evil.example/x?token=tok-a", allow_redirects=False,
                        timeout=10)
    assert away.status_code == 303 and away.headers["location"] == "/evil.example/x"
    behind_https = requests.get(f"{shared.url}?token=tok-a", headers={"X-Forwarded-Proto": "https"},
                                allow_redirects=False, timeout=10)
    assert "; Secure" in behind_https.headers["set-cookie"]
    page = requests.get(shared.url, headers=ALICE, timeout=10)
    assert "frame-ancestors 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "SAMEORIGIN" and "Secure" not in page.headers.get("set-cookie", "")


@pytest.mark.parametrize("method, path", [
    ("post", "gradio_api/cancel"), ("get", "gradio_api/heartbeat/abcdef"), ("post", "gradio_api/reset"),
    ("get", "gradio_api/runs"), ("get", "gradio_api/queue/data?session_hash=abc"), ("get", "config"),
])
def test_with_a_login_only_the_login_page_is_open(login, method, path):
    answer = requests.request(method, login.url + path, json={"session_hash": "abc"}, timeout=10)
    assert answer.status_code == 401, (path, answer.status_code, answer.text[:200])


def test_the_login_page_itself_and_a_logged_in_client_work(login, tmp_path, astronaut_jpeg):
    assert requests.get(login.url, timeout=10).status_code == 200
    photo = tmp_path / "astronaut.jpg"
    photo.write_bytes(astronaut_jpeg)
    client = Client(login.url, auth=("ada", "lovelace"), verbose=False)
    _, info = client.predict(handle_file(str(photo)), api_name="/remove_background")
    assert "Done" in info


def test_failed_logins_slow_down_per_address_and_per_user(login):
    def attempt(address: str, user: str = "ada", password: str = "wrong") -> requests.Response:
        return requests.post(login.url + "login", data={"username": user, "password": password},
                             headers={"X-Forwarded-For": address}, timeout=10)

    assert [attempt("198.51.100.1").status_code for _ in range(5)] == [400] * 5
    slowed = attempt("198.51.100.1", password="lovelace")  # even the right one waits now
    assert slowed.status_code == 429 and int(slowed.headers["Retry-After"]) >= 1
    assert attempt("198.51.100.2", password="lovelace").status_code == 200  # another address may
    for number in range(20):  # a user guessed at from many addresses
        assert attempt(f"203.0.113.{number}", user="grace").status_code == 400
    assert attempt("203.0.113.200", user="grace").status_code == 429
    basic = [requests.get(login.url + "docs", auth=("ada", "nope"), headers={"X-Forwarded-For": "192.0.2.9"},
                          timeout=10).status_code for _ in range(7)]
    assert basic[:5] == [401] * 5 and basic[-1] == 429, basic
