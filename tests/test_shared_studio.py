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
                   STUDIO_MAX_JOBS_PER_OWNER="3", STUDIO_UPLOAD_BUDGET_MB="20")
    yield ui
    ui.stop()


@pytest.fixture(scope="module")
def slowloris_ui(cpu_worker):
    ui = UIProcess(STUDIO_API_TOKENS="alice:tok-a", STUDIO_API_TOKEN=None, STUDIO_HEADER_SECONDS="2",
                   STUDIO_CONNECTIONS_PER_ADDRESS="20")
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
        client.predict("a cat", seeds="1," * 200_000, api_name="/generate_batch")


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


# -- pixels -----------------------------------------------------------------------------------------

def png(image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **options)
    return buffer.getvalue()


def test_pixel_floods_leave_the_ui_as_it_was(shared):
    """12 truncated 40-megapixel RGBA PNGs, then a 40-megapixel 16-bit one (with an empty
    mask, so nothing is queued): refused or checked, and the UI's memory comes back."""
    import numpy as np
    from PIL import Image

    side = 6300  # 39.7 megapixels
    truncated = png(Image.new("RGBA", (side, side)), compress_level=9)
    truncated = truncated[:len(truncated) // 2]
    deep = png(Image.fromarray(np.zeros((side, side), np.uint16)), compress_level=9)
    mask = png(Image.new("1", (side, side)), compress_level=9)
    assert len(truncated) + len(deep) + len(mask) < 2_000_000
    before = rss_mb(shared.process.pid)
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda _: submit(shared, truncated, ALICE, operation="remove_background"), range(12)))
    assert all(a.status_code == 422 and "truncated" in a.text for a in answers), answers[0].text
    answer = requests.post(f"{shared.url}api/v1/tasks/submit/", headers=ALICE, timeout=60,
                           data={"operation": "remove_object"},
                           files={"image": ("deep.png", deep), "mask": ("mask.png", mask)})
    assert answer.status_code == 422 and "mask" in answer.text.lower(), answer.text
    assert rss_mb(shared.process.pid) - before < 200


# -- connections ------------------------------------------------------------------------------------

def partial_request(ui: UIProcess, source: str = "127.0.0.1"):
    """A socket from `source` that sends the start of a request's headers and no more."""
    import socket

    sock = socket.socket()
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", ui.port))
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
    sock.settimeout(30)
    return sock


def closed(sock) -> bool:
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:
        return True


def test_slow_headers_are_cut_off_and_one_address_holds_a_bounded_number_of_connections(slowloris_ui):
    import time

    started = time.monotonic()
    slow = partial_request(slowloris_ui)
    assert closed(slow) and time.monotonic() - started < 10  # STUDIO_HEADER_SECONDS=2 here
    held = [partial_request(slowloris_ui, "127.0.0.2") for _ in range(20)]  # the most one address may hold
    extra = partial_request(slowloris_ui, "127.0.0.2")
    extra.settimeout(1.5)
    assert closed(extra)  # at once, not after the header time
    page = requests.get(slowloris_ui.url, headers=ALICE, timeout=5)  # another visitor is served meanwhile
    assert page.status_code == 200
    for sock in held + [slow, extra]:
        sock.close()


def test_open_streams_are_capped_per_visitor(shared):
    visitor = {**ALICE, "X-Forwarded-For": "198.51.100.77"}
    streams = [requests.get(f"{shared.url}gradio_api/heartbeat/s{n}", headers=visitor, stream=True, timeout=10)
               for n in range(32)]
    try:
        assert all(stream.status_code == 200 for stream in streams)
        refused = requests.get(f"{shared.url}gradio_api/heartbeat/s32", headers=visitor, stream=True, timeout=10)
        assert refused.status_code == 429 and "32 pages or streams" in refused.text
        other = requests.get(f"{shared.url}gradio_api/heartbeat/o", headers=ALICE, stream=True, timeout=10)
        assert other.status_code == 200
        other.close()
    finally:
        for stream in streams:
            stream.close()


def test_uploads_to_disk_count_against_a_budget(shared):
    """20 MB per visitor here: two 8 MB uploads pass, the third is refused before it is
    written; another visitor may still upload."""
    visitor = {**BOB, "X-Forwarded-For": "198.51.100.88"}
    upload = lambda headers: requests.post(f"{shared.url}gradio_api/upload", headers=headers, timeout=60,  # noqa: E731
                                           files={"files": ("big.png", bytes(8 * 2**20))})
    assert [upload(visitor).status_code for _ in range(2)] == [200, 200]
    third = upload(visitor)
    assert third.status_code == 429 and "20 MB" in third.text, third.text
    assert upload({**BOB, "X-Forwarded-For": "198.51.100.89"}).status_code == 200


def test_an_error_logged_again_and_again_is_logged_once_a_minute():
    import logging

    from ui.connections import OncePerMinute

    quiet, seen = OncePerMinute(), []
    record = lambda message: logging.LogRecord("asyncio", logging.ERROR, __file__, 1, message, None, None)  # noqa: E731
    for fd in range(1000):
        if quiet.filter(record(f"socket.accept() out of system resource\nsocket: <fd={fd}>")):
            seen.append(fd)
    assert seen == [0] and quiet.filter(record("another error"))
