"""How a running operation talks to whoever runs it: progress out, cancel in."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from PIL import Image

from pipelines.errors import Cancelled

ReportFn = Callable[[float, str, "Image.Image | None"], None]


def _ignore_report(percent: float, stage: str, preview: Image.Image | None) -> None:
    pass


def _never_cancelled() -> bool:
    return False


@dataclass
class RunContext:
    """Passed to every operation. The queue worker binds it to the job in Redis;
    in-process callers (benchmarks, notebooks) can use the defaults."""

    report: ReportFn = _ignore_report
    is_cancelled: Callable[[], bool] = _never_cancelled
    notes: list[str] = field(default_factory=list)
    low: float = 0.0
    high: float = 100.0

    def progress(self, percent: float, stage: str, preview: Image.Image | None = None) -> None:
        """Report `percent` (0-100 of this context's span) and a short stage text."""
        percent = min(max(percent, 0.0), 100.0)
        self.report(self.low + (self.high - self.low) * percent / 100.0, stage, preview)

    def check_cancelled(self) -> None:
        if self.is_cancelled():
            raise Cancelled()

    def note(self, text: str) -> None:
        """Add a remark the user should read next to the result (fallbacks, hints)."""
        self.notes.append(text)

    def span(self, low: float, high: float) -> RunContext:
        """A context whose 0-100 maps onto `low`-`high` of this one (shares notes)."""
        width = self.high - self.low
        return RunContext(
            self.report,
            self.is_cancelled,
            self.notes,
            self.low + width * low / 100.0,
            self.low + width * high / 100.0,
        )
