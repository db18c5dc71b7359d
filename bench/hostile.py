"""One hostile visitor against a studio others share, started by the README's command.

    python -m bench.hostile

`python launch.py` with named tokens (the attacker's, a second visitor's, five more).
Each attack runs while the second visitor submits a small job in a loop (REST, long
poll) and a probe times `GET /` every 100 ms. Printed per attack, with the targets:
the second visitor's median latency against its quiet one (<= 2x), `GET /` p95
(<= 300 ms), the UI's resident memory at its peak and after (<= +200 MB), and any 500.
Then fairness: the attacker queues 32 one-second jobs, then five others one each
(targets: each of the five ends within 5 job-times; the batch's total against FIFO),
and the share under 40 concurrent submits (target: exactly 32 admitted).
"""
from __future__ import annotations

import io
import socket
import statistics
import tempfile
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import requests
from PIL import Image

from bench import stack

TOKENS = {"attacker": "tok-attacker", "visitor": "tok-visitor", **{f"other{n}": f"tok-other{n}" for n in range(5)}}


def bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[name]}"}


def rss_mb(pid: int) -> float:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * 4096 / 2**20


class Watch:
    """The second visitor's job loop, the `GET /` probe and the UI's memory, in threads."""

    def __init__(self, studio: stack.Launcher):
        self.studio, self.stopping = studio, threading.Event()
        self.latencies: list[float] = []
        self.probes: list[float] = []
        self.peak_mb, self.errors = 0.0, 0
        self.threads = [threading.Thread(target=f, daemon=True) for f in (self._jobs, self._probe, self._memory)]
        for thread in self.threads:
            thread.start()

    def _jobs(self) -> None:
        while not self.stopping.is_set():
            started = time.monotonic()
            job = self.studio.submit(steps=1, step_seconds=0.2, headers=bearer("visitor"))
            answer = requests.get(f"{self.studio.api}/tasks/{job}/status/", params={"wait": 60},
                                  headers=bearer("visitor"), timeout=90)
            self.errors += answer.status_code >= 500 or answer.json()["state"] != "succeeded"
            self.latencies.append(time.monotonic() - started)

    def _probe(self) -> None:
        with requests.Session() as session:
            while not self.stopping.wait(0.1):
                started = time.monotonic()
                code = session.get(self.studio.url, headers=bearer("visitor"), timeout=30).status_code
                self.errors += code >= 500
                self.probes.append(time.monotonic() - started)

    def _memory(self) -> None:
        while not self.stopping.wait(0.05):
            self.peak_mb = max(self.peak_mb, rss_mb(self.studio.process.pid))

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=120)


def measure(studio: stack.Launcher, name: str, attack: Callable[[], str], quiet: float) -> None:
    baseline = rss_mb(studio.process.pid)
    watch = Watch(studio)
    try:
        outcome = attack()
    finally:
        time.sleep(1)
        watch.stop()
    time.sleep(2)
    after = rss_mb(studio.process.pid)
    probes = sorted(watch.probes) or [0.0]
    latency = statistics.median(watch.latencies) if watch.latencies else float("nan")
    print(f"| {name} | {outcome} | {latency / quiet:.2f}x | {probes[int(len(probes) * 0.95)] * 1000:.0f} ms | "
          f"+{watch.peak_mb - baseline:.0f} / +{after - baseline:.0f} MB | {watch.errors} |", flush=True)


def codes(answers: list[requests.Response]) -> str:
    counts: dict[int, int] = {}
    for answer in answers:
        counts[answer.status_code] = counts.get(answer.status_code, 0) + 1
    return ", ".join(f"{count}x {code}" for code, count in sorted(counts.items()))


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", compress_level=9)
    return buffer.getvalue()


def zip_of(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def attacks(studio: stack.Launcher) -> dict[str, Callable[[], str]]:
    from gradio_client import Client, handle_file

    folder = Path(tempfile.mkdtemp(prefix="bench-hostile-"))
    zeros = bytes(50 * 2**20)
    (folder / "bomb.zip").write_bytes(zip_of({f"p{i}.png": zeros for i in range(32)}))
    (folder / "entries.zip").write_bytes(zip_of({f"e{i}.png": b"" for i in range(300_000)}))
    side = 6300
    truncated = png(Image.new("RGBA", (side, side)))
    truncated = truncated[:len(truncated) // 2]
    deep = png(Image.fromarray(__import__("numpy").zeros((side, side), "uint16")))
    mask = png(Image.new("1", (side, side)))
    attacker = bearer("attacker")

    def gradio_call(api_name: str, *args: object, times: int = 1) -> str:
        def one(_: int) -> str:
            client = Client(studio.url, headers=attacker, verbose=False)
            try:
                client.predict(*args, api_name=api_name)
                return "accepted"
            except Exception as exc:  # noqa: BLE001 - the refusal is the outcome
                return str(exc)[:60]
        with ThreadPoolExecutor(times) as pool:
            return "; ".join(sorted(set(pool.map(one, range(times)))))

    def gradio_batch(path: Path, times: int) -> str:
        return gradio_call("/remove_background_batch", [handle_file(str(path))], "u2netp", "cutout", times=times)

    def post(path: str, body: bytes, times: int = 1, content_type: str = "application/json") -> str:
        def one(_: int) -> requests.Response:
            return requests.post(studio.url + path, data=body, timeout=120,
                                 headers={**attacker, "Content-Type": content_type})
        with ThreadPoolExecutor(times) as pool:
            return codes(list(pool.map(one, range(times))))

    def pixel_flood() -> str:
        def one(data: bytes, operation: str, extra: dict) -> requests.Response:
            return requests.post(f"{studio.api}/tasks/submit/", headers=attacker, timeout=120,
                                 data={"operation": operation}, files={"image": ("x.png", data), **extra})
        with ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(lambda _: one(truncated, "remove_background", {}), range(12)))
        answers.append(one(deep, "remove_object", {"mask": ("m.png", mask)}))
        return codes(answers)

    def long_polls() -> str:
        job = studio.submit(steps=1, step_seconds=10, headers=attacker)
        url = f"{studio.api}/tasks/{job}/status/?wait=60"
        with ThreadPoolExecutor(100) as pool:
            answers = list(pool.map(lambda _: requests.get(url, headers=attacker, timeout=90), range(100)))
        return codes(answers)

    def slowloris() -> str:
        sockets, refused = [], 0
        for _ in range(2000):
            sock = socket.socket()
            sock.bind(("127.0.0.2", 0))
            try:
                sock.connect(("127.0.0.1", studio.port))
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
                sockets.append(sock)
            except OSError:
                refused += 1
        time.sleep(12)  # past the header timeout
        closed = 0
        for sock in sockets:
            sock.setblocking(False)
            try:
                closed += sock.recv(1) == b""
            except BlockingIOError:
                pass
            except OSError:
                closed += 1
            sock.close()
        return f"2000 sockets: {closed + refused} closed by the server"

    return {
        "zip bomb (32 x 50 MB zeros) x4": lambda: gradio_batch(folder / "bomb.zip", 4),
        "zip of 300k empty entries x6": lambda: gradio_batch(folder / "entries.zip", 6),
        "REST batch of 5 M items": lambda: post("api/v1/batches/", b'{"operation": "diagnostic", "items": ['
                                                + b"{}," * 5_000_000 + b"{}]}"),
        "JSON nested 1 M deep": lambda: post("gradio_api/queue/join", b"[" * 1_000_000),
        "100 MB cancel bodies x8": lambda: post("gradio_api/cancel", b"{" + b" " * 100 * 2**20, 8),
        "pixel flood (12 truncated 40 MP RGBA + 40 MP 16-bit)": pixel_flood,
        "100 long polls on one job": long_polls,
        "slowloris from one address": slowloris,
        "seed list of 1 M seeds": lambda: gradio_call("/generate_batch", "a cat", "", "sd-turbo", 1, 0, 512, 512, -1,
                                                      1, "1," * 1_000_000),
    }


def fairness(studio: stack.Launcher) -> None:
    job_time = 1.0
    body = {"operation": "diagnostic", "params": {"steps": 1, "step_seconds": job_time},
            "items": [{"images": {"image": __import__("base64").b64encode(stack.tiny_png()).decode()}}] * 32}
    started = time.monotonic()
    batch = requests.post(f"{studio.api}/batches/", json=body, headers=bearer("attacker"), timeout=60).json()
    time.sleep(job_time / 2)
    others = [studio.submit(steps=1, step_seconds=job_time, headers=bearer(f"other{n}")) for n in range(5)]
    submitted = time.monotonic() - started

    def ended(job: str, who: str) -> float:
        requests.get(f"{studio.api}/tasks/{job}/status/", params={"wait": 60}, headers=bearer(who), timeout=90)
        while requests.get(f"{studio.api}/tasks/{job}/status/", headers=bearer(who), timeout=10).json()["state"] \
                in ("queued", "running"):
            time.sleep(0.1)
        return time.monotonic() - started

    others_end = [ended(job, f"other{n}") for n, job in enumerate(others)]
    batch_end = max(ended(job, "attacker") for job in batch["jobs"])
    fifo = 32 * job_time
    waits = ", ".join(f"{(t - submitted) / job_time:.1f}" for t in others_end)
    print(f"fairness: the five others ended {waits} job-times after they were submitted (target <= 5; with one "
          f"worker at least 1.5 ... 5.5, as the job running when they came finishes first; FIFO "
          f"{fifo / job_time - 0.5:.0f} ... {fifo / job_time + 4.5:.0f}); the batch of 32 took {batch_end:.1f} s, "
          f"{batch_end / fifo:.2f}x its FIFO time (five one-second jobs ran in between)")


def share(studio: stack.Launcher) -> None:
    """Jobs that outlast the burst (10 s each, one worker), so none ends and frees a place."""
    with ThreadPoolExecutor(40) as pool:
        answers = list(pool.map(lambda _: requests.post(
            f"{studio.api}/tasks/submit/", headers=bearer("other0"), timeout=60,
            data={"operation": "diagnostic", "params": '{"steps": 1, "step_seconds": 10}'},
            files={"image": ("t.png", stack.tiny_png())}), range(40)))
    print(f"share under 40 concurrent submits (cap 32): {codes(answers)} (target exactly 32 admitted)")
    for answer in answers:
        if answer.status_code == 202:
            requests.post(f"{studio.api}/tasks/{answer.json()['id']}/cancel/", headers=bearer("other0"), timeout=10)


def main() -> None:
    studio = stack.Launcher(Path(tempfile.mkdtemp(prefix="bench-hostile-")), STUDIO_MAX_JOBS_PER_OWNER="32",
                            STUDIO_MAX_WAITING="500",
                            STUDIO_API_TOKENS=",".join(f"{n}:{t}" for n, t in TOKENS.items()))
    try:
        quiet_watch = Watch(studio)
        time.sleep(8)
        quiet_watch.stop()
        quiet = statistics.median(quiet_watch.latencies)
        print(f"quiet: the second visitor's job takes {quiet * 1000:.0f} ms (median); "
              f"GET / p95 {sorted(quiet_watch.probes)[int(len(quiet_watch.probes) * 0.95)] * 1000:.0f} ms\n")
        print("| attack | answers | 2nd visitor vs quiet | GET / p95 | UI memory peak / after | 500s or failed |")
        print("|---|---|---|---|---|---|")
        for name, attack in attacks(studio).items():
            measure(studio, name, attack, quiet)
        print()
        fairness(studio)
        share(studio)
    finally:
        studio.stop()


if __name__ == "__main__":
    main()
