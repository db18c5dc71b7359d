"""The History tab: this browser's jobs (with a login, this user's, from any device),
newest first, live ones updating in place. From it a job's result opens full size and
downloads; "Use again" fills its tab with the same photos and settings; "Send to" puts
the result into another tab's photo; a live job can be cancelled, an ended one deleted.

Everything comes from Redis (the owner's History set, the job records and images, all
with the job TTL): the UI process keeps nothing but small thumbnail files.
"""
from __future__ import annotations

import functools
import io
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import gradio as gr
from PIL import Image, ImageDraw

from pipelines.catalogue import OPERATIONS
from pipelines.errors import StudioError
from pipelines.imaging import file_extension
from tasks.client import HistoryEntry, StudioClient
from ui import jobs, panel

FILES = Path(tempfile.gettempdir()) / "studio-history"  # thumbnails and photos handed to Gradio
THUMBNAIL = 256
SHOWN = 50  # newest jobs listed
REFRESH_SECONDS = 2.0


@dataclass(frozen=True)
class Destination:
    """An operation's tab, and the parts of it "use again" and "send to" fill."""

    tab: gr.Tab
    parts: panel.TabParts

    @property
    def tab_id(self) -> str:
        return str(self.tab.id)

    @property
    def title(self) -> str:
        return str(self.tab.label)


def caption(entry: HistoryEntry) -> str:
    status = entry.status
    state = {"succeeded": "done", "running": f"running {status.percent:.0f} %"}.get(status.state, status.state)
    text = f"{OPERATIONS[status.operation].title} · {state}"
    return text + (f" · {status.run_seconds:.1f} s" if status.run_seconds and status.done else "")


def changed_settings(entry: HistoryEntry) -> str:
    """The job's parameters that differ from the operation's defaults ("key parameters")."""
    defaults = OPERATIONS[entry.status.operation].params().model_dump()
    shown = [f"{name.replace('_', ' ')} {value}" for name, value in entry.params.items()
             if value not in (None, "", []) and value != defaults.get(name)]
    return ", ".join(shown) or "the defaults"


def details(entry: HistoryEntry | None) -> str:
    if entry is None:
        return "Pick a job above to see it here."
    status = entry.status
    ago = max(0.0, time.time() - status.submitted_at)
    lines = [f"**{OPERATIONS[status.operation].title}** · submitted {jobs.duration(ago, whole=True)} ago",
             f"Settings: {changed_settings(entry)}",
             f"State: {jobs.stage_line(status) if not status.done else status.state}"
             + (f" · engine {status.engine}" if status.engine else "")
             + (f" · ran {status.run_seconds:.1f} s" if status.run_seconds else ""),
             f"Kept for another {jobs.duration(entry.expires_in, whole=True)}, then removed."]
    if status.error:
        lines.insert(3, f"Why: {status.error}")
    return "  \n".join(lines)


def thumbnail(client: StudioClient, entry: HistoryEntry, owner: str) -> str:
    """A small picture of the job: its result, else its photo, else a card with its state.
    Written once per job and state, under FILES."""
    status = entry.status
    path = FILES / status.id / f"thumbnail-{status.state}.webp"
    if path.exists():
        return str(path)
    data = None
    try:
        if status.state == "succeeded" and status.outputs:
            data = client.results(status.id)[0]
        elif entry.inputs:
            data = client.inputs(status.id, owner)[entry.inputs[0]]
    except StudioError:
        data = None
    if data:
        picture = Image.open(io.BytesIO(data))
        picture.thumbnail((THUMBNAIL, THUMBNAIL))
    else:
        picture = Image.new("RGB", (THUMBNAIL, THUMBNAIL), "#e5e7eb")
        ImageDraw.Draw(picture).text((16, THUMBNAIL // 2 - 8), caption(entry), fill="#111827")
    path.parent.mkdir(parents=True, exist_ok=True)
    picture.save(path, "WEBP", quality=80)
    return str(path)


def write_file(job_id: str, name: str, data: bytes) -> str:
    """An image of the job as a file Gradio can serve (it copies it into its cache)."""
    path = FILES / job_id / f"{name}{file_extension(data)}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return str(path)


def photo_value(component: gr.components.Component, path: str, painted: str | None = None) -> Any:
    """What a photo control takes: a file, or for the Remove object editor its background
    and the `painted` layer (a mask painted in the editor: transparent where not painted)."""
    if isinstance(component, gr.ImageEditor):
        return {"background": path, "layers": [painted] if painted else [], "composite": path}
    return path


def painted_layer(data: bytes | None) -> bool:
    """Whether a mask is the editor's painted layer, not a black-and-white mask file."""
    if not data:
        return False
    with Image.open(io.BytesIO(data)) as image:
        return image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info


def in_words(handler: Callable) -> Callable:
    """A History handler whose queue errors (Redis down, a job gone) reach the page as a message."""

    @functools.wraps(handler)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return handler(*args, **kwargs)
        except StudioError as exc:
            raise gr.Error(str(exc), print_exception=False) from None

    return wrapper


def prune(older_than: float) -> None:
    """Drop the files of jobs not looked at for `older_than` seconds (their records are gone)."""
    now = time.time()
    for folder in FILES.glob("*") if FILES.is_dir() else []:
        if now - folder.stat().st_mtime > older_than:
            shutil.rmtree(folder, ignore_errors=True)


class History:
    """The History tab (laid out inside `own_tab`): one method per action, wired to its
    controls. It refreshes itself every REFRESH_SECONDS while it is the tab on screen."""

    def __init__(self, client: StudioClient, own_tab: gr.Tab, tabs: gr.Tabs, destinations: list[Destination]):
        self.client, self.tabs = client, tabs
        self.by_id = {d.tab_id: d for d in destinations}
        self.by_operation = {d.parts.operation: d for d in destinations}
        gr.Markdown("This browser's jobs (with a login: yours, from any device), newest first. "
                    f"Results are kept for {jobs.duration(client.settings.job_ttl, whole=True)} after they end.")
        self.gallery = gr.Gallery(label="Jobs", columns=6, height=340, allow_preview=False, format="webp",
                                  elem_id="history-jobs", elem_classes=["studio-thumbs"])
        with gr.Row():
            with gr.Column():
                picked = gr.Image(type="filepath", format="png", interactive=False, visible=False)
                panel.screen_view(picked, "history")
            with gr.Column():
                about = gr.Markdown(details(None), elem_id="history-details")
                self.again = gr.Button("Use again", variant="primary", interactive=False)
                with gr.Row():
                    targets = [(f"{d.title} · {name.replace('_', ' ')}", f"{d.tab_id}/{name}")
                               for d in destinations for name in d.parts.photos]
                    self.target = gr.Dropdown(targets, value=targets[0][1], label="Send the result to", scale=3)
                    self.send = gr.Button("Send", interactive=False, scale=1)
                with gr.Row():
                    self.cancel = gr.Button("Cancel job", variant="stop", interactive=False)
                    self.delete = gr.Button("Delete", interactive=False)
        self.panel = [picked, about, self.again, self.send, self.cancel, self.delete]
        self.listed = gr.State([])  # job ids in the gallery's order
        self.drawn = gr.State(None)  # what the gallery last showed: (id, state, percent) per job
        self.selected = gr.State(None)
        self.timer = gr.Timer(REFRESH_SECONDS, active=False)
        self._wire(own_tab, destinations)

    def _wire(self, own_tab: gr.Tab, destinations: list[Destination]) -> None:
        refreshed = [self.gallery, self.listed, self.drawn, *self.panel]
        quiet = {"show_progress": "hidden", "api_visibility": "private"}
        self.timer.tick(self.refresh, [self.drawn, self.selected], refreshed, **quiet)
        self.gallery.select(self.pick, self.listed, [self.selected, *self.panel], **quiet)
        photos = [c for d in destinations for c in d.parts.photos.values()]
        fillable = [self.tabs, *photos] + [c for d in destinations for c in d.parts.fields.values()]
        # the job's tab loses its photos first, so each one "use again" brings is a change
        # (Face swap finds its faces anew, then ticks the job's)
        self.again.click(self.clear_photos, self.selected, photos, api_visibility="private").then(
            self.use_again, self.selected, fillable, api_visibility="private")
        self.send.click(self.send_to, [self.selected, self.target], [self.tabs, *photos], api_visibility="private")
        self.cancel.click(self.cancel_job, self.selected, None, api_visibility="private").then(
            self.refresh, [self.drawn, self.selected], refreshed, **quiet)
        self.delete.click(self.delete_job, self.selected, [self.selected, *self.panel], api_visibility="private").then(
            self.refresh, [gr.State(None), self.selected], refreshed, **quiet)
        own_tab.select(self.opened, self.selected, [self.timer, *refreshed], **quiet)
        for destination in destinations:
            destination.tab.select(lambda: gr.Timer(active=False), None, self.timer, **quiet)

    def entries_of(self, request: gr.Request) -> list[HistoryEntry]:
        owner = jobs.owner_of(request)
        return self.client.history(owner, SHOWN) if owner else []

    def entry_of(self, job: str | None, request: gr.Request) -> HistoryEntry | None:
        """The page's own job `job`, as its History lists it (None if it is not there)."""
        return next((e for e in self.entries_of(request) if e.status.id == job), None)

    def show(self, entry: HistoryEntry | None) -> list[Any]:
        """The picked job's panel: its result, its details, and which buttons apply."""
        if entry is None:
            return [None, details(None)] + [gr.Button(interactive=False)] * 4
        status = entry.status
        image = None
        if status.state == "succeeded":
            try:
                image = write_file(status.id, status.name or status.operation.replace("_", "-"),
                                   self.client.results(status.id)[0])
            except StudioError as exc:
                gr.Warning(str(exc))
        reusable = bool(entry.inputs) or not OPERATIONS[status.operation].all_inputs
        return [image, details(entry), gr.Button(interactive=reusable),
                gr.Button(interactive=status.state == "succeeded"), gr.Button(interactive=not status.done),
                gr.Button(interactive=status.done)]

    def refresh(self, last_drawn: Any, job: str | None, request: gr.Request) -> list[Any]:
        """Redraw the list when something in it changed, and the picked job's panel."""
        try:
            entries = self.entries_of(request)
        except StudioError as exc:
            gr.Warning(str(exc))
            return [gr.skip()] * (3 + len(self.panel))
        signature = [(e.status.id, e.status.state, round(e.status.percent)) for e in entries]
        current = next((e for e in entries if e.status.id == job), None)
        if signature == last_drawn:
            live = current is not None and not current.status.done
            return [gr.skip()] * 3 + (self.show(current) if live else [gr.skip()] * len(self.panel))
        owner = jobs.owner_of(request) or ""
        items = [(thumbnail(self.client, e, owner), caption(e)) for e in entries]
        return [items, [e.status.id for e in entries], signature] + self.show(current)

    def opened(self, job: str | None, request: gr.Request) -> list[Any]:
        prune(self.client.settings.job_ttl)
        return [gr.Timer(active=True)] + self.refresh(None, job, request)

    @in_words
    def pick(self, ids: list[str], selection: gr.SelectData, request: gr.Request) -> list[Any]:
        job = ids[selection.index] if selection.index < len(ids) else None
        return [job] + self.show(self.entry_of(job, request))

    @in_words
    def clear_photos(self, job: str | None, request: gr.Request) -> dict:
        entry = self.entry_of(job, request)
        return {component: None for component in self.by_operation[entry.status.operation].parts.photos.values()} \
            if entry else {}

    @in_words
    def use_again(self, job: str | None, request: gr.Request) -> dict:
        """The job's tab, filled with its photos and settings."""
        entry = self.entry_of(job, request)
        if entry is None:
            raise gr.Error("That job is gone (deleted, or its time was up).")
        destination = self.by_operation[entry.status.operation]
        photos = self.client.inputs(job, jobs.owner_of(request)) if entry.inputs else {}
        update: dict = {self.tabs: gr.Tabs(selected=destination.tab_id)}
        for name, component in destination.parts.fields.items():
            if name in entry.params:
                update[component] = entry.params[name]
        mask = photos.get("mask")
        painted = write_file(job, "in-mask", mask) if painted_layer(mask) else None
        for name, component in destination.parts.photos.items():
            update[component] = photo_value(component, write_file(job, f"in-{name}", photos[name]), painted) \
                if name in photos else None
        return update

    @in_words
    def send_to(self, job: str | None, where: str, request: gr.Request) -> dict:
        entry = self.entry_of(job, request)
        if entry is None or entry.status.state != "succeeded":
            raise gr.Error("Only a finished job's result can be sent to another tab.")
        tab_id, name = where.split("/", 1)
        component = self.by_id[tab_id].parts.photos[name]
        path = write_file(job, entry.status.name or "result", self.client.results(job)[0])
        return {self.tabs: gr.Tabs(selected=tab_id), component: photo_value(component, path)}

    @in_words
    def cancel_job(self, job: str | None, request: gr.Request) -> None:
        self.client.cancel(job or "", jobs.owner_of(request))

    @in_words
    def delete_job(self, job: str | None, request: gr.Request) -> list[Any]:
        self.client.delete(job or "", jobs.owner_of(request))
        shutil.rmtree(FILES / (job or "none"), ignore_errors=True)
        return [None] + self.show(None)
