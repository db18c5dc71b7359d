"""Workers keep the memory a job frees for the next job (tasks.worker_memory)."""
from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT

FREE_A_PHOTO = """
import sys
import numpy as np
import tasks.worker  # the entry every worker process starts from
from tasks.worker_memory import M_MMAP_THRESHOLD
if sys.argv[1] == "plain":  # glibc's defaults again: a freed block this big goes back to the kernel
    import ctypes
    ctypes.CDLL("libc.so.6").mallopt(M_MMAP_THRESHOLD, 128 * 1024)
pixels = np.ones((3000, 4000, 3), np.uint8)  # a 12 MP photo, freed as a job's images are
del pixels
print(int(open("/proc/self/statm").read().split()[1]) * 4096)
"""


def resident_after_a_job(kind: str) -> int:
    env = {**os.environ, "REDIS_URL": "redis://127.0.0.1:9/0"}  # configured, never reached
    return int(subprocess.check_output([sys.executable, "-c", FREE_A_PHOTO, kind], cwd=ROOT, env=env, text=True))


def test_a_worker_keeps_a_freed_photo_for_the_next_job_where_a_plain_process_returns_it():
    kept = resident_after_a_job("worker") - resident_after_a_job("plain")
    assert 30 * 2**20 < kept < 40 * 2**20, kept  # the 36 MB of pixels stay mapped, ready to be reused
