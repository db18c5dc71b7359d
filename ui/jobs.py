"""What every tab does with a job: submit it, follow it with a progress bar,
show its status, hand back its images, and cancel it."""
from __future__ import annotations

import asyncio
import contextlib
import io
from pathlib import Path
from typing import Any, AsyncIterator

import gradio as gr
from PIL import Image

from pipelines.errors import StudioError
from tasks.client import JobStatus, StudioClient

POLL_SECONDS = 0.2


def read_upload(payload: dict[str, Any] | None, what: str) -> bytes:
    """Raw bytes of an uploaded file (events run with preprocess=False, so the
    original file reaches the worker, EXIF and all, and bad files get our message)."""
    if not payload or not payload.get("path"):
        raise gr.Error(f"Please upload {what} first.")
    return Path(payload["path"]).read_bytes()


async def submit(client: StudioClient, operation: str, images: dict[str, bytes], params: dict[str, Any]) -> str:
    """Queue the job (validation decodes the images: off the event loop)."""
    try:
        return await asyncio.to_thread(client.submit, operation, images, params)
    except StudioError as exc:
        raise gr.Error(str(exc), print_exception=False) from None


async def follow(client: StudioClient, job_id: str, progress: gr.Progress) -> AsyncIterator[JobStatus]:
    """Yield the job's status until it ends, keeping the progress bar current.
    If the handler is stopped (Cancel button, closed page, API cancel), the job is cancelled."""
    status = None
    try:
        while True:
            try:
                status = await asyncio.to_thread(client.status, job_id)
            except StudioError as exc:
                raise gr.Error(str(exc), print_exception=False) from None
            progress(status.percent / 100, desc=stage_line(status))
            yield status
            if status.done:
                return
            await asyncio.sleep(POLL_SECONDS)
    finally:
        if status is None or not status.done:
            with contextlib.suppress(StudioError):
                await asyncio.to_thread(client.cancel, job_id)


async def run_job(client: StudioClient, operation: str, images: dict[str, bytes], params: dict[str, Any],
                  progress: gr.Progress) -> AsyncIterator[tuple[Any, str, str]]:
    """A tab's whole handler: submit, then yield (image, status markdown, job id) as the
    job goes, the image being gr.skip() until the result is there."""
    job = await submit(client, operation, images, params)
    yield None, "Submitted", job
    async for status in follow(client, job, progress):
        yield gr.skip(), describe(status), job
    yield result_images(client, status)[0], describe(status), job


def result_images(client: StudioClient, status: JobStatus) -> list[Image.Image]:
    """The finished job's images, or a gr.Error saying why there are none."""
    if status.state != "succeeded":
        raise gr.Error(status.error or f"The job was {status.state}.", print_exception=False)
    try:
        return [Image.open(io.BytesIO(data)) for data in client.results(status.id)]
    except StudioError as exc:
        raise gr.Error(str(exc), print_exception=False) from None


def cancel(client: StudioClient, job_id: str | None) -> str:
    if not job_id:
        return "Nothing is running."
    try:
        return describe(client.cancel(job_id))
    except StudioError as exc:
        return str(exc)


def stage_line(status: JobStatus) -> str:
    line = status.stage
    if status.eta_seconds is not None and not status.done:
        line += f" · about {_duration(status.eta_seconds)} left"
    return line


def describe(status: JobStatus) -> str:
    """Markdown for the status box under a tab's result."""
    if status.state == "succeeded":
        text = f"**Done** in {_duration(status.run_seconds or 0)} · engine **{status.engine}**"
        if status.detail:
            text += f" · {status.detail}"
    elif status.state == "failed":
        text = f"**Failed:** {status.error}"
    elif status.state == "cancelled":
        text = f"**Cancelled** ({status.stage})"
    elif status.state == "queued":
        text = f"**Queued** · {stage_line(status)}"
    else:
        text = f"**Running** {status.percent:.0f} % · {stage_line(status)}"
    notes = "".join(f"\n- {note}" for note in status.notes)
    return f"{text}{notes}\n\n<sub>job {status.id}</sub>"


def _duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 60 else f"{seconds // 60:.0f} min {seconds % 60:.0f} s"
