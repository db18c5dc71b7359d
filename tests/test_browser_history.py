"""Jobs outlive the page, in headless Chromium: a reload or a closed tab leaves the job
running, the page finds it again, and the History tab lists this browser's jobs (only
its own) with "use again", "send to", cancel and delete."""
from __future__ import annotations

import re
import zipfile

import pytest
from gradio_client import Client, handle_file

from tests.conftest import wait_for
from tests.test_browser import photos, result_size, screenshot, status_box, upload, wait_done  # noqa: F401
from tests.test_queue import running, slow_job


@pytest.fixture()
def context(browser):  # noqa: F811
    """One browser profile: its pages share the studio's browser-key cookie."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context
    context.close()


def browser_key(context) -> str:
    return next(c["value"] for c in context.cookies() if c["name"] == "studio-browser")


def open_page(context, ui_url, tab: str):
    page = context.new_page()
    page.goto(ui_url)
    page.get_by_role("tab", name=tab).click()
    return page


def job_id_shown(page, key: str) -> str:
    text = status_box(page, key).locator(".studio-job").inner_text(timeout=10_000)
    return text.removeprefix("job ").strip()


def start_queued_removal(page, client, tiny_png, photos) -> str:  # noqa: F811
    """Run Remove background behind a slow job, so it is still queued; its id."""
    upload(page, "remove-background-image", photos / "astronaut.jpg")
    blocker = slow_job(client, tiny_png, steps=40, step_seconds=0.1)
    wait_for(lambda: running(client, blocker))
    page.get_by_role("button", name="Remove background", exact=True).click()
    status_box(page, "remove-background").locator(".studio-line b", has_text="Queued").wait_for(timeout=10_000)
    return job_id_shown(page, "remove-background")


def run_again(page, key: str, button: str) -> str:
    """Press Run on a tab that shows an earlier job; the new job's final status line."""
    box = status_box(page, key).locator(".studio-job")
    before = box.inner_text() if box.count() else None
    page.get_by_role("button", name=button, exact=True).click()
    wait_for(lambda: box.count() and box.inner_text() != before, timeout=30)
    return wait_done(page, key)


def open_history(page):
    page.get_by_role("tab", name="History").click()
    return page.locator("#history-jobs")


def use_again_on_newest(page, caption: str) -> None:
    """In the History, pick the newest job (listed as `caption`) and press Use again."""
    jobs = open_history(page)
    jobs.get_by_text(caption).first.wait_for(timeout=10_000)
    jobs.locator(".thumbnail-item").first.click()
    page.get_by_role("button", name="Use again").click()


def test_a_reload_finds_the_running_job_and_its_result_arrives(context, ui_url, client, tiny_png, photos):  # noqa: F811
    page = open_page(context, ui_url, "Remove background")
    job = start_queued_removal(page, client, tiny_png, photos)
    page.reload()
    page.get_by_role("tab", name="Remove background").click()
    assert job_id_shown(page, "remove-background") == job  # the same job, still followed
    box = status_box(page, "remove-background")
    assert re.match(r"(Queued|Running|Done)", box.locator(".studio-line").inner_text())
    assert wait_done(page, "remove-background").startswith("Done")
    assert result_size(page, "remove-background") == [512, 512]
    assert client.status(job).state == "succeeded"  # the reload cancelled nothing


def test_a_closed_page_leaves_its_job_finished_in_history(context, browser, ui_url, client, tiny_png,  # noqa: F811
                                                          photos):  # noqa: F811
    page = open_page(context, ui_url, "Remove background")
    job = start_queued_removal(page, client, tiny_png, photos)
    page.close()
    assert client.wait(job, timeout=60).state == "succeeded"
    page = open_page(context, ui_url, "Remove background")  # the tab shows it as it ended
    assert wait_done(page, "remove-background").startswith("Done")
    jobs = open_history(page)
    jobs.get_by_text("Remove background · done").first.wait_for(timeout=10_000)
    caption = jobs.locator(".caption-label").first
    assert caption.evaluate("label => label.scrollWidth <= label.clientWidth"), caption.inner_text()  # not cut off
    jobs.locator(".thumbnail-item").first.click()
    page.locator("#history-details").get_by_text("Kept for another").wait_for(timeout=10_000)
    assert result_size(page, "history") == [512, 512]
    screenshot(page, "history")
    stranger = browser.new_page()  # another browser: its History is its own
    stranger.goto(ui_url)
    open_history(stranger)
    stranger.wait_for_timeout(3000)
    assert stranger.locator("#history-jobs").get_by_text("Remove background").count() == 0
    stranger.close()


def test_use_again_fills_the_tab_and_send_to_moves_the_result(context, ui_url, client, photos):  # noqa: F811
    page = open_page(context, ui_url, "Remove background")
    upload(page, "remove-background-image", photos / "astronaut.jpg")
    page.get_by_label("Mask").check()
    page.get_by_role("button", name="Remove background", exact=True).click()
    assert wait_done(page, "remove-background").startswith("Done")
    page.reload()
    use_again_on_newest(page, "Remove background · done")
    page.locator("#remove-background-image img").first.wait_for(timeout=10_000)  # the photo is back
    assert page.get_by_label("Mask").is_checked()  # and the settings
    assert run_again(page, "remove-background", "Remove background").startswith("Done")
    jobs = open_history(page)
    jobs.locator(".thumbnail-item").first.click()
    page.get_by_label("Send the result to").click()
    page.get_by_role("option", name="Style transfer · image").click()
    page.get_by_role("button", name="Send", exact=True).click()
    page.locator("#style-transfer-image img").first.wait_for(timeout=10_000)
    assert run_again(page, "style-transfer", "Apply style").startswith("Done")


def test_use_again_ticks_the_faces_the_face_swap_replaced(context, ui_url, photos):  # noqa: F811
    page = open_page(context, ui_url, "Face swap")
    upload(page, "face-swap-source", photos / "portrait.png")
    upload(page, "face-swap-target", photos / "group.jpg")
    faces = page.locator("#face-swap-target-faces")
    faces.get_by_label("3", exact=True).check(timeout=30_000)  # once the target's faces are found
    page.get_by_role("button", name="Swap faces", exact=True).click()
    assert wait_done(page, "face-swap").startswith("Done")
    page.reload()
    use_again_on_newest(page, "Face swap · done")
    page.locator("#face-swap-target img").first.wait_for(timeout=10_000)
    wait_for(lambda: faces.get_by_label("3", exact=True).is_checked(), timeout=30)  # after its faces are found again
    assert faces.locator("input[type=checkbox]").count() == 6
    assert [box.is_checked() for box in faces.locator("input[type=checkbox]").all()] == [False, False, True, False,
                                                                                           False, False]


def test_another_browser_cannot_see_or_cancel_a_job_through_the_gradio_api(context, ui_url, client, photos):  # noqa: F811
    page = open_page(context, ui_url, "History")
    mine = browser_key(context)
    other = Client(ui_url, headers={"Cookie": "studio-browser=" + "x" * 32}, verbose=False)
    other.predict(handle_file(str(photos / "astronaut.jpg")), "u2netp", api_name="/remove_background")
    page.wait_for_timeout(3000)  # History refreshes every 2 s
    assert page.locator("#history-jobs").get_by_text("Remove background").count() == 0
    same = Client(ui_url, headers={"Cookie": f"studio-browser={mine}"}, verbose=False)
    same.predict(handle_file(str(photos / "astronaut.jpg")), "u2netp", api_name="/remove_background")
    page.locator("#history-jobs").get_by_text("Remove background · done").first.wait_for(timeout=10_000)
    named = same.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert not [name for name in named if "history" in name or "cancel" in name]  # nothing to list or cancel by id


def test_a_batch_of_three_photos_gives_three_results_and_a_zip(context, ui_url, photos, tmp_path):  # noqa: F811
    page = open_page(context, ui_url, "Remove background")
    page.get_by_text("Batch: many photos at once").click()
    files = [photos / "astronaut.jpg", photos / "coffee.jpg", photos / "portrait.png"]
    page.locator("#remove-background-batch-photos input[type=file]").set_input_files([str(f) for f in files])
    page.get_by_role("button", name="Run batch").click()
    box = page.locator("#remove-background-batch-status")
    box.get_by_text("Batch finished").wait_for(timeout=90_000)
    assert "3 of 3 done" in box.inner_text()
    gallery = page.locator("#remove-background-batch-gallery")
    wait_for(lambda: gallery.locator(".thumbnail-item img").count() == 3, timeout=10)
    screenshot(page, "batch")
    with page.expect_download() as download:
        page.locator("#remove-background-batch-zip a[download]").first.click()
    saved = tmp_path / "results.zip"
    download.value.save_as(saved)
    with zipfile.ZipFile(saved) as bundle:
        assert sorted(bundle.namelist()) == ["astronaut-cutout.png", "coffee-cutout.png", "portrait-cutout.png"]
    jobs = open_history(page)  # each item is a job of the History
    wait_for(lambda: jobs.get_by_text("Remove background · done").count() == 3, timeout=10)


def test_a_reload_brings_back_the_running_batch(context, ui_url, client, tiny_png, photos):  # noqa: F811
    page = open_page(context, ui_url, "Remove background")
    page.get_by_text("Batch: many photos at once").click()
    files = [photos / "astronaut.jpg", photos / "coffee.jpg"]
    page.locator("#remove-background-batch-photos input[type=file]").set_input_files([str(f) for f in files])
    blocker = slow_job(client, tiny_png, steps=80, step_seconds=0.1)  # the batch still waits when the page is back
    wait_for(lambda: running(client, blocker))
    page.get_by_role("button", name="Run batch").click()
    box = page.locator("#remove-background-batch-status")
    batch = box.locator(".studio-job").inner_text(timeout=10_000).removeprefix("batch ").strip()
    page.reload()
    assert box.locator(".studio-job").inner_text(timeout=15_000) == f"batch {batch}"  # its accordion opened
    assert page.get_by_role("button", name="Cancel batch").is_enabled()
    box.get_by_text("Batch finished").wait_for(timeout=90_000)
    assert "2 of 2 done" in box.inner_text()
    gallery = page.locator("#remove-background-batch-gallery")
    wait_for(lambda: gallery.locator(".thumbnail-item img").count() == 2, timeout=10)
    assert page.locator("#remove-background-batch-zip a[download]").count()
    assert not page.get_by_role("button", name="Cancel batch").is_enabled()


def test_history_cancels_a_queued_job_and_deletes_an_ended_one(context, ui_url, client, tiny_png,  # noqa: F811
                                                               photos):  # noqa: F811
    page = open_page(context, ui_url, "Remove background")
    job = start_queued_removal(page, client, tiny_png, photos)
    jobs = open_history(page)
    jobs.get_by_text("Remove background · queued").first.wait_for(timeout=10_000)
    jobs.locator(".thumbnail-item").first.click()
    page.get_by_role("button", name="Cancel job").click()
    jobs.get_by_text("Remove background · cancelled").first.wait_for(timeout=10_000)  # updated in place
    assert client.status(job).state == "cancelled"
    page.get_by_role("tab", name="Remove background").click()  # the tab followed it to its end
    assert wait_done(page, "remove-background").startswith("Cancelled")
    jobs = open_history(page)
    jobs.locator(".thumbnail-item").first.click()
    page.get_by_role("button", name="Delete").click()
    wait_for(lambda: jobs.get_by_text("Remove background · cancelled").count() == 0, timeout=10)
    assert job not in [entry.status.id for entry in client.history(f"browser:{browser_key(context)}")]


def test_the_page_comes_back_on_the_tab_it_was_on(context, ui_url):
    page = open_page(context, ui_url, "Style transfer")
    page.wait_for_timeout(500)
    page.reload()
    # a loaded machine: the page can take 10 s to come back (it did with a 10x CPU throttle)
    page.get_by_role("tab", name="Style transfer", selected=True).wait_for(timeout=30_000)
    page.wait_for_timeout(2000)  # the app's own select of its first tab as it mounts changes nothing
    page.reload()
    page.get_by_role("tab", name="Style transfer", selected=True).wait_for(timeout=30_000)
    quick = open_page(context, ui_url, "Face swap")  # a tab clicked at once is not switched back
    quick.wait_for_timeout(3000)
    assert quick.get_by_role("tab", name="Face swap", selected=True).is_visible()


def test_with_a_login_the_history_is_the_users_on_any_device(browser, cpu_worker, photos):  # noqa: F811
    from tests.conftest import UIProcess

    ui = UIProcess("--auth", "ada:lovelace")
    try:
        laptop, phone = browser.new_context(), browser.new_context()
        for device in (laptop, phone):
            page = device.new_page()
            page.goto(ui.url)
            page.get_by_label("username").fill("ada")
            page.get_by_label("password").fill("lovelace")
            page.get_by_role("button", name="Login").click()
            page.get_by_role("tab", name="Remove background").click()
        page = laptop.pages[0]
        upload(page, "remove-background-image", photos / "astronaut.jpg")
        page.get_by_role("button", name="Remove background", exact=True).click()
        assert wait_done(page, "remove-background").startswith("Done")
        other = phone.pages[0]
        other.reload()  # the phone finds the job on its tab, and in the History
        assert wait_done(other, "remove-background").startswith("Done")
        open_history(other).get_by_text("Remove background · done").first.wait_for(timeout=10_000)
    finally:
        ui.stop()
