"""Sample photos that ship inside installed packages (scikit-image, insightface): the
tabs offer them as examples, and each operation's `Example` runs on them."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from PIL import Image, ImageDraw


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


def _rocket_mask() -> Image.Image:
    """White over the rocket in rocket.jpg (what to remove), black elsewhere."""
    mask = Image.new("L", _skimage("rocket")().size, 0)
    ImageDraw.Draw(mask).rectangle((290, 60, 345, 380), fill=255)
    return mask


SOURCES: dict[str, Callable[[], Image.Image]] = {
    "astronaut.jpg": _skimage("astronaut"),
    "cat.jpg": _skimage("chelsea"),
    "coffee.jpg": _skimage("coffee"),
    "rocket.jpg": _skimage("rocket"),
    "rocket-mask.png": _rocket_mask,
    "group.jpg": _insightface("t1.jpg"),
    "portrait.jpg": _insightface("Tom_Hanks_54745.png"),
}


def sample(name: str) -> Image.Image:
    """The sample photo `name` (ImportError or OSError where its package is missing)."""
    return SOURCES[name]()


def write(name: str, folder: Path) -> Path:
    """The sample as a file in `folder` (JPEG for .jpg names, else PNG), written once."""
    path = folder / name
    if not path.is_file():
        image = sample(name)
        folder.mkdir(parents=True, exist_ok=True)
        image.save(path, quality=92) if name.endswith(".jpg") else image.save(path)
    return path
