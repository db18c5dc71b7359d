"""A stranger on a share link: every request below is hostile, and each must get a clear
error (never a traceback or a 500), kill no worker, and stall no server.

Most cases run against `locked_ui`, the studio as one shares it (an access token, small
limits); a probe thread times `GET /` throughout and the last test checks the worst stall.
"""
from __future__ import annotations

import base64
import socket
import textwrap
import threading
import time
import zlib
from pathlib import Path

import pytest
import requests
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from tests.conftest import UIProcess, process_group, wait_for

TOKEN = {"Authorization": "Bearer s3cret"}
OUTCOMES: list[str] = []  # one line per hostile case, printed at the end


class StallProbe:
    """Times `GET /` every 0.2 s in a thread while the hostile cases run."""

    def __init__(self, url: str):
        self.url, self.worst, self.count, self.worst_during = url, 0.0, 0, ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with requests.Session() as session:
            while not self._stop.wait(0.2):
                started = time.monotonic()
                session.get(self.url, headers=TOKEN, timeout=30)
                took, self.count = time.monotonic() - started, self.count + 1
                if took > self.worst:
                    self.worst, self.worst_during = took, OUTCOMES[-1] if OUTCOMES else "start"

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture(scope="module")
def probe(locked_ui, cpu_worker):
    probe = StallProbe(locked_ui.url)
    probe.workers = process_group(cpu_worker.process.pid)  # launcher, Celery main process, pool children
    yield probe
    probe.stop()


@pytest.fixture(scope="module")
def api(locked_ui, probe):
    return f"{locked_ui.url}api/v1"


def refused(answer: requests.Response, status: int, words: str, case: str) -> None:
    """The answer is `status` with `words` in its message; the case is counted."""
    assert answer.status_code == status, (case, answer.status_code, answer.text[:300])
    assert words.lower() in answer.text.lower(), (case, answer.text[:300])
    OUTCOMES.append(f"{case}: {status}")


def submit(api: str, image: bytes, operation: str = "remove_background", headers=TOKEN, **fields) -> requests.Response:
    return requests.post(f"{api}/tasks/submit/", headers=headers, data={"operation": operation, **fields},
                         files={"image": ("photo.png", image)}, timeout=60)


# -- credentials: nothing that runs, lists or reads a job works without them --------------------------

@pytest.mark.parametrize("method, path", [
    ("get", "/"), ("get", "/config"), ("get", "/gradio_api/info"), ("post", "/gradio_api/queue/join"),
    ("post", "/gradio_api/upload"), ("get", "/docs"), ("get", "/openapi.json"), ("get", "/api/v1/operations/"),
    ("post", "/api/v1/tasks/submit/"), ("get", f"/api/v1/tasks/{'ab' * 16}/status/"),
    ("get", "/gradio_api/call/remove_background"),
])
def test_no_route_works_without_the_token(locked_ui, probe, method, path):
    answer = requests.request(method, locked_ui.url.rstrip("/") + path, timeout=10)
    refused(answer, 401, "token", f"no token: {method.upper()} {path}")


def test_wrong_token_and_wrong_cookie_are_refused(locked_ui, probe):
    refused(requests.get(locked_ui.url, headers={"Authorization": "Bearer nope"}, timeout=10), 401, "token",
            "wrong bearer token")
    refused(requests.get(locked_ui.url, cookies={"studio-token": "nope"}, timeout=10), 401, "token",
            "wrong token cookie")


def test_a_browser_signs_in_once_with_the_token_link(locked_ui, probe):
    with requests.Session() as browser:
        first = browser.get(f"{locked_ui.url}?token=s3cret", allow_redirects=False, timeout=10)
        assert first.status_code == 303 and first.headers["location"] == "/"
        assert browser.get(locked_ui.url, timeout=10).status_code == 200  # the cookie now does
    OUTCOMES.append("token link: cookie set, page served (the way in, not a refusal)")


def test_gradio_client_with_the_token_runs_a_job(locked_ui, probe, tmp_path, astronaut_jpeg):
    photo = tmp_path / "astronaut.jpg"
    photo.write_bytes(astronaut_jpeg)
    with pytest.raises(Exception):
        Client(locked_ui.url, verbose=False)
    client = Client(locked_ui.url, headers=TOKEN, verbose=False)
    cutout, info = client.predict(handle_file(str(photo)), api_name="/remove_background")
    assert Image.open(cutout).mode == "RGBA" and "Done" in info


def test_login_guards_docs_and_gradio_routes(cpu_worker):
    ui = UIProcess("--auth", "ada:lovelace", STUDIO_DIAGNOSTIC=None)
    try:
        for path in ("docs", "openapi.json", "config", "gradio_api/info", "api/v1/operations/"):
            answer = requests.get(ui.url + path, timeout=10)
            assert answer.status_code in (401, 403), (path, answer.status_code)
            OUTCOMES.append(f"login set, no login: GET /{path}: {answer.status_code}")
        assert requests.get(ui.url + "docs", auth=("ada", "lovelace"), timeout=10).status_code == 200
        assert requests.get(ui.url + "api/v1/operations/", auth=("ada", "lovelace"), timeout=10).status_code == 200
    finally:
        ui.stop()


def test_an_exposed_studio_without_a_login_warns(cpu_worker):
    ui = UIProcess("--host", "0.0.0.0", STUDIO_API_TOKEN=None, STUDIO_AUTH=None, capture=True)
    try:
        assert "WARNING: the studio is reachable from other machines" in ui.output()
    finally:
        ui.stop()
    OUTCOMES.append("--host 0.0.0.0 without login or token: warning printed")


# -- bodies and files without limits --------------------------------------------------------------------

def rss_mb(pid: int) -> float:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * 4096 / 2**20


def test_a_300_mb_body_is_refused_by_its_length(locked_ui, api):
    before = rss_mb(locked_ui.process.pid)
    with socket.create_connection(("127.0.0.1", locked_ui.port)) as sock:
        sock.sendall(b"POST /api/v1/tasks/submit/ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret\r\n"
                     b"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 314572800\r\n\r\n")
        sock.sendall(b"\0" * 65536)
        sock.settimeout(5)
        reply = ""
        while "}" not in reply and (chunk := sock.recv(65536)):  # headers, then the JSON body
            reply += chunk.decode("latin-1")
    assert reply.startswith("HTTP/1.1 413") and "limit is 16 MB" in reply, reply[:300]
    assert rss_mb(locked_ui.process.pid) - before < 50
    OUTCOMES.append("300 MB body (Content-Length): 413")


def test_a_streamed_body_is_cut_off_at_the_limit(locked_ui, api):
    before = rss_mb(locked_ui.process.pid)

    def chunks():
        yield b"--b\r\nContent-Disposition: form-data; name=\"image\"; filename=\"x.png\"\r\n\r\n"
        for _ in range(300):
            yield b"\0" * 2**20

    try:
        answer = requests.post(f"{api}/tasks/submit/", data=chunks(), timeout=60,
                               headers={**TOKEN, "Content-Type": "multipart/form-data; boundary=b"})
        refused(answer, 413, "limit", "300 MB chunked body")
    except requests.ConnectionError:  # the server answered 413 and closed while the client still sent
        OUTCOMES.append("300 MB chunked body: closed at the limit")
    assert rss_mb(locked_ui.process.pid) - before < 50


def test_gradio_upload_over_the_limit_is_refused(locked_ui, probe):
    answer = requests.post(f"{locked_ui.url}gradio_api/upload", headers=TOKEN, timeout=60,
                           files={"files": ("big.png", b"\0" * (6 * 2**20))})
    assert answer.status_code in (400, 413) and "size" in answer.text.lower(), answer.text[:200]
    OUTCOMES.append(f"6 MB Gradio upload over a 5 MB limit: {answer.status_code}")


def bomb_png(side: int = 30_000) -> bytes:
    """A 1-bit PNG that is a few KB on disk and `side`² pixels decoded."""
    row = b"\0" + b"\0" * ((side + 7) // 8)
    data = zlib.compress(row * side, 9)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")

    header = side.to_bytes(4, "big") * 2 + bytes([1, 0, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def test_decompression_bombs_are_refused_at_submit(api, locked_ui, tmp_path, tiny_png):
    bomb = bomb_png()
    refused(submit(api, bomb), 422, "megapixels", "decompression bomb (REST)")
    path = tmp_path / "bomb.png"
    path.write_bytes(bomb)
    client = Client(locked_ui.url, headers=TOKEN, verbose=False)
    editor = {"background": handle_file(str(path)), "layers": [handle_file(str(path))], "composite": None}
    with pytest.raises(AppError, match="megapixels"):
        client.predict(editor, api_name="/remove_object")
    OUTCOMES.append("decompression bomb through the editor: refused")


# -- what a visitor can make the studio do ------------------------------------------------------------

def test_parameters_png_with_a_megabyte_of_text_is_read_in_a_blink(locked_ui, probe, tmp_path):
    """1 KB of compressed text chunk, 1 MB once read: the form fills at once (the parser
    is linear), and the server never stalls (checked by the probe)."""
    from PIL.PngImagePlugin import PngInfo

    from ui.tabs.generate import read_png_parameters

    for size in (900_000, 2_000_000):  # under and over Pillow's 1 MB text-chunk limit
        info = PngInfo()
        info.add_text("parameters", "a" * size + "\nSteps: " + " " * 50_000, zip=True)
        path = tmp_path / f"crafted-{size}.png"
        Image.new("RGB", (8, 8)).save(path, pnginfo=info)
        assert path.stat().st_size < 10_000
        started = time.monotonic()
        read_png_parameters({"path": str(path)})
        assert time.monotonic() - started < 0.5
        OUTCOMES.append(f"{size / 1e6:.1f} MB parameters text in a {path.stat().st_size} byte PNG: under 0.5 s")


def test_any_model_id_is_refused(api, locked_ui):
    answer = requests.post(f"{api}/tasks/submit/", headers=TOKEN, timeout=10,
                           json={"operation": "generate", "params": {"prompt": "x", "model": "someone/huge-model"},
                                 "images": {}})
    refused(answer, 422, "not offered", "arbitrary Hugging Face model id")
    client = Client(locked_ui.url, headers=TOKEN, verbose=False)
    with pytest.raises(AppError, match="not offered"):
        client.predict("a cat", "", "someone/huge-model", api_name="/generate")
    OUTCOMES.append("arbitrary model id through the Gradio API: refused")


def test_the_diagnostic_operation_is_not_offered(api, tiny_png):
    refused(submit(api, tiny_png, operation="diagnostic", params='{"steps": 10000, "step_seconds": 10}'), 422,
            "Unknown operation", "diagnostic operation")


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:9/hook", "http://localhost/hook", "http://[::1]/hook", "http://10.0.0.1/hook",
    "http://169.254.169.254/latest/meta-data", "http://[::ffff:127.0.0.1]/hook", "http://[64:ff9b::7f00:1]/hook",
    "http://[2002:7f00:1::]/hook", "http://[::127.0.0.1]/hook", "http://[fec0::1]/hook", "file:///etc/passwd",
    "gopher://example.com/", "http://0.0.0.0/hook", "http://224.0.0.1/hook", "http://[ff02::1]/hook",
])
def test_webhooks_to_private_or_tunnelled_addresses_are_refused(api, tiny_png, url):
    answer = submit(api, tiny_png, callback_url=url)
    assert answer.status_code == 422, (url, answer.text)
    assert any(w in answer.json()["detail"] for w in ("private", "loopback", "multicast", "http://")), answer.text
    OUTCOMES.append(f"webhook to {url}: 422")


class Receiver:
    """A webhook receiver on `host`: notes each POST (path, headers, body); `trickle` makes
    it answer one byte a second instead."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, trickle: bool = False):
        import http.server

        self.hits: list[tuple[str, dict, bytes]] = []
        hits = self.hits

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                hits.append((self.path, dict(self.headers), self.rfile.read(int(self.headers["Content-Length"]))))
                if trickle:
                    try:
                        for byte in b"HTTP/1.1 204 No Content\r\n\r\n":
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                            time.sleep(1)
                    except (BrokenPipeError, ConnectionResetError):  # the sender gave up at its deadline
                        pass
                    return
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer((host, port), Handler)
        self.port = self.server.server_port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_delivery_connects_to_the_address_that_was_checked(monkeypatch):
    """DNS rebinding: the name first resolves to an allowed listener (127.0.0.1 is on the
    suite's allow-list), every time after to another one (127.0.0.2). The delivery hits
    the first only. Only that name's lookups are faked: numeric ones go to the system."""
    from tasks import webhooks

    first = Receiver("127.0.0.1")
    second = Receiver("127.0.0.2", first.port)
    answers = iter(["127.0.0.1"] + ["127.0.0.2"] * 10)
    system = socket.getaddrinfo

    def lookup(host, port, *args, **kwargs):
        if host == "rebind.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]
        return system(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    try:
        assert webhooks.attempt(f"http://rebind.example:{first.port}/hook", {"id": "x"})
    finally:
        first.close()
        second.close()
    assert [path for path, _, _ in first.hits] == ["/hook"] and second.hits == []
    OUTCOMES.append("DNS rebinding: the delivery went to the checked address only")


def test_a_trickling_receiver_cannot_hold_a_delivery(monkeypatch):
    """One byte a second: every read is within the socket timeout, yet the attempt ends
    at its deadline."""
    from tasks import webhooks

    monkeypatch.setattr(webhooks, "TIMEOUT_SECONDS", 2)
    slow = Receiver(trickle=True)
    started = time.monotonic()
    try:
        assert not webhooks.attempt(f"http://127.0.0.1:{slow.port}/hook", {"id": "x"})
    finally:
        slow.close()
    assert time.monotonic() - started < 4
    OUTCOMES.append("webhook receiver answering a byte a second: cut off at the deadline")


def test_a_signature_checks_with_the_readmes_snippet_for_its_url_only(monkeypatch):
    """A real delivery with STUDIO_WEBHOOK_SECRET set, checked by the README's own code;
    the same delivery replayed to another URL does not verify."""
    import re

    from tasks import webhooks

    monkeypatch.setenv("STUDIO_WEBHOOK_SECRET", "k3y")
    receiver = Receiver()
    url = f"http://127.0.0.1:{receiver.port}/hook"
    try:
        assert webhooks.attempt(url, {"id": "x"})
    finally:
        receiver.close()
    _, headers, body = receiver.hits[0]
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    snippet = textwrap.dedent(next(block for block in blocks if "Studio-Signature" in block))
    request = type("Request", (), {"headers": headers})
    exec(snippet, {"request": request, "body": body, "SECRET": b"k3y", "MY_CALLBACK_URL": url})
    with pytest.raises(AssertionError):
        exec(snippet, {"request": request, "body": body, "SECRET": b"k3y", "MY_CALLBACK_URL": url + "2"})
    OUTCOMES.append("webhook signature: verified by the README's snippet, for its own URL only")


def test_one_visitor_cannot_fill_the_queue(api, client, tiny_png):
    """sd-img2img jobs wait on the gpu queue (no gpu worker here): the token's fourth job
    is refused with how many it has, other visitors are still served, and past six
    waiting in all everyone gets "busy" with a Retry-After."""
    params = '{"engine": "sd-img2img"}'
    ids = []
    try:
        for _ in range(3):
            answer = submit(api, tiny_png, operation="style_transfer", params=params)
            assert answer.status_code == 202, answer.text
            ids.append(answer.json()["id"])
        refused(submit(api, tiny_png, operation="style_transfer", params=params), 429, "you have 3 jobs",
                "flood from one owner")
        for visitor in ("ip:203.0.113.7", "ip:203.0.113.8", "ip:203.0.113.9"):  # others are still served
            ids.append(client.submit("style_transfer", {"image": tiny_png}, {"engine": "sd-img2img"}, quota=visitor))
        busy = submit(api, tiny_png, operation="style_transfer", params=params)
        refused(busy, 429, "busy", "global queue cap")
        assert int(busy.headers["Retry-After"]) >= 10
    finally:
        for job in ids:
            client.cancel(job)


def test_malformed_requests_get_clear_answers(api, tiny_png):
    cases = {
        "params not JSON": submit(api, tiny_png, params="{nope"),
        "params a list": submit(api, tiny_png, params="[1, 2]"),
        "negative dilate": submit(api, tiny_png, operation="remove_object", params='{"dilate": -5}'),
        "huge max_side": submit(api, tiny_png, operation="style_transfer", params='{"max_side": 99999}'),
        "prompt of 100k chars": requests.post(f"{api}/tasks/submit/", headers=TOKEN, timeout=10, json={
            "operation": "generate", "params": {"prompt": "a" * 100_000}, "images": {}}),
        "image is text": submit(api, b"hello world"),
        "truncated PNG": submit(api, tiny_png[:40]),
        "JSON body not an object": requests.post(f"{api}/tasks/submit/", headers=TOKEN, json=[1, 2], timeout=10),
        "unknown job id shape": requests.get(f"{api}/tasks/..%2F..%2Fetc/status/", headers=TOKEN, timeout=10),
        "result index out of range": requests.get(f"{api}/tasks/{'ab' * 16}/result/?index=99999999", headers=TOKEN,
                                                  timeout=10),
        "base64 garbage": requests.post(f"{api}/tasks/submit/", headers=TOKEN, timeout=10, json={
            "operation": "remove_background", "images": {"image": base64.b64encode(b"\0" * 100).decode()}}),
    }
    for case, answer in cases.items():
        assert 400 <= answer.status_code < 500, (case, answer.status_code, answer.text[:200])
        detail = answer.json()["detail"]
        assert detail and "Traceback" not in str(detail), (case, detail)
        OUTCOMES.append(f"{case}: {answer.status_code}")


def test_slow_receivers_do_not_hold_back_an_honest_webhook(client, monkeypatch):
    """Eight receivers that answer a byte a second take every delivery thread, each for at
    most its attempt's deadline; a ninth, honest receiver is reached right after, and the
    slow ones' retries wait in the dispatcher's list, not in threads."""
    from tasks import webhooks

    monkeypatch.setattr(webhooks, "TIMEOUT_SECONDS", 2)
    monkeypatch.setattr(webhooks, "BACKOFF_SECONDS", (30,))
    slow, honest = Receiver(trickle=True), Receiver()
    dispatcher = webhooks.WebhookDispatcher(client)  # not started: no job is taken from the suite's list
    started = time.monotonic()
    try:
        for n in range(webhooks.DELIVERY_THREADS):
            dispatcher._pool.submit(dispatcher._attempt, f"http://127.0.0.1:{slow.port}/slow{n}", {"id": n}, 1)
        dispatcher._pool.submit(dispatcher._attempt, f"http://127.0.0.1:{honest.port}/honest", {"id": "h"}, 1)
        wait_for(lambda: honest.hits, timeout=15)
        delivered = time.monotonic() - started
        wait_for(lambda: len(dispatcher._retries) == webhooks.DELIVERY_THREADS, timeout=15)
    finally:
        dispatcher._pool.shutdown(wait=False, cancel_futures=True)
        slow.close()
        honest.close()
    assert delivered < 6  # one deadline (2 s) and the rest, not 8 × 5 slow bytes
    OUTCOMES.append(f"8 trickling webhook receivers: the honest one reached after {delivered:.1f} s")


def test_nothing_died_and_nothing_stalled(probe, cpu_worker, locked_ui):
    probe.stop()
    assert process_group(cpu_worker.process.pid) == probe.workers, "a worker process died (and was replaced)"
    assert locked_ui.process.poll() is None
    print(f"\n{len(OUTCOMES)} hostile cases, each a clear error; 0 worker deaths; "
          f"worst GET / over {probe.count} probes: {probe.worst * 1000:.0f} ms (after: {probe.worst_during})")
    assert len(OUTCOMES) >= 40, OUTCOMES
    assert probe.worst < 1.0

