"""`python launch.py` on a machine with no Redis: embedded server, worker and UI
come up together (behind the login STUDIO_AUTH asks for), and Ctrl-C takes all of them down."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

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
    finally:
        launcher.send_signal(signal.SIGINT)  # Ctrl-C, delivered to the launcher alone
        output, _ = launcher.communicate(timeout=60)
    assert "embedded Redis-compatible server" in output
    assert "Traceback" not in output  # a clean stop: nothing left talking to the stopped server
    assert wait_for(lambda: not alive(launcher.pid, group=True), timeout=30), "orphan processes left"
