"""Phone photos through the queue: HEIC is read; a JPEG or HEIC photo gives a JPEG result
where the result is opaque (PNG for cut-outs and PNG photos) unless another format is
chosen; and every operation's result keeps the photo's colour profile and EXIF (its
orientation applied once, and removed)."""
from __future__ import annotations

import io

import pytest
from PIL import Image, ImageCms

from tests.conftest import encode

PROFILE = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def phone_photo(upright: Image.Image, fmt: str = "JPEG") -> bytes:
    """The photo as a phone stores it: pixels turned a quarter left with EXIF orientation 6
    ("turn right to show"), the camera's name in EXIF, and a colour profile."""
    exif = Image.Exif()
    exif[0x0112], exif[0x010F] = 6, "StudioCam"
    buffer = io.BytesIO()
    upright.transpose(Image.Transpose.ROTATE_90).save(buffer, fmt, quality=92, icc_profile=PROFILE,
                                                     exif=exif.tobytes())
    return buffer.getvalue()


def jobs(astronaut, group) -> dict[str, tuple[dict, dict, Image.Image]]:
    mask = Image.new("L", astronaut.size)
    mask.paste(255, (200, 200, 260, 260))
    hanks = group.crop((0, 0, 400, 400))
    return {
        "remove_background": ({"image": phone_photo(astronaut)}, {"engine": "u2netp"}, astronaut),
        "remove_object": ({"image": phone_photo(astronaut), "mask": encode(mask)}, {"engine": "opencv-telea"},
                          astronaut),
        "style_transfer": ({"image": phone_photo(astronaut)}, {"engine": "neural-preset"}, astronaut),
        "face_swap": ({"source": encode(hanks), "target": phone_photo(group)}, {"engine": "landmarks"}, group),
    }


@pytest.mark.parametrize("operation", ["remove_background", "remove_object", "style_transfer", "face_swap"])
def test_every_operation_keeps_the_colour_profile_and_exif(client, cpu_worker, astronaut, group, operation):
    images, params, upright = jobs(astronaut, group)[operation]
    job = client.submit(operation, images, params)
    status = client.wait(job, timeout=120)
    assert status.state == "succeeded", status.error
    result = Image.open(io.BytesIO(client.results(job)[0]))
    assert result.format == ("PNG" if operation == "remove_background" else "JPEG")  # a cut-out needs its alpha
    assert result.size == upright.size  # upright: the orientation was applied once
    assert result.info.get("icc_profile") == PROFILE
    exif = result.getexif()
    assert exif.get(0x010F) == "StudioCam" and 0x0112 not in exif  # the camera kept, the orientation used up


def test_a_heic_photo_is_read(client, cpu_worker, astronaut):
    heic = phone_photo(astronaut, "HEIF")
    assert heic[4:12] == b"ftypheic"
    client.check_upload(heic)  # what the page says at upload time
    job = client.submit("remove_background", {"image": heic}, {"engine": "u2netp"})
    assert client.wait(job, timeout=60).state == "succeeded"
    result = Image.open(io.BytesIO(client.results(job)[0]))
    assert result.size == astronaut.size and result.info.get("icc_profile") == PROFILE
    styled = client.submit("style_transfer", {"image": heic}, {"engine": "neural-preset"})
    assert client.wait(styled, timeout=60).state == "succeeded"
    assert Image.open(io.BytesIO(client.results(styled)[0])).format == "JPEG"


def test_png_in_gives_png_out_and_downloads_say_their_format(ui_url, client, cpu_worker, astronaut):
    import requests

    api = f"{ui_url}api/v1/tasks"
    answers = {}
    for fmt in ("PNG", "JPEG"):
        job = client.submit("style_transfer", {"image": encode(astronaut, fmt)}, {"engine": "neural-preset"})
        assert client.wait(job, timeout=60).state == "succeeded"
        answers[fmt] = requests.get(f"{api}/{job}/result/", timeout=30)
    assert answers["PNG"].headers["content-type"] == "image/png"
    assert answers["JPEG"].headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(answers["JPEG"].content)).format == "JPEG"


@pytest.mark.parametrize("chosen", ["png", "jpeg", "webp"])
def test_the_result_comes_in_the_format_chosen(client, cpu_worker, astronaut, chosen):
    """A cut-out asked for as WebP keeps its transparency; as JPEG it lies on white; the
    colour profile and EXIF come along in each."""
    job = client.submit("remove_background", {"image": phone_photo(astronaut)}, {"engine": "u2netp",
                                                                                "format": chosen})
    assert client.wait(job, timeout=60).state == "succeeded"
    result = Image.open(io.BytesIO(client.results(job)[0]))
    assert (result.format, result.mode) == {"png": ("PNG", "RGBA"), "jpeg": ("JPEG", "RGB"),
                                            "webp": ("WEBP", "RGBA")}[chosen]
    corner = result.convert("RGBA").getpixel((2, 2))  # the backdrop, gone
    assert corner[3] == 255 and min(corner[:3]) > 240 if chosen == "jpeg" else corner[3] == 0, corner
    assert result.info.get("icc_profile") == PROFILE and result.getexif().get(0x010F) == "StudioCam"


def test_the_gradio_api_takes_the_format_and_names_the_file_after_it(ui_url, cpu_worker, astronaut, tmp_path):
    from gradio_client import Client, handle_file

    photo = tmp_path / "astronaut.png"
    astronaut.save(photo)
    styled, info = Client(ui_url, verbose=False).predict(image=handle_file(str(photo)), max_side=128,
                                                          format="webp", api_name="/style_transfer")
    assert styled.endswith("astronaut-style-0.webp") and Image.open(styled).format == "WEBP", styled


def test_a_mask_drawn_on_the_upright_photo_fits_a_turned_phone_photo(client, cpu_worker):
    """The photo is stored turned (EXIF orientation 6); submit reads its size from the
    header, upright, as the page showed it, without decoding it."""
    from skimage import data

    upright = Image.fromarray(data.coffee())  # 600x400
    mask = Image.new("L", upright.size)
    mask.paste(255, (100, 100, 160, 140))
    job = client.submit("remove_object", {"image": phone_photo(upright), "mask": encode(mask)},
                        {"engine": "opencv-telea"})
    assert client.wait(job, timeout=60).state == "succeeded"
    assert Image.open(io.BytesIO(client.results(job)[0])).size == upright.size
