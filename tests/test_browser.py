"""One real user path in headless Chromium: upload a photo, run, see the cut-out."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(__file__).resolve().parent.parent / ".cache" / "screenshots"


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield browser
        browser.close()


def test_upload_run_and_see_the_result(browser, ui_url, tmp_path, astronaut_jpeg):
    photo = tmp_path / "astronaut.jpg"
    photo.write_bytes(astronaut_jpeg)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(ui_url)
    page.get_by_role("tab", name="Remove background").click()
    page.locator("#remove-background-photo input[type=file]").set_input_files(str(photo))
    page.get_by_role("button", name="Remove background", exact=True).click()
    status = page.locator("#remove-background-status")
    status.get_by_text("Done", exact=True).wait_for(timeout=90_000)  # the bold word, not the progress bar's "done"
    result = page.locator("#remove-background-result img")
    result.wait_for(timeout=30_000)
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=result.element_handle())
    assert result.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [512, 512]
    assert "u2netp" in status.inner_text()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "remove_background.png"), full_page=True)
