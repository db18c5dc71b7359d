"""Photos that ship inside installed packages (scikit-image, insightface), offered as
clickable examples so a first visit can try every tab without a file at hand."""
from __future__ import annotations

import tempfile
from functools import cache
from pathlib import Path
from typing import Callable

from PIL import Image

FOLDER = Path(tempfile.gettempdir()) / "studio-examples"  # Gradio serves examples from here


def _skimage(name: str) -> Callable[[], Image.Image]:
    def load() -> Image.Image:
        from skimage import data

        return Image.fromarray(getattr(data, name)())

    return load


def _insightface(file: str) -> Callable[[], Image.Image]:
    def load() -> Image.Image:
        import insightface

        return Image.open(Path(insightface.__file__).parent / "data" / "images" / file)

    return load


SOURCES = {
    "astronaut.jpg": _skimage("astronaut"),
    "cat.jpg": _skimage("chelsea"),
    "coffee.jpg": _skimage("coffee"),
    "rocket.jpg": _skimage("rocket"),
    "group.jpg": _insightface("t1.jpg"),
    "portrait.jpg": _insightface("Tom_Hanks_54745.png"),
}


@cache
def photo(name: str) -> str | None:
    """The example photo's path, written on first use; None where its package is missing."""
    path = FOLDER / name
    if not path.is_file():
        try:
            image = SOURCES[name]()
        except (ImportError, OSError):
            return None
        FOLDER.mkdir(parents=True, exist_ok=True)
        image.convert("RGB").save(path, quality=92)
    return str(path)


def rows(*names: str | tuple[str, ...]) -> list[list[str]]:
    """Example rows for gr.Examples (a name, or a tuple of names for several inputs),
    leaving out rows whose photos are missing."""
    table = [[photo(n) for n in (entry if isinstance(entry, tuple) else (entry,))] for entry in names]
    return [row for row in table if all(row)]
