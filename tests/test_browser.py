"""The studio as a person uses it, in headless Chromium: a fresh page per tab, shipped
photos uploaded, Run pressed without touching anything else, the result seen. Then
what a person watches while a job runs: the progress bar, the queue's ETA, Cancel."""
from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import wait_for
from tests.test_queue import running, slow_job

SCREENSHOTS = Path(__file__).resolve().parent.parent / ".cache" / "screenshots"
ETA = re.compile(r"about (?:(\d+) min ?)?(?:([\d.]+) s)? left")


@pytest.fixture(scope="module")
def photos(tmp_path_factory, astronaut_jpeg):
    """Photos that ship with the installed packages, as files a person would upload."""
    import insightface
    from PIL import Image
    from skimage import data

    folder = tmp_path_factory.mktemp("photos")
    (folder / "astronaut.jpg").write_bytes(astronaut_jpeg)
    Image.fromarray(data.coffee()).save(folder / "coffee.jpg")
    portrait = Path(insightface.__file__).parent / "data" / "images" / "Tom_Hanks_54745.png"
    shutil.copy(portrait, folder / "portrait.png")
    shutil.copy(portrait.with_name("t1.jpg"), folder / "group.jpg")  # six faces
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return folder


def open_tab(browser, ui_url, tab: str, width: int = 1280):
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.goto(ui_url)
    page.get_by_role("tab", name=tab).click()
    return page


def upload(page, element_id: str, path: Path) -> None:
    page.locator(f"#{element_id} input[type=file]").first.set_input_files(str(path))


def status_box(page, key: str):
    return page.locator(f"#{key}-status")


def wait_done(page, key: str, timeout: float = 90) -> str:
    """Wait for the status box's final line and return its text."""
    box = status_box(page, key)
    try:
        box.locator(".studio-line b").filter(has_text=re.compile("^(Done|Failed:|Cancelled)$")).wait_for(
            timeout=timeout * 1000)
    except Exception:
        screenshot(page, f"timeout-{key}")  # what the person saw instead
        raise
    return "\n".join(box.locator(".studio-line, .studio-note").all_inner_texts())


def result_size(page, key: str) -> list[int]:
    image = page.locator(f"#{key}-result img").first
    image.wait_for(timeout=10_000)
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    return image.evaluate("img => [img.naturalWidth, img.naturalHeight]")


def downloaded(page, key: str) -> Path:
    """Click the tab's download button; the file it saves, under its suggested name."""
    with page.expect_download() as download:
        page.locator(f"#{key}-download").click()
    saved = Path(download.value.path()).with_name(download.value.suggested_filename)
    download.value.save_as(saved)
    return saved


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.jpg"), full_page=True, type="jpeg", quality=70)


def test_remove_background_first_click(browser, ui_url, photos):
    page = open_tab(browser, ui_url, "Remove background")
    upload(page, "remove-background-image", photos / "astronaut.jpg")
    page.get_by_role("button", name="Remove background", exact=True).click()
    text = wait_done(page, "remove-background")
    assert text.startswith("Done") and "u2netp" in text
    assert result_size(page, "remove-background") == [512, 512]
    assert downloaded(page, "remove-background").name == "astronaut-cutout.png"
    result = page.locator("#remove-background-result img").first
    backdrop = result.evaluate("img => getComputedStyle(img).backgroundImage")
    assert "conic-gradient" in backdrop  # a checkerboard shows what is transparent
    screenshot(page, "remove_background")


def test_a_phone_sized_result_shows_at_screen_size_and_downloads_in_full(browser, ui_url, astronaut, tmp_path):
    """A 12 MP result: the page loads a copy that fits a screen, the download is the whole file."""
    photo = tmp_path / "phone.jpg"
    astronaut.resize((4000, 3000)).save(photo, quality=90)
    page = open_tab(browser, ui_url, "Remove background")
    fetched: list[str] = []
    page.on("request", lambda request: fetched.append(request.url))
    upload(page, "remove-background-image", photo)
    page.get_by_role("button", name="Remove background", exact=True).click()
    assert wait_done(page, "remove-background", timeout=180).startswith("Done")
    assert result_size(page, "remove-background") == [1600, 1200]
    screenshot(page, "phone_sized_result")
    assert not [url for url in fetched if url.endswith("phone-cutout.png")]  # the 12 MP file stays on the server
    assert "4000×3000 PNG" in page.locator("#remove-background-download").inner_text()
    with Image.open(downloaded(page, "remove-background")) as full:
        assert (full.size, full.mode, full.format) == ((4000, 3000), "RGBA", "PNG")


def test_style_transfer_first_click(browser, ui_url, photos):
    page = open_tab(browser, ui_url, "Style transfer")
    upload(page, "style-transfer-image", photos / "astronaut.jpg")
    page.get_by_role("button", name="Apply style", exact=True).click()
    text = wait_done(page, "style-transfer")
    assert text.startswith("Done") and "preset 0" in text, text
    assert result_size(page, "style-transfer") == [512, 512]
    screenshot(page, "style_transfer")


def test_remove_object_first_click_with_one_brush_stroke(browser, ui_url, photos):
    page = open_tab(browser, ui_url, "Remove object")
    # the photo comes from the tab's examples (coffee.jpg, from scikit-image), as a first visit would
    page.get_by_text("Try a photo, then paint on it").locator("xpath=../..").locator("img").first.click()
    page.locator("#remove-object-editor").get_by_text("Upload an image").wait_for(state="hidden")
    canvas = page.locator("#remove-object-editor canvas").first
    canvas.wait_for()
    page.wait_for_timeout(500)  # the editor draws the photo
    box = canvas.bounding_box()
    x, y = box["x"] + box["width"] * 0.45, box["y"] + box["height"] * 0.5
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + box["width"] * 0.1, y + 10, steps=8)
    page.mouse.up()
    page.get_by_role("button", name="Remove object", exact=True).click()
    text = wait_done(page, "remove-object")
    assert text.startswith("Done") and "opencv" in text.lower(), text
    assert result_size(page, "remove-object") == [600, 400]
    assert downloaded(page, "remove-object").name == "photo-removed.png"
    screenshot(page, "remove_object")


def test_face_swap_first_click(browser, ui_url, photos):
    page = open_tab(browser, ui_url, "Face swap")
    upload(page, "face-swap-source", photos / "portrait.png")
    upload(page, "face-swap-target", photos / "astronaut.jpg")
    page.get_by_role("button", name="Swap faces", exact=True).click()
    text = wait_done(page, "face-swap")
    assert text.startswith("Done") and "face" in text.lower(), text
    assert result_size(page, "face-swap") == [512, 512]
    screenshot(page, "face_swap")


def test_engine_lists_say_what_the_workers_have(browser, ui_url, u2netp_installed):
    page = open_tab(browser, ui_url, "Remove background")
    page.locator("#remove-background-engine input").click()
    page.get_by_role("option").first.wait_for()
    options = page.get_by_role("option").all_inner_texts()
    assert any(o.startswith("rembg U2-Net small (4.6 MB) · ready") for o in options), options
    assert any(o.startswith("rembg U2-Net (170 MB) · not installed (the workers are offline)") for o in options)


def test_generate_first_click_says_what_is_missing(browser, ui_url, gpu_worker):
    """Offline, the default model cannot be fetched: the page says so before Run, and
    after it, with how to get it."""
    page = open_tab(browser, ui_url, "Generate")
    note = page.locator("#generate-model-note")
    note.get_by_text("sd-turbo is not on the GPU workers, and they are offline").wait_for()
    page.get_by_role("textbox", name="Prompt", exact=True).fill("a lighthouse on a cliff at dusk")
    page.get_by_role("button", name="Generate", exact=True).click()
    text = wait_done(page, "generate")
    screenshot(page, "generate_offline")
    assert text.startswith("Failed") and "sd-turbo" in text and "hf download" in text, text


def test_cancel_ends_on_cancelled(browser, ui_url, gpu_worker, tiny_sd):
    page = open_tab(browser, ui_url, "Generate")
    page.get_by_role("textbox", name="Prompt", exact=True).fill("a slow picture")
    model = page.locator("#generate-model input").first
    model.fill(tiny_sd)
    model.press("Enter")
    for control, value in (("steps", "150"), ("width", "128"), ("height", "128")):  # each step well under a second
        field = page.locator(f"#generate-{control} input[type=number]")
        field.fill(value)
        field.press("Enter")
    page.get_by_role("button", name="Generate", exact=True).click()
    box = status_box(page, "generate")
    box.get_by_text(re.compile(r"Running [1-9]")).wait_for(timeout=60_000)
    cancel = page.get_by_role("button", name="Cancel", exact=True)
    assert cancel.is_enabled()
    clicked = time.monotonic()
    cancel.click()
    text = wait_done(page, "generate", timeout=15)
    assert text.startswith("Cancelled"), text
    assert time.monotonic() - clicked < 5
    assert "by force" not in text  # it stopped between steps; the worker kept its process
    wait_for(lambda: not cancel.is_enabled(), timeout=5)


def test_queued_job_shows_its_place_and_an_eta_that_does_not_grow(browser, ui_url, client, photos, tiny_png,
                                                                   astronaut_jpeg):
    # typical run times, as a studio that has run such jobs before knows them
    client.wait(slow_job(client, tiny_png, steps=24, step_seconds=0.2))
    client.wait(client.submit("remove_background", {"image": astronaut_jpeg}, {"engine": "u2netp"}))
    page = open_tab(browser, ui_url, "Remove background")
    upload(page, "remove-background-image", photos / "astronaut.jpg")
    blocker = slow_job(client, tiny_png, steps=24, step_seconds=0.2)
    wait_for(lambda: running(client, blocker))
    page.get_by_role("button", name="Remove background", exact=True).click()
    box = status_box(page, "remove-background")
    box.locator(".studio-line b", has_text="Queued").wait_for(timeout=10_000)
    line = box.locator(".studio-line")
    etas, bar_seen, behind_blocker = [], [], []
    while (text := line.inner_text()).startswith("Queued"):
        # behind the running blocker; once it ends, next to start until the worker takes it
        assert "1 job ahead" in text or "next to start" in text, text
        behind_blocker.append("1 job ahead" in text)
        found = ETA.search(text)
        if found:
            etas.append(int(found.group(1) or 0) * 60 + float(found.group(2) or 0))
        bar_seen.append(box.locator("progress").is_visible())
        time.sleep(0.25)
    assert sum(behind_blocker) >= 8, behind_blocker
    assert behind_blocker == sorted(behind_blocker, reverse=True), behind_blocker  # the place never worsens
    assert len(etas) >= 0.9 * len(behind_blocker), etas  # the ETA is shown throughout
    assert all(later <= earlier + 0.2 for earlier, later in zip(etas, etas[1:])), etas
    assert sum(bar_seen) >= 0.9 * len(bar_seen)
    assert wait_done(page, "remove-background").startswith("Done")


def test_progress_bar_stays_visible_while_a_job_runs(browser, ui_url, client, tiny_png, photos):
    page = open_tab(browser, ui_url, "Remove background")
    upload(page, "remove-background-image", photos / "astronaut.jpg")
    blocker = slow_job(client, tiny_png, steps=30, step_seconds=0.1)  # so the page's job waits, then runs
    wait_for(lambda: running(client, blocker))
    page.get_by_role("button", name="Remove background", exact=True).click()
    box = status_box(page, "remove-background")
    box.locator(".studio-line b", has_text="Queued").wait_for(timeout=10_000)
    samples, line = [], box.locator(".studio-line")
    while re.match(r"(Queued|Running|Submitting)", text := line.inner_text()):
        samples.append(box.locator("progress").is_visible())
        # no second bar or copy of the text over the box (Gradio's own progress tracker)
        assert not box.locator(".progress-level-inner, .progress-bar, .eta-bar").filter(visible=True).count()
        time.sleep(0.1)
    assert text.startswith("Done"), text
    assert len(samples) >= 10 and sum(samples) >= 0.9 * len(samples), samples


def test_an_unreadable_upload_is_flagged_when_uploaded(browser, ui_url, photos):
    page = open_tab(browser, ui_url, "Remove background")
    upload(page, "remove-background-image", photos / "broken.jpg")
    page.get_by_text("JPEG file is damaged").first.wait_for(timeout=15_000)


def test_a_phone_reaches_every_tab_and_sees_its_job(browser, ui_url, photos):
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.goto(ui_url)
    page.get_by_role("tab", name="Generate").wait_for()
    for tab in ("Generate", "Face swap", "Remove background", "Remove object", "Style transfer"):
        assert page.get_by_role("tab", name=tab).is_visible(), tab  # no "..." menu to find them in
    page.get_by_role("tab", name="Remove background").click()
    upload(page, "remove-background-image", photos / "astronaut.jpg")
    page.get_by_role("button", name="Remove background", exact=True).click()
    assert wait_done(page, "remove-background").startswith("Done")
    assert page.locator("#remove-background-result").evaluate(  # Run brought the result on screen
        "el => { const r = el.getBoundingClientRect(); return r.top >= 0 && r.top < window.innerHeight; }")
    screenshot(page, "phone")


def test_a_png_with_a_megabyte_of_parameters_fills_the_form_and_the_server_never_stalls(browser, ui_url, tmp_path):
    """The crafted PNG of test_hostile, dropped on the Generate tab in a real browser,
    while a probe times the server's `GET /`."""
    import threading

    import requests
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("parameters", "a" * 900_000 + "\nSteps: " + " " * 50_000, zip=True)
    crafted = tmp_path / "crafted.png"
    Image.new("RGB", (8, 8)).save(crafted, pnginfo=info)
    page = open_tab(browser, ui_url, "Generate")
    times, stop = [], threading.Event()

    def probe() -> None:
        while not stop.wait(0.05):
            started = time.monotonic()
            requests.get(ui_url, timeout=30)
            times.append(time.monotonic() - started)

    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    try:
        upload(page, "generate-png-parameters", crafted)
        prompt = page.get_by_label("Prompt", exact=True)
        wait_for(lambda: prompt.input_value().startswith("aaaa"), timeout=30)
    finally:
        stop.set()
        prober.join()
    assert times and max(times) < 1.0, times  # test_hostile's bound for "nothing stalled"
