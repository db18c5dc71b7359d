"""Batches on a tab: many photos (files, or a .zip of them) or many prompts at once.

Each item is a job of its own, all queued together and listed in the History; the batch
panel shows an overall bar and each item's state, fills a gallery as items finish, and
ends with one .zip of every result. Cancel stops what has not ended; a page that goes
away leaves the batch running.
"""
from __future__ import annotations

import asyncio
import contextlib
import html
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import gradio as gr

from pipelines.errors import StudioError
from pipelines.imaging import file_extension
from tasks.client import BatchStatus, JobStatus, StudioClient
from ui import jobs
from ui.intake import intake
from ui.panel import Resume, page_load, run_and_cancel

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")
POLL_SECONDS = 0.5
MAX_RATIO = 200  # unpacked / packed size of a photo in a .zip; image formats compress far less


@dataclass(frozen=True)
class Batch:
    """The items of a batch: the images of each job, their parameters, their download names."""

    items: list[dict[str, bytes]]
    params: list[dict[str, Any]]
    names: list[str]


def photos_of(files: list[dict[str, Any]] | None, most: int, largest: int, total: int) -> list[tuple[str, bytes]]:
    """(name, bytes) of each photo given: image files, and the images inside .zip files
    (folders in them too). At most `most` photos, none over `largest` bytes, `total` bytes
    in all, checked before anything is read out of a zip."""
    found: list[tuple[str, bytes]] = []
    for file in files or []:
        path = Path(file["path"])
        name = file.get("orig_name") or path.name
        room = total - sum(len(data) for _, data in found)
        if name.lower().endswith(".zip"):
            found += _zipped_photos(path, most - len(found), largest, room)
        elif path.stat().st_size > room:
            raise _too_much(total)
        else:
            found.append((Path(name).stem, path.read_bytes()))
        if len(found) > most:
            break
    if not found:
        raise gr.Error("Add some photos first (image files, or a .zip of them).", print_exception=False)
    if len(found) > most:
        raise gr.Error(f"A batch takes at most {most} photos.", print_exception=False)
    return found


def _too_much(total: int) -> gr.Error:
    return gr.Error(f"The photos come to more than {total / 2**20:.0f} MB; a batch takes at most that "
                    "(STUDIO_MAX_BATCH_MB).", print_exception=False)


def _zipped_photos(path: Path, room: int, largest: int, bytes_left: int) -> list[tuple[str, bytes]]:
    """The photos in a .zip, judged first by what its directories declare: the entry
    count from the end record (a directory of 600,000 entries takes seconds to parse),
    then each photo's size and compression ratio, and their total. Reading a member
    stops at its declared size (zipfile's own bound), so the totals hold."""
    try:
        entries = declared_entries(path)
        if entries > 3 * room + 50:  # photos, their folders and a Mac's __MACOSX twins
            raise gr.Error(f"The .zip holds {entries} entries; a batch takes at most {room} more photos.",
                           print_exception=False)
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.infolist() if not m.is_dir() and m.filename.lower().endswith(IMAGE_SUFFIXES)
                       and not any(part.startswith((".", "__MACOSX")) for part in Path(m.filename).parts)]
            if len(members) > room:
                raise gr.Error(f"The .zip holds {len(members)} photos; a batch takes at most {room} more.",
                               print_exception=False)
            for member in members:
                if member.file_size > largest:
                    raise gr.Error(f"{member.filename} in the .zip is {member.file_size / 2**20:.0f} MB; the limit "
                                   f"is {largest / 2**20:.0f} MB.", print_exception=False)
                if member.file_size > 2**20 and member.file_size > MAX_RATIO * member.compress_size:
                    raise gr.Error(f"{member.filename} in the .zip unpacks to {member.file_size / 2**20:.0f} MB from "
                                   f"{member.compress_size / 2**10:.0f} KB: not a photo.", print_exception=False)
            if sum(m.file_size for m in members) > bytes_left:
                raise _too_much(bytes_left)
            return [(Path(m.filename).stem, archive.read(m)) for m in members]
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise gr.Error(f"{path.name} is not a readable .zip file ({exc}).", print_exception=False) from None


def declared_entries(path: Path) -> int:
    """How many entries a .zip declares in its end record (or its Zip64 end record), read
    from the file's tail without parsing the directory."""
    with open(path, "rb") as file:
        file.seek(0, 2)
        size = file.tell()
        start = max(0, size - 22 - 65535 - 20)  # the record, its longest comment, the Zip64 locator
        file.seek(start)
        tail = file.read()
        end = tail.rfind(b"PK\x05\x06")
        if end < 0 or len(tail) < end + 22:
            raise zipfile.BadZipFile("no end of central directory")
        entries = int.from_bytes(tail[end + 10:end + 12], "little")
        locator = end - 20
        if entries == 0xFFFF and locator >= 0 and tail[locator:locator + 4] == b"PK\x06\x07":
            file.seek(int.from_bytes(tail[locator + 8:locator + 16], "little") + 32)
            entries = int.from_bytes(file.read(8), "little")
    return entries


def photo_batch(client: StudioClient, files: list[dict[str, Any]] | None, input_name: str, params: dict[str, Any],
                suffix: str, shared: dict[str, bytes] | None = None) -> Batch:
    """One job per photo, as `input_name`, each with the `shared` images (a face swap's
    source) and the same parameters."""
    settings = client.settings
    photos = photos_of(files, settings.max_jobs_per_owner, settings.max_upload_bytes, settings.max_batch_bytes)
    return Batch([{input_name: data, **(shared or {})} for _, data in photos], [params] * len(photos),
                 unique([f"{stem}-{suffix}" for stem, _ in photos]))


def unique(names: list[str]) -> list[str]:
    """The names, numbered where two are the same (two photos called IMG_0001)."""
    seen: dict[str, int] = {}
    result = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        result.append(name if seen[name] == 1 else f"{name}-{seen[name]}")
    return result


def describe(status: BatchStatus, names: list[str]) -> str:
    counts = [f"{status.count('succeeded')} of {len(status.jobs)} done"]
    counts += [f"{status.count(state)} {state}" for state in ("running", "queued", "failed", "cancelled")
               if status.count(state)]
    head = f"<b>{'Batch finished' if status.done else 'Batch'}</b> · {' · '.join(counts)}"
    bar = "" if status.done else f'<progress class="studio-bar" max="100" value="{status.percent:.0f}"></progress>'
    items = "".join(f"<li>{html.escape(name)}: {html.escape(_item_line(job))}</li>"
                    for name, job in zip(names, status.jobs))
    return f'{bar}<div class="studio-line">{head}</div><ol class="studio-items">{items}</ol>' \
           f'<div class="studio-job">batch {status.id}</div>'


def _item_line(job: JobStatus) -> str:
    if job.state == "running":
        return f"running {job.percent:.0f} % · {job.stage}"
    if job.state == "failed":
        return f"failed: {job.error}"
    if job.state == "succeeded":
        return f"done in {job.run_seconds or 0:.1f} s"
    return job.stage if job.state == "queued" else job.state


async def run_batch(client: StudioClient, operation: str, read: Callable[[], Batch], request: gr.Request | None
                    ) -> AsyncIterator[tuple]:
    """A batch handler: yield (status html, gallery, zip file, batch id) as the batch goes."""
    yield jobs.starting(), [], None, None
    try:
        batch = await intake(read)
        batch_id, _ = await intake(client.submit_batch, operation, batch.items, batch.params, None,
                                   jobs.quota_of(request), jobs.owner_of(request), batch.names)
    except (gr.Error, StudioError) as exc:
        message = exc.message if isinstance(exc, gr.Error) else str(exc)
        yield jobs.not_started(gr.Error(message)), [], None, None
        raise gr.Error(message, print_exception=False) from None
    with jobs.started(request, place(operation), batch_id):
        async for _, values in follow(client, operation, batch_id, request):
            yield values


def place(operation: str) -> str:
    """Where a page shows an operation's batch (see `jobs.started`)."""
    return f"{operation} batch"


async def follow(client: StudioClient, operation: str, batch_id: str, request: gr.Request | None,
                 give_way: bool = False) -> AsyncIterator[tuple[BatchStatus, tuple]]:
    """Follow the batch (see `jobs.Follower`): yield (status, (status html, gallery, zip
    file, batch id)) as it goes, the gallery filling as items finish, the zip (named
    after the operation) with the final status. While the queue does not answer, the
    page keeps showing the last state."""
    folder = jobs.RESULTS / batch_id
    files: dict[str, str] = {}  # job id -> its result file, as items finish
    follower = jobs.Follower(lambda: client.batch_status(batch_id), lambda: client.cancel_batch(batch_id), request,
                             place(operation), batch_id, POLL_SECONDS, f"batch (its id is {batch_id})", give_way)
    try:
        async for status in follower.statuses():
            if follower.state == "outage":
                continue
            names = [job.name or f"item-{index + 1}" for index, job in enumerate(status.jobs)]
            for job, name in zip(status.jobs, names):
                if job.state == "succeeded" and job.id not in files:
                    written = await asyncio.to_thread(_write_result, client, job.id, folder, name)
                    files.update({job.id: written} if written else {})
            gallery = [(files[job.id], name) for job, name in zip(status.jobs, names) if job.id in files]
            zip_path = folder / f"{operation.replace('_', '-')}.zip"
            archive = await asyncio.to_thread(_zip, zip_path, list(files.values())) if status.done and files else None
            yield status, (describe(status, names), gallery, archive, batch_id)
    finally:
        jobs.discard(batch_id)


async def resume(client: StudioClient, operation: str, request: gr.Request | None) -> AsyncIterator[tuple]:
    """On page load: this browser's (or user's) latest batch of the operation, followed
    where it stands or shown as it ended; yields the panel's outputs, the batch id, the
    Cancel batch button (usable while it runs) and its accordion, opened. Nothing if the
    page has no batch of this operation."""
    latest = await jobs.latest_of(client, operation, request, batch=True)
    if latest is None:
        return
    with contextlib.suppress(gr.Error):  # e.g. the batch expired in between: the panel stays empty
        async for status, values in follow(client, operation, latest, request, give_way=True):
            yield *values, gr.Button(interactive=not status.done), gr.Accordion(open=True)


def _write_result(client: StudioClient, job_id: str, folder: Path, name: str) -> str | None:
    try:
        data = client.results(job_id)[0]
    except (StudioError, IndexError):
        return None
    path = folder / f"{name}{file_extension(data)}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return str(path)


def _zip(path: Path, files: list[str]) -> str:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:  # PNGs do not compress further
        for file in files:
            archive.write(file, Path(file).name)
    return str(path)


def photos_input(key: str, label: str = "Photos (image files, or a .zip of them)") -> gr.File:
    return gr.File(label=label, file_count="multiple", file_types=["image", ".zip"], type="filepath",
                   elem_id=f"{key}-batch-photos")


def panel(client: StudioClient, handler: Callable, inputs: list, operation: str, box: gr.Accordion) -> Resume:
    """Run batch / Cancel batch, the batch's status, its gallery and its .zip, wired to
    `handler` (see `run_batch`) with `inputs`; inside the tab's batch accordion `box`.
    Returns the page-load handler that brings the latest batch back into it."""
    with gr.Row():
        run = gr.Button("Run batch", variant="primary")
        stop = gr.Button("Cancel batch", variant="secondary", interactive=False)
    key = operation.replace("_", "-")
    info = gr.HTML(elem_id=f"{key}-batch-status", elem_classes=["studio-status"])
    gallery = gr.Gallery(label="Batch results", columns=4, height=340, format="png",
                         elem_id=f"{key}-batch-gallery", elem_classes=["studio-result", "studio-thumbs"])
    archive = gr.File(label="All results (.zip)", interactive=False, elem_id=f"{key}-batch-zip")

    def cancel(batch: str | None, request: gr.Request) -> None:
        if batch:
            try:
                client.cancel_batch(batch, jobs.owner_of(request))
            except StudioError as exc:
                gr.Warning(str(exc))

    batch_id = gr.State()
    run_and_cancel(run, stop, handler, inputs, [info, gallery, archive, batch_id], f"{operation}_batch", cancel)
    return page_load(lambda request: resume(client, operation, request),
                     [info, gallery, archive, batch_id, stop, box])
