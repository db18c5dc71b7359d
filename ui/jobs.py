"""What every tab does with a job: submit it, follow it with one steady progress
bar, show its status, hand back its images as named files, and cancel it."""
from __future__ import annotations

import asyncio
import contextlib
import html
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Iterator

import gradio as gr

from pipelines.errors import StudioError
from pipelines.imaging import file_extension
from tasks.client import JobStatus, QueueUnavailable, StudioClient
from ui.browser_key import COOKIE, valid_key
from ui.cancel_requests import cancel_requested
from ui.guard import visitor_address
from ui.intake import intake

POLL_SECONDS = 0.2
QUEUE_OUTAGE_SECONDS = 120  # a page keeps following its job through a Redis outage this long
RESULTS = Path(tempfile.gettempdir()) / "studio-results"  # Gradio copies each file into its cache


def read_upload(payload: dict[str, Any] | None, what: str) -> bytes:
    """Raw bytes of an uploaded file (events run with preprocess=False, so the
    original file reaches the worker, EXIF and all, and bad files get our message)."""
    if not payload or not payload.get("path"):
        raise gr.Error(f"Please upload {what} first.")
    return Path(payload["path"]).read_bytes()


def check_upload(client: StudioClient, payload: dict[str, Any] | None) -> None:
    """Warn at once (not only at Run) when an uploaded file is not a usable image."""
    if payload and payload.get("path"):
        try:
            client.check_upload(Path(payload["path"]).read_bytes())
        except StudioError as exc:
            gr.Warning(str(exc), duration=None)


def upload_stem(payload: dict[str, Any] | None, fallback: str = "photo") -> str:
    """The uploaded file's name without its extension, for naming downloads."""
    name = Path((payload or {}).get("orig_name") or (payload or {}).get("path") or fallback).stem
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:60] or fallback


def quota_of(request: gr.Request | None) -> str:
    """Who a job counts against, for the fair share: the logged-in user, else the
    visitor's address (see `visitor_address` for proxies and the share link's tunnel).
    Not the browser key: a visitor can drop that cookie at will."""
    if request is None:
        return "ui"
    if request.username:
        return f"user:{request.username}"
    return f"ip:{visitor_address(request.client.host if request.client else None, request.headers)}"


def owner_of(request: gr.Request | None) -> str | None:
    """Whose History a job joins: the logged-in user (any device), else this browser
    (its key cookie); None for a caller with neither (a script without cookies)."""
    if request is None:
        return None
    if request.username:
        return f"user:{request.username}"
    try:
        cookies = dict(request.cookies or {})
    except AttributeError:
        return None
    key = valid_key(cookies.get(COOKIE, ""))
    return f"browser:{key}" if key else None


class ResultView:
    """What a tab shows of its job: the result image and the status box. A tab with more
    outputs (Generate: previews, a gallery, the seed) overrides these."""

    def cleared(self, status_html: str) -> tuple:
        """Before a job: no result yet."""
        return None, status_html

    def live(self, status: JobStatus) -> tuple:
        return gr.skip(), describe(status)

    def final(self, status: JobStatus, files: list[str]) -> tuple:
        return (files[0] if files else None), describe(status)

    def names(self, status: JobStatus) -> list[str]:
        """The download names of the job's images (see `result_files`)."""
        return [status.name or status.operation.replace("_", "-")]


# The job (or batch) each page's place shows, by (page session, place: an operation's
# tab or its batch panel). A place that found its job again after a reload stops
# following it when the person starts another one there (the found job runs on). An API
# client's jobs never give way: it may run several.
_started: dict[tuple[str, str], str] = {}


@contextlib.contextmanager
def started(request: gr.Request | None, place: str, job_id: str) -> Iterator[None]:
    """While in it, `place` on this page shows `job_id`, which it started."""
    screen = _screen(request, place)
    _started[screen] = job_id
    try:
        yield
    finally:
        if _started.get(screen) == job_id:
            del _started[screen]


def superseded(request: gr.Request | None, place: str, job_id: str) -> bool:
    """Whether the person started another job on `place` since this page found `job_id`."""
    return _started.get(_screen(request, place), job_id) != job_id


def _screen(request: gr.Request | None, place: str) -> tuple[str, str]:
    return (request.session_hash if request else None) or "", place


async def submit(client: StudioClient, operation: str, images: dict[str, bytes], params: dict[str, Any],
                 request: gr.Request | None, name: str | None = None, in_history: bool = True) -> str:
    """Queue the job (validation decodes the images: off the event loop), in the page's
    History unless `in_history` is False (helper jobs, like finding faces on upload)."""
    owner = owner_of(request) if in_history else None
    try:
        return await intake(client.submit, operation, images, params, None, quota_of(request), owner, name)
    except StudioError as exc:
        raise gr.Error(str(exc), print_exception=False) from None


class Follower:
    """One job or batch a page follows until it ends, and where that stands (`state`):

    - "following": its status is read every `every` seconds (`read()`; a status with `.done`);
    - "outage": the job queue does not answer (Redis restarting or stalled): the last
      status again each second, for up to QUEUE_OUTAGE_SECONDS;
    - "done": the last status read is final;
    - "superseded": found again on page load (`give_way`), it was followed until the
      person started another one at the same `place` (the found one runs on).

    A page that goes away leaves the work running; an API client's explicit cancel (see
    `cancel_requests`) calls `cancel()`. With `progress`, gr.Progress follows the job too
    (what API clients see)."""

    def __init__(self, read: Callable[[], Any], cancel: Callable[[], Any], request: gr.Request | None, place: str,
                 item_id: str, every: float, what: str, give_way: bool = False, progress: gr.Progress | None = None):
        self.read, self.cancel, self.request, self.place, self.item_id = read, cancel, request, place, item_id
        self.every, self.what, self.give_way, self.progress = every, what, give_way, progress
        self.state = "following"

    @classmethod
    def job(cls, client: StudioClient, job_id: str, request: gr.Request | None, progress: gr.Progress | None = None,
            give_way: bool = False, place: str = "") -> Follower:
        return cls(lambda: client.status(job_id), lambda: client.cancel(job_id), request, place, job_id,
                   POLL_SECONDS, f"job (its id is {job_id})", give_way, progress)

    async def statuses(self) -> AsyncIterator[Any]:
        """Each status read, the final one last (none after "superseded")."""
        status, silent_since, began = None, None, time.monotonic()
        try:
            while not (self.give_way and superseded(self.request, self.place, self.item_id)):
                try:
                    status = await asyncio.to_thread(self.read)
                except QueueUnavailable as exc:
                    silent_since = silent_since or time.monotonic()
                    if time.monotonic() - silent_since > QUEUE_OUTAGE_SECONDS or status is None:
                        raise gr.Error(f"{exc} The {self.what} may still finish.", print_exception=False) from None
                    self.state = "outage"
                    yield status
                    await asyncio.sleep(1)
                    continue
                except StudioError as exc:
                    raise gr.Error(str(exc), print_exception=False) from None
                silent_since, self.state = None, "done" if status.done else "following"
                if self.progress is not None:
                    self.progress(status.percent / 100, desc=stage_line(status))
                yield status
                if status.done:
                    return
                await asyncio.sleep(self.every)
            self.state = "superseded"
        finally:
            if self.state != "done" and cancel_requested(self.request and self.request.session_hash, began):
                with contextlib.suppress(StudioError):
                    await asyncio.to_thread(self.cancel)


async def present(client: StudioClient, follower: Follower, view: ResultView) -> AsyncIterator[tuple[JobStatus, tuple]]:
    """A tab's outputs as its followed job goes: (status, the view's outputs) whenever
    the status box's text changes (about once a second), the images with the final
    status. The error of a failed job is raised once its line has been shown."""
    shown, status = None, None
    async for status in follower.statuses():
        if follower.state == "outage":
            status = replace(status, stage="the job queue is not answering; waiting for it", eta_seconds=None)
        text = describe(status)
        if text != shown and not status.done:
            shown = text
            yield status, await asyncio.to_thread(view.live, status)
    if follower.state != "done":
        return
    files, error = await outcome(client, status, view.names(status))
    try:
        yield status, view.final(status, files)
    finally:
        discard(follower.item_id)
    if error:
        raise error


async def run_job(client: StudioClient, operation: str, images: Callable[[], dict[str, bytes]],
                  params: dict[str, Any], progress: gr.Progress, request: gr.Request | None, name: str,
                  view: ResultView = ResultView()) -> AsyncIterator[tuple]:
    """A tab's whole handler: yield its outputs and, last, the job id, as the job goes.
    `images()` reads the inputs (a gr.Error, e.g. nothing uploaded, shows in the status
    box too); `name` is what the result downloads as."""
    yield *view.cleared(starting()), None  # the previous result and status go at once
    try:
        job = await submit(client, operation, await intake(images), params, request, name)
    except gr.Error as exc:
        yield *view.cleared(not_started(exc)), None
        raise
    with started(request, operation, job):
        async for _, values in present(client, Follower.job(client, job, request, progress), view):
            yield *values, job


async def latest_of(client: StudioClient, operation: str, request: gr.Request | None, batch: bool = False
                    ) -> str | None:
    """This browser's (or user's) newest job of `operation`, or with `batch` its newest
    batch; None if it has none, or the queue does not answer (the page loads as it is)."""
    owner = owner_of(request)
    try:
        return await asyncio.to_thread(client.latest_job, owner, operation, batch) if owner else None
    except StudioError:
        return None


async def resume(client: StudioClient, operation: str, view: ResultView, request: gr.Request | None
                 ) -> AsyncIterator[tuple]:
    """On page load: the tab's latest job of this browser (or user), followed where it
    stands, or shown as it ended; yields the tab's outputs, the job id and the Cancel
    button (usable while the job is live). Nothing if the page has no job on this tab."""
    latest = await latest_of(client, operation, request)
    if latest is None:
        return
    with contextlib.suppress(gr.Error):  # a failed job's reason is in its status line
        found = Follower.job(client, latest, request, give_way=True, place=operation)
        async for status, values in present(client, found, view):
            yield *values, latest, gr.Button(interactive=not status.done)


async def outcome(client: StudioClient, status: JobStatus, names: list[str]) -> tuple[list[str], gr.Error | None]:
    """The ended job's images as files (see `result_files`), or the error to raise
    once the status line saying why has been shown."""
    try:
        return await asyncio.to_thread(result_files, client, status, names), None
    except gr.Error as exc:
        return [], exc


def result_files(client: StudioClient, status: JobStatus, names: list[str]) -> list[str]:
    """The finished job's images written as `<name>.png` (or .jpg) files (one name per image; the
    last name is numbered when there are more images), [] if it was cancelled, or a
    gr.Error saying why there are none."""
    if status.state == "cancelled":
        return []
    if status.state != "succeeded":
        raise gr.Error(status.error or f"The job {status.state}.", print_exception=False)
    try:
        images = client.results(status.id)
    except StudioError as exc:
        raise gr.Error(str(exc), print_exception=False) from None
    folder = RESULTS / status.id
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, data in enumerate(images):
        name = names[index] if index < len(names) else f"{names[-1]}-{index + 1}"
        path = folder / f"{name}{file_extension(data)}"
        path.write_bytes(data)
        paths.append(str(path))
    return paths


def discard(job_id: str) -> None:
    """Remove the job's result files once Gradio has copied them into its cache."""
    shutil.rmtree(RESULTS / job_id, ignore_errors=True)


def cancel(client: StudioClient, job_id: str | None) -> None:
    """Ask the job to stop; the handler following it shows "Cancelled" when it has."""
    if not job_id:
        return
    try:
        client.cancel(job_id)
    except StudioError as exc:
        gr.Warning(str(exc))


def stage_line(status: JobStatus) -> str:
    line = status.stage
    if status.eta_seconds is not None and not status.done:
        line += f" · about {duration(status.eta_seconds)} left"
    return line


def starting() -> str:
    return _box(None, "<b>Submitting</b>…")


def not_started(error: gr.Error) -> str:
    return _box(None, f"<b>Not started:</b> {_e(error.message)}")


def describe(status: JobStatus) -> str:
    """HTML for the status box under a tab's result: one progress bar while the job is
    queued or running (elapsed time counted from submit), then how it ended."""
    if status.state == "succeeded":
        text = f"<b>Done</b> in {duration(status.run_seconds or 0)} · engine <b>{_e(status.engine)}</b>"
        if status.detail:
            text += f" · {_e(status.detail)}"
        return _box(None, text, status)
    if status.state == "failed":
        return _box(None, f"<b>Failed:</b> {_e(status.error)}", status)
    if status.state == "cancelled":
        return _box(None, f"<b>Cancelled</b> ({_e(status.stage)})", status)
    elapsed = f"{duration(max(0.0, time.time() - status.submitted_at), whole=True)} since submit"
    if status.state == "queued":
        return _box(None, f"<b>Queued</b> · {_e(stage_line(status))} · {elapsed}", status, bar=True)
    return _box(status.percent, f"<b>Running</b> {status.percent:.0f} % · {_e(stage_line(status))} · {elapsed}",
                status, bar=True)


def _box(percent: float | None, text: str, status: JobStatus | None = None, bar: bool = False) -> str:
    parts = []
    if bar:  # no value: the browser's indeterminate bar (queued)
        value = "" if percent is None else f' value="{percent:.0f}"'
        parts.append(f'<progress class="studio-bar" max="100"{value}></progress>')
    parts.append(f'<div class="studio-line">{text}</div>')
    if status is not None:
        parts += [f'<div class="studio-note">{_e(note)}</div>' for note in status.notes]
        parts.append(f'<div class="studio-job">job {status.id}</div>')
    return "\n".join(parts)


def _e(text: str | None) -> str:
    return html.escape(text or "")


def duration(seconds: float, whole: bool = False) -> str:
    """Reads 4.2 s (whole: 4 s), 2 min 5 s, 1 h, 1 h 30 min."""
    if seconds < 59.5:
        return f"{seconds:.0f} s" if whole else f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes >= 60:
        hours, minutes = divmod(minutes, 60)
        return f"{hours} h" + (f" {minutes} min" if minutes else "")
    return f"{minutes} min" + (f" {rest} s" if rest else "")
