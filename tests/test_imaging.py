"""Decoding user uploads: every photo a phone or editor produces, and clear
errors for everything else."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageCms

from pipelines.errors import InvalidInput
from pipelines.imaging import decode_image, decode_png, encode_png, screen_copy
from tests.conftest import encode


def test_exif_orientation_is_applied(astronaut):
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    data = encode(astronaut.resize((200, 100)), "JPEG", exif=exif)
    decoded = decode_image(data)
    assert decoded.size == (100, 200)


def test_png_alpha_survives_decode_and_encode():
    rgba = Image.new("RGBA", (8, 8), (10, 20, 30, 0))
    rgba.putpixel((3, 3), (1, 2, 3, 200))
    decoded = decode_image(encode(rgba))
    assert decoded.mode == "RGBA"
    again = decode_png(encode_png(decoded))
    assert again.getpixel((3, 3)) == (1, 2, 3, 200) and again.getpixel((0, 0))[3] == 0


def test_palette_with_transparency_becomes_rgba():
    palette = Image.new("P", (8, 8), 0)
    palette.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    palette.putpixel((1, 1), 1)
    decoded = decode_image(encode(palette, transparency=0))
    assert decoded.mode == "RGBA"
    assert decoded.getpixel((0, 0))[3] == 0 and decoded.getpixel((1, 1)) == (0, 255, 0, 255)


def test_cmyk_jpeg_becomes_rgb():
    cmyk = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # red ink
    decoded = decode_image(encode(cmyk, "JPEG", quality=100))
    red, green, blue = decoded.getpixel((4, 4))
    assert decoded.mode == "RGB" and red > 200 and green < 60 and blue < 60


def test_16_bit_greyscale_keeps_its_range():
    ramp = np.tile(np.linspace(0, 65535, 64, dtype=np.uint16), (4, 1))
    decoded = decode_image(encode(Image.fromarray(ramp)))  # uint16 -> mode I;16
    pixels = np.asarray(decoded)
    assert decoded.mode == "RGB"
    assert pixels[0, 0, 0] == 0 and pixels[0, -1, 0] == 255 and 120 < pixels[0, 32, 0] < 140


def test_webp_is_read(astronaut):
    assert decode_image(encode(astronaut, "WEBP")).size == astronaut.size


@pytest.mark.parametrize(
    "make_data, message",
    [
        (lambda jpeg: b"", "empty"),
        (lambda jpeg: b"this is not an image at all", "not an image"),
        (lambda jpeg: jpeg[: len(jpeg) // 2], "truncated or corrupt"),
        (lambda jpeg: encode(Image.new("L", (10_000, 9_000))), "megapixels"),
        (lambda jpeg: encode(Image.new("RGB", (16, 16)), "PPM"), "not supported"),
    ],
    ids=["zero-bytes", "corrupt", "truncated", "huge-dimensions", "unsupported-format"],
)
def test_bad_input_gets_a_clear_message(astronaut_jpeg, make_data, message):
    with pytest.raises(InvalidInput, match=message):
        decode_image(make_data(astronaut_jpeg), max_pixels=40_000_000)


def test_unsupported_pixel_format_gets_a_clear_message():
    import tifffile

    buffer = io.BytesIO()
    tifffile.imwrite(buffer, np.zeros((8, 8, 3), np.float32), photometric="rgb")  # 32-bit float RGB
    with pytest.raises(InvalidInput, match="TIFF file is damaged or uses a variant"):
        decode_image(buffer.getvalue())


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_a_large_result_has_a_screen_sized_copy_in_the_same_colours(astronaut, tmp_path, fmt):
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()  # any profile other than sRGB
    big, small = tmp_path / f"big.{fmt.lower()}", tmp_path / f"small.{fmt.lower()}"
    astronaut.resize((4000, 3000)).save(big, fmt, icc_profile=profile)
    astronaut.save(small, fmt)
    copy = Image.open(io.BytesIO(screen_copy(str(big))))
    assert (copy.format, copy.size) == ("WEBP", (1600, 1200))
    assert copy.info.get("icc_profile") == profile  # a Display-P3 result keeps its colours on screen
    expected = np.asarray(astronaut.resize((1600, 1200)), dtype=float)
    assert np.abs(np.asarray(copy.convert("RGB"), dtype=float) - expected).mean() < 6  # the same picture
    assert screen_copy(str(small)) is None  # a result that fits is shown as it is
