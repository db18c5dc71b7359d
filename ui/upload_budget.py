"""How much each visitor may upload to the server's disk (Gradio's file cache) within a
window: STUDIO_UPLOAD_BUDGET_MB (2048) per job TTL. Files in the cache are removed once
they are older than the window (see `ui.app`), so the disk one visitor can fill is
bounded by the budget. Kept in the UI process, like the login throttle."""
from __future__ import annotations

import time
from collections import deque


class UploadBudget:
    def __init__(self, budget_bytes: int, window_seconds: float):
        self.budget, self.window = budget_bytes, window_seconds
        self._uploads: dict[str, deque[tuple[float, int]]] = {}  # visitor -> (when, bytes), oldest first

    def used(self, visitor: str) -> int:
        """Bytes the visitor uploaded within the window."""
        uploads = self._uploads.get(visitor)
        if not uploads:
            return 0
        horizon = time.monotonic() - self.window
        while uploads and uploads[0][0] < horizon:
            uploads.popleft()
        if not uploads:
            del self._uploads[visitor]
        return sum(size for _, size in uploads)

    def allows(self, visitor: str, size: int) -> bool:
        return self.used(visitor) + size <= self.budget

    def add(self, visitor: str, size: int) -> None:
        self._uploads.setdefault(visitor, deque()).append((time.monotonic(), size))
