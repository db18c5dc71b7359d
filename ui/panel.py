"""The parts every operation tab has: Run/Cancel buttons, the result with its
status box, and the wiring of a job handler to them."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import gradio as gr

from pipelines.errors import StudioError
from pipelines.imaging import file_summary, screen_copy
from pipelines.registry import AUTO, Engine, Operation
from tasks.client import StudioClient
from ui import jobs

# On a phone the result sits below the form: bring it (its top; the status box follows
# it) into view when Run is pressed, unless it is on screen already.
SCROLL_INTO_VIEW = """() => {
  const result = document.getElementById("ID");
  const rect = result && result.getBoundingClientRect();
  if (rect && (rect.top > window.innerHeight || rect.bottom < 0)) result.scrollIntoView({block: "start"});
}"""


def photo_input(client: StudioClient, key: str, label: str = "Photo") -> gr.Image:
    """An upload whose original file reaches the worker (events use preprocess=False).
    A file that cannot be used is flagged as soon as it is uploaded."""
    image = gr.Image(label=label, type="filepath", image_mode=None, sources=["upload", "clipboard"], elem_id=key)
    image.upload(lambda payload: jobs.check_upload(client, payload), image, None, preprocess=False,
                 concurrency_limit=None, show_progress="hidden", api_visibility="private")
    return image


@dataclass(frozen=True)
class Resume:
    """A page-load handler that shows the tab's latest job (see `jobs.resume`) or batch, and its outputs."""

    handler: Callable
    outputs: list


@dataclass(frozen=True)
class TabParts:
    """What the app needs of a tab besides its layout: what to refresh and resume on page
    load, and its controls by parameter and by input image (History's "use again" and
    "send to" fill them)."""

    operation: str
    on_load: list[OnLoad]
    resumes: list[Resume]
    fields: dict[str, gr.components.Component]
    photos: dict[str, gr.components.Component]


@dataclass(frozen=True)
class OnLoad:
    """A component whose value is worked out anew on each page load (what the workers have)."""

    component: gr.components.Component
    value: Callable[[], Any]


def engine_choices(client: StudioClient, op: Operation, auto_label: str) -> list[tuple[str, str]]:
    """The engine list, each marked with what the running workers have: ready, downloads
    on first use (with the size its label gives), or missing."""
    try:
        seen = client.availability()
    except StudioError:
        return [(auto_label, AUTO)] + [(engine.label, name) for name, engine in op.engines.items()]

    def mark(name: str, engine: Engine) -> str:
        if not seen.queues:
            return "no worker is running"
        if engine.device == "gpu" and "gpu" not in seen.queues and f"{op.name}/{name}" not in seen.engines:
            return "no gpu worker is running"
        if f"{op.name}/{name}" in seen.engines:
            return "ready"
        if not seen.downloads:
            return "not installed (the workers are offline)"
        size = engine.download_note()
        return f"downloads on first use ({size})" if size else "downloads on first use"

    return [(auto_label, AUTO)] + [(f"{engine.label} · {mark(name, engine)}", name)
                                   for name, engine in op.engines.items()]


def engine_dropdown(client: StudioClient, key: str, op: Operation, auto_label: str) -> OnLoad:
    dropdown = gr.Dropdown(engine_choices(client, op, auto_label), value=AUTO, label="Engine", elem_id=f"{key}-engine")
    return OnLoad(dropdown, lambda: gr.Dropdown(choices=engine_choices(client, op, auto_label)))


def buttons(run_label: str, key: str) -> tuple[gr.Button, gr.Button]:
    """Run, and Cancel (only usable while a job of this tab runs)."""
    with gr.Row():
        return (gr.Button(run_label, variant="primary", elem_id=f"{key}-run"),
                gr.Button("Cancel", variant="secondary", interactive=False, elem_id=f"{key}-cancel"))


def status_view(key: str) -> gr.HTML:
    """The status box: a progress bar while the job is queued or running, then how it ended."""
    return gr.HTML(elem_id=f"{key}-status", elem_classes=["studio-status"])


def result_view(key: str) -> tuple[gr.Image, gr.HTML]:
    """The result as the API hands it out, the full file (never drawn, so a page does not
    load 12 megapixels to show them), shown by `screen_view`, and the status box."""
    full = gr.Image(type="filepath", format="png", interactive=False, visible=False, elem_id=f"{key}-full")
    screen_view(full, key)
    return full, status_view(key)


def screen_view(full: gr.Image, key: str) -> None:
    """Shows the image `full` is given at screen size (see `screen_copy`) and offers the
    full file as the download."""
    shown = gr.Image(label="Result", type="filepath", format="webp", interactive=False, buttons=["fullscreen"],
                     elem_id=f"{key}-result", elem_classes=["studio-result"])
    download = gr.DownloadButton("Download", visible=False, size="sm", elem_id=f"{key}-download")
    full.change(show_result, full, [shown, download], preprocess=False, concurrency_limit=None,
                show_progress="hidden", api_visibility="private")


def show_result(payload: dict[str, Any] | None) -> tuple:
    """The screen-sized copy of a result file (the file itself when it is small) and the
    button that downloads the file, labelled with its size and format."""
    path = (payload or {}).get("path")
    if not path:
        return None, gr.DownloadButton(value=None, visible=False)
    small = screen_copy(path)
    shown = path
    if small is not None:
        shown = str(Path(path).with_suffix(".screen.webp"))  # beside it, in Gradio's cache
        Path(shown).write_bytes(small)
    return shown, gr.DownloadButton(f"Download ({file_summary(path)})", value=path, visible=True)


def run_and_cancel(run: gr.Button, stop: gr.Button, handler: Callable, inputs: list, outputs: list, api_name: str,
                   cancel: Callable[..., None]) -> None:
    """Run starts `handler` (its last output is the id of what it runs, a gr.State);
    Cancel, usable while it runs, calls `cancel` with that id."""
    # registered before the handler: a listener added after a generator's on the same
    # trigger did not update the page until the generator ended (Gradio 6.31)
    run.click(lambda: gr.Button(interactive=True), None, stop, queue=False, show_progress="hidden",
              api_visibility="private")
    running = run.click(handler, inputs, outputs, api_name=api_name, preprocess=False, concurrency_limit=None,
                        show_progress="hidden")
    running.then(lambda: gr.Button(interactive=False), None, stop, queue=False, show_progress="hidden",
                 api_visibility="private")
    stop.click(cancel, outputs[-1], None, queue=False, show_progress="hidden", api_visibility="private")


def wire(client: StudioClient, handler: Callable, inputs: list, outputs: list, run: gr.Button, stop: gr.Button,
         api_name: str, operation: str, view: jobs.ResultView = jobs.ResultView()) -> Resume:
    """Run starts `handler`, an async generator yielding values for `outputs` and, last,
    the job id. Cancel asks the job to stop; the handler keeps following it until it has
    (so the page ends on "Cancelled"). Gradio's own progress overlay is hidden: the status
    box carries the one progress bar. Uploads reach the handler as files, undecoded
    (preprocess=False; see `photo_input`). Returns the page-load handler that brings the
    tab's job back after a reload (`view` shows it as `handler` does)."""
    job_id = gr.State()
    run_and_cancel(run, stop, handler, inputs, [*outputs, job_id], api_name,
                   lambda job: jobs.cancel(client, job))
    status = next(output for output in outputs if isinstance(output, gr.HTML))
    result = status.elem_id.removesuffix("-status") + "-result"
    run.click(None, js=SCROLL_INTO_VIEW.replace("ID", result), api_visibility="private")

    return page_load(lambda request: jobs.resume(client, operation, view, request), [*outputs, job_id, stop])


def page_load(found: Callable[[gr.Request], AsyncIterator[tuple]], outputs: list) -> Resume:
    """The page-load handler of `found` (what it yields goes to `outputs`), which leaves
    the outputs as they are when `found` yields nothing."""

    async def handler(request: gr.Request):
        shown = False
        async for values in found(request):
            shown = True
            yield values
        if not shown:  # a generator that yields nothing would blank every output (Cancel's label too)
            yield tuple(gr.skip() for _ in outputs)

    return Resume(handler, outputs)
