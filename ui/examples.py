"""The sample photos (pipelines.samples) as clickable examples, so a first visit can try
every tab without a file at hand."""
from __future__ import annotations

import tempfile
from functools import cache
from pathlib import Path

from pipelines import samples

FOLDER = Path(tempfile.gettempdir()) / "studio-examples"  # Gradio serves examples from here


@cache
def photo(name: str) -> str | None:
    """The example photo's path, written on first use; None where its package is missing."""
    try:
        return str(samples.write(name, FOLDER))
    except (ImportError, OSError):
        return None


def rows(*names: str | tuple[str, ...]) -> list[list[str]]:
    """Example rows for gr.Examples (a name, or a tuple of names for several inputs),
    leaving out rows whose photos are missing."""
    table = [[photo(n) for n in (entry if isinstance(entry, tuple) else (entry,))] for entry in names]
    return [row for row in table if all(row)]
