"""`python launch.py` on a machine with no Redis: embedded server, worker and UI
come up together (behind the login STUDIO_AUTH asks for), and Ctrl-C takes all of them down."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AuthenticationError
from PIL import Image

from tests.conftest import ROOT, alive, free_port, wait_for, wait_http


def test_one_command_starts_everything_and_ctrl_c_stops_everything(tmp_path, astronaut_jpeg):
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(STUDIO_REDIS_PORT=str(free_port()), XDG_CACHE_HOME=str(tmp_path / "cache"), STUDIO_AUTH="ada:lovelace")
    port = free_port()
    launcher = subprocess.Popen([sys.executable, "launch.py", "--port", str(port)], cwd=ROOT, env=env,
                                start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/", launcher)
        photo = tmp_path / "astronaut.jpg"
        photo.write_bytes(astronaut_jpeg)
        with pytest.raises(AuthenticationError):
            Client(f"http://127.0.0.1:{port}/", verbose=False)
        api = Client(f"http://127.0.0.1:{port}/", auth=("ada", "lovelace"), verbose=False)
        cutout, info = api.predict(handle_file(str(photo)), "mediapipe-person", "transparent", "#ffffff",
                                   api_name="/remove_background")
        assert Image.open(cutout).mode == "RGBA" and "mediapipe-person" in info
        assert (tmp_path / "cache" / "ai-studio" / "valkey").is_dir()
        server = next(pid for pid, command in children(launcher.pid) if "valkey-server" in command)
    finally:
        os.killpg(launcher.pid, signal.SIGINT)  # Ctrl-C in a terminal: the whole foreground process group
        output, _ = launcher.communicate(timeout=60)
    assert "embedded Redis-compatible server" in output
    assert "Traceback" not in output  # a clean stop: the server went last, nothing lost it on the way
    assert wait_for(lambda: not alive(launcher.pid, group=True) and not alive(server), timeout=30), \
        "orphan processes left"


def children(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of the processes whose parent is `pid`."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()
                command = open(f"/proc/{entry}/cmdline", "rb").read().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append((int(entry), command))
    return found


def test_the_launcher_restarts_a_worker_and_the_server_that_die(tmp_path, astronaut_jpeg):
    import requests

    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(STUDIO_REDIS_PORT=str(free_port()), XDG_CACHE_HOME=str(tmp_path / "cache"))
    port = free_port()
    log = tmp_path / "launch.log"
    with open(log, "w") as out:
        launcher = subprocess.Popen([sys.executable, "launch.py", "--port", str(port)], cwd=ROOT, env=env,
                                    start_new_session=True, stdout=out, stderr=subprocess.STDOUT)
    api = f"http://127.0.0.1:{port}/api/v1"

    def removal() -> str:
        answer = requests.post(f"{api}/tasks/submit/", data={"operation": "remove_background",
                                                             "params": '{"engine": "mediapipe-person"}'},
                               files={"image": ("photo.jpg", astronaut_jpeg, "image/jpeg")}, timeout=30)
        assert answer.status_code == 202, answer.text
        return answer.json()["id"]

    def state(job: str) -> str:
        return requests.get(f"{api}/tasks/{job}/status/", timeout=10).json()["state"]

    try:
        wait_http(f"http://127.0.0.1:{port}/", launcher)
        cpu_worker = next(pid for pid, command in children(launcher.pid) if "-Q cpu" in command)
        os.kill(cpu_worker, signal.SIGKILL)
        wait_for(lambda: "the cpu worker exited" in log.read_text(), timeout=10)
        job = removal()  # the worker started again runs it
        assert wait_for(lambda: state(job) == "succeeded", timeout=120)
        server = next(pid for pid, command in children(launcher.pid) if "valkey-server" in command)
        os.kill(server, signal.SIGKILL)
        answers = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (not answers or answers[-1] != 200):
            answers.append(requests.get(f"{api}/tasks/{job}/status/", timeout=10).status_code)
            time.sleep(0.2)
        assert answers[-1] == 200 and set(answers) <= {200, 503}, answers  # back within 10 s, never a 500
        assert state(job) == "succeeded"  # the job and its result survived on disk
        after = removal()
        assert wait_for(lambda: state(after) == "succeeded", timeout=30)  # the worker is back on the server too
        server = next(pid for pid, command in children(launcher.pid) if "valkey-server" in command)
    finally:
        launcher.send_signal(signal.SIGINT)
        launcher.wait(timeout=60)
    assert "starting it again" in log.read_text()
    assert wait_for(lambda: not alive(launcher.pid, group=True) and not alive(server), timeout=30), \
        "orphan processes left"


def test_gpus_start_one_worker_per_device(client):
    launcher = subprocess.Popen([sys.executable, "launch.py", "--worker-only", "--queues", "gpu", "--gpus", "0,1"],
                                cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    try:
        names = [f"studio-gpu{device}-{launcher.pid}@" for device in (0, 1)]
        wait_for(lambda: all(any(w.startswith(n) for w in client.store.workers()) for n in names), timeout=60)
        devices = set()
        for pid, command in children(launcher.pid):
            if "-Q gpu" not in command:
                continue  # the short-lived onnxruntime check, gone by now or soon
            environment = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
            devices |= {entry.decode() for entry in environment if entry.startswith(b"CUDA_VISIBLE_DEVICES=")}
        assert devices == {"CUDA_VISIBLE_DEVICES=0", "CUDA_VISIBLE_DEVICES=1"}
    finally:
        os.killpg(launcher.pid, signal.SIGTERM)
        launcher.wait(timeout=30)
