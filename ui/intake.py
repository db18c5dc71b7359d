"""A thread pool of its own for the blocking work an upload causes: reading a .zip,
decoding base64 and checking images at submit. However many uploads arrive at once,
the status polls of every open page (on the event loop's default pool) never wait
behind them; uploads wait for each other instead."""
from __future__ import annotations

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, TypeVar

T = TypeVar("T")
_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="intake")


async def intake(function: Callable[..., T], *args: Any) -> T:
    """`function(*args)` on the intake pool."""
    return await asyncio.get_running_loop().run_in_executor(_POOL, functools.partial(function, *args))
