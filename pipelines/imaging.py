"""Decoding and encoding of user images, written once for every operation.

`decode_image` turns uploaded bytes (JPEG, PNG, WebP, HEIC, ...) into an upright 8-bit
RGB or RGBA image, or raises `InvalidInput` with a message a user understands.
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError
from PIL.PngImagePlugin import PngInfo
from pydantic import Field

from pipelines.errors import InvalidInput

try:  # iPhones' HEIC, through libheif in pillow-heif's wheel
    from pillow_heif import register_heif_opener

    register_heif_opener()
    HEIF = True
except ImportError:
    HEIF = False

ACCEPTED_FORMATS = {"JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF", "MPO", "HEIF"}
DEFAULT_MAX_PIXELS = 40_000_000


def decode_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, standard_mode: bool = True) -> Image.Image:
    """Bytes of a JPEG/PNG/WebP/HEIC/BMP/TIFF/GIF -> RGB or RGBA image, EXIF orientation applied
    (with `standard_mode` False, in the mode it is stored in: a 40-megapixel mask then
    takes 40 MB, not 160)."""
    image = _open(data, max_pixels)
    _load(image)
    ImageOps.exif_transpose(image, in_place=True)  # not a copy: 36 MB and 25 ms at 12 MP
    return to_standard_mode(image) if standard_mode else image


def check_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """The same checks as `decode_image`, cheaper. A file that ends as a whole one does
    (see `_ends_whole`) is read for its header only: 0.1 ms for a 12 MP JPEG instead of a
    decode, and the worker's one decode reports damage inside it. Any other file is read
    through (a JPEG at 1/8 scale, which still reads all of its data), so a truncated upload
    is refused at once. Returns the size upright (as `decode_image` gives it: EXIF
    orientations 5 to 8 turn it a quarter)."""
    image = _open(data, max_pixels)
    width, height = image.size
    if _ends_whole(image.format, data):
        if image.format == "PNG":
            return width, height  # no eXIf chunk, so no orientation
    else:
        if image.format == "JPEG":
            image.draft("RGB", (max(1, width // 8), max(1, height // 8)))
        _load(image)  # before the EXIF: a PNG keeps it after its pixels
    turned = image.getexif().get(ExifTags.Base.Orientation) in (5, 6, 7, 8)
    return (height, width) if turned else (width, height)


def _ends_whole(fmt: str | None, data: bytes) -> bool:
    """The file ends as a complete one does: a JPEG with its end-of-image marker, a PNG
    with its IEND chunk and no eXIf chunk (Pillow reads a PNG's EXIF only after its pixels)."""
    if fmt == "JPEG":
        return data[-2:] == b"\xff\xd9"
    if fmt == "PNG":
        return data.endswith(b"IEND\xaeB`\x82") and b"eXIf" not in data
    return False


def _open(data: bytes, max_pixels: int) -> Image.Image:
    if not data:
        raise InvalidInput("The image file is empty (0 bytes).")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise _unreadable(data) from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise _too_large(None, max_pixels) from None
    if image.format not in ACCEPTED_FORMATS:
        raise InvalidInput(f"{image.format} images are not supported; use JPEG, PNG or WebP.")
    width, height = image.size
    if width * height > max_pixels:
        raise _too_large(image.size, max_pixels)
    if width == 0 or height == 0:
        raise InvalidInput("The image has no pixels.")
    return image


def _load(image: Image.Image) -> None:
    try:
        image.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidInput(f"The image file is truncated or corrupt ({exc}).") from None


HEIF_BRANDS = (b"heic", b"heix", b"mif1", b"msf1", b"heim", b"heis")
SIGNATURES = {b"\xff\xd8\xff": "JPEG", b"\x89PNG": "PNG", b"II*\x00": "TIFF", b"MM\x00*": "TIFF",
              b"GIF8": "GIF", b"BM": "BMP"}


def _unreadable(data: bytes) -> InvalidInput:
    """Tell "an image in a variant we cannot read" from "not an image at all"."""
    fmt = stored_format(data)
    if fmt == "HEIF" and not HEIF:
        return InvalidInput("HEIC photos need the pillow-heif package on this server (pip install pillow-heif); "
                            "or save the photo as JPEG.")
    if fmt:
        fmt = {"WEBP": "WebP", "HEIF": "HEIC"}.get(fmt, fmt)
        return InvalidInput(f"This {fmt} file is damaged or uses a variant this studio cannot read "
                            "(for example 32-bit float pixels); save it as an 8-bit RGB JPEG or PNG.")
    return InvalidInput("The file is not an image this studio can read (use JPEG, PNG, WebP or HEIC).")


def _too_large(size: tuple[int, int] | None, max_pixels: int) -> InvalidInput:
    limit = f"the limit is {max_pixels / 1e6:.0f} megapixels"
    if size is None:
        return InvalidInput(f"The image is too large: {limit}.")
    w, h = size
    return InvalidInput(f"The image is {w}x{h} ({w * h / 1e6:.0f} megapixels); {limit}.")


def to_standard_mode(image: Image.Image) -> Image.Image:
    """Any PIL mode -> 8-bit RGB, or RGBA when the image carries transparency."""
    if image.mode in ("RGB", "RGBA"):
        return image
    if image.mode.startswith("I") or image.mode == "F":
        return _scale_to_8bit(image).convert("RGB")
    if image.mode in ("LA", "PA", "RGBa") or "transparency" in image.info:
        return image.convert("RGBA")
    try:
        return image.convert("RGB")
    except ValueError:
        raise InvalidInput(f"Images in pixel mode {image.mode} are not supported; save it as RGB.") from None


def _scale_to_8bit(image: Image.Image) -> Image.Image:
    """16/32-bit greyscale -> 8-bit, keeping the full range of the format, without wide
    copies of a 40-megapixel image (in place for 16 bits, Pillow's linear map for 32)."""
    if image.mode.startswith("I;16"):
        values = np.array(image, dtype=np.uint16)
        np.right_shift(values, 8, out=values)
        return Image.fromarray(values.astype(np.uint8), "L")
    low, high = image.getextrema()
    if image.mode != "F":
        low, high = 0, 65535 if high <= 65535 else high
    scale = 255.0 / max(high - low, 1e-9)
    return image.point(lambda value: (value - low) * scale).convert("L")


def encode_png(image: Image.Image) -> bytes:
    """Lossless PNG that keeps alpha, the "parameters" text a generated image carries, and
    the colour profile and EXIF the image carries (see `with_metadata_of`)."""
    buffer = io.BytesIO()
    text = PngInfo()
    if "parameters" in image.info:
        text.add_text("parameters", image.info["parameters"])
    image.save(buffer, format="PNG", compress_level=1, pnginfo=text, **_metadata(image))
    return buffer.getvalue()


def _metadata(image: Image.Image) -> dict[str, bytes]:
    """The colour profile and EXIF an image carries, as Pillow's writers take them."""
    return {key: image.info[key] for key in ("icc_profile", "exif") if image.info.get(key)}


OutputFormat = Literal["auto", "png", "jpeg", "webp"]
FORMATS = {"auto": "Auto (JPEG stays JPEG; PNG for transparency)", "png": "PNG (lossless)", "jpeg": "JPEG (q95)",
           "webp": "WebP (q95, keeps transparency)"}


def format_field() -> Any:
    """The `format` parameter of every operation that makes a picture: its file's format."""
    return Field("auto", description="The result's file format: auto (JPEG for an opaque result of a JPEG or HEIC "
                                     "photo, PNG otherwise), png, jpeg (q95; transparency goes onto white) or webp "
                                     "(q95; keeps transparency). Only PNG carries a generated image's parameters.",
                 json_schema_extra={"label": "Result file format", "group": "Advanced settings",
                                    "choices": [[label, value] for value, label in FORMATS.items()]})


def encode_result(image: Image.Image, photo_format: str | None, chosen: str = "auto") -> bytes:
    """A result in the `chosen` format, or for "auto" the one people expect: a
    high-quality JPEG (q95) where the photo was a JPEG or HEIC and the result is opaque,
    with no parameters to carry; PNG otherwise (cut-outs, masks, PNG photos, generated
    images). A 12-megapixel JPEG takes 0.05 s to write, the same PNG 1.4 s and five times
    the bytes."""
    if chosen == "auto":
        opaque_photo = photo_format in ("JPEG", "HEIF") and image.mode == "RGB"
        chosen = "jpeg" if opaque_photo and "parameters" not in image.info else "png"
    if chosen == "png":
        return encode_png(image)
    metadata, buffer = _metadata(image), io.BytesIO()
    if chosen == "jpeg":
        image = _on_white(image)
        image.save(buffer, format="JPEG", quality=95, **metadata)
    else:
        image.save(buffer, format="WEBP", quality=95, **metadata)
    return buffer.getvalue()


def _on_white(image: Image.Image) -> Image.Image:
    """An image JPEG can hold: what is transparent goes onto white."""
    if image.mode in ("RGB", "L"):
        return image
    rgba = image.convert("RGBA")
    return Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba).convert("RGB")


def stored_format(data: bytes | None) -> str | None:
    """The format of an image file, from its first bytes ("JPEG", "PNG", "HEIF", ...)."""
    if not data:
        return None
    if data[4:8] == b"ftyp" and data[8:12] in HEIF_BRANDS:
        return "HEIF"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return next((name for magic, name in SIGNATURES.items() if data.startswith(magic)), None)


def file_extension(data: bytes) -> str:
    """The extension a result's download takes."""
    return {"JPEG": ".jpg", "WEBP": ".webp"}.get(stored_format(data) or "", ".png")


def media_type(data: bytes) -> str:
    return {"JPEG": "image/jpeg", "WEBP": "image/webp"}.get(stored_format(data) or "", "image/png")


def with_metadata_of(result: Image.Image, photo: Image.Image | None) -> Image.Image:
    """`result` carrying the photo's colour profile (so a Display-P3 photo keeps its
    colours) and EXIF (the camera, the date; its orientation was applied at decoding and
    removed) where it has none of its own."""
    for key in ("icc_profile", "exif"):
        if photo is not None and photo.info.get(key) and not result.info.get(key):
            result.info[key] = photo.info[key]
    return result


def decode_png(data: bytes) -> Image.Image:
    """Read back an image this studio wrote (trusted bytes)."""
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


SCREEN_SIDE = 1600  # the longer side of the copy a page shows of a larger result


def screen_copy(path: str, longest: int = SCREEN_SIDE) -> bytes | None:
    """A WebP of the image file at `path` (a result this studio wrote) shrunk to fit
    `longest` px, for a page to show while the full file is what downloads; None when the
    image already fits. Keeps the colour profile. A JPEG is decoded at a reduced scale."""
    with Image.open(path) as image:
        if max(image.size) <= longest:
            return None
        scale = longest / max(image.size)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image.draft(image.mode, size)  # JPEG only: decoded at 1/2, 1/4 or 1/8, still at least `size`
        small = image.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)
        buffer = io.BytesIO()
        small.save(buffer, format="WEBP", quality=90, method=2, **_metadata(image))
    return buffer.getvalue()


def file_summary(path: str) -> str:
    """What a download is, e.g. "4000×3000 JPEG, 4.2 MB" (the header only is read)."""
    with Image.open(path) as image:
        width, height, kind = image.width, image.height, image.format
    return f"{width}×{height} {kind}, {Path(path).stat().st_size / 1e6:.1f} MB"
