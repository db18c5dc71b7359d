"""Worker processes keep the memory one job frees for the next.

glibc gives a freed block back to the kernel at once when it was big enough to be mapped
on its own (from 128 KB, rising with use to 32 MB), and a 12 MP photo's pixels are such
blocks, so every job faulted its memory in again, page by page: on the 2-core VM the
benchmarks run on, 50 of an object removal's 220 ms. Blocks up to 256 MB now come from the
heap and are reused, and at most 512 MB of free heap is kept; a worker holds about 60 MB
more after a 12 MP job.
"""
from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's <malloc.h>
REUSED_BLOCKS_UP_TO = 256 * 2**20
FREE_HEAP_KEPT = 512 * 2**20


def keep_freed_memory() -> bool:
    """Tune malloc for this process and the pool processes it forks; False where the C
    library is not glibc (nothing changes there)."""
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, REUSED_BLOCKS_UP_TO)) and bool(mallopt(M_TRIM_THRESHOLD, FREE_HEAP_KEPT))
