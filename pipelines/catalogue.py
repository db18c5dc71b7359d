"""Every operation the studio offers, by name. The queue registers one task per entry.

The diagnostic operation (timed no-op steps, for the queue's tests and benchmarks)
exists only where `STUDIO_DIAGNOSTIC=1`: a visitor could otherwise hold a worker
for an hour with one request."""
import os
from typing import Any

from pipelines import diagnostic, face_swap, generate, remove_background, remove_object, style_transfer
from pipelines.registry import Operation

_ALL = (generate.OPERATION, face_swap.FACE_SWAP, face_swap.DETECT_FACES, remove_background.OPERATION,
        remove_object.OPERATION, style_transfer.OPERATION) + \
    ((diagnostic.OPERATION,) if os.environ.get("STUDIO_DIAGNOSTIC") == "1" else ())
OPERATIONS: dict[str, Operation[Any]] = {op.name: op for op in _ALL}
