"""A thread pool of its own for the blocking work an upload causes: reading a .zip,
decoding base64 and checking images at submit. However many uploads arrive at once,
the status polls of every open page (on the event loop's default pool) never wait
behind them; uploads wait for each other instead, one at a time, so decoding holds at
most one image's pixels (a 40-megapixel RGBA image is 160 MB). After each, the C
heap's free memory goes back to the system (glibc keeps it otherwise: a flood of big
images would leave the UI process large), also after a failure, whose traceback no
longer holds the pixels."""
from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import functools
import traceback
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, TypeVar

T = TypeVar("T")
_POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="intake")
_LIBC = ctypes.CDLL(ctypes.util.find_library("c") or None)
_TRIM = getattr(_LIBC, "malloc_trim", None)  # glibc only


def _trimmed(function: Callable[..., T], *args: Any) -> T:
    try:
        return function(*args)
    except BaseException as exc:  # its traceback would keep the decoded pixels until the error is answered
        error: BaseException | None = exc
        while error is not None:
            traceback.clear_frames(error.__traceback__)
            error = error.__cause__ or error.__context__
        raise
    finally:
        if _TRIM is not None:
            _TRIM(0)


async def intake(function: Callable[..., T], *args: Any) -> T:
    """`function(*args)` on the intake pool."""
    return await asyncio.get_running_loop().run_in_executor(_POOL, functools.partial(_trimmed, function, *args))
