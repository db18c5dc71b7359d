"""Remove background tab: photo in, cut-out (or mask, or new background) out."""
from __future__ import annotations

from typing import Any

import gradio as gr

from pipelines.catalogue import OPERATIONS
from tasks.client import StudioClient
from ui import batch, examples, jobs, panel

OPERATION = OPERATIONS["remove_background"]
OUTPUTS = [("Transparent PNG", "transparent"), ("Mask", "mask"), ("Solid colour", "color")]
NAMES = {"transparent": "cutout", "mask": "mask", "color": "new-background"}  # download file names


def render(client: StudioClient) -> panel.TabParts:
    with gr.Row():
        with gr.Column():
            image = panel.photo_input(client, "remove-background-photo")
            gr.Examples(examples.rows("astronaut.jpg", "cat.jpg", "coffee.jpg"), [image], label="Try a photo")
            engines = panel.engine_dropdown(client, "remove-background", OPERATION, "Auto (best available)")
            engine = engines.component
            output = gr.Radio(OUTPUTS, value="transparent", label="Output")
            color = gr.ColorPicker("#ffffff", label="Background colour (for Solid colour)")
            run, stop = panel.buttons("Remove background")
            with gr.Accordion("Batch: many photos at once, with these settings", open=False) as batch_box:
                photos = batch.photos_input("remove-background")
                batch_panel = gr.Column()
        with gr.Column():
            result, info = panel.result_view("remove-background")

    async def remove_background(photo: dict[str, Any] | None, engine: str | None = None, output: str | None = None,
                                color: str | None = None, request: gr.Request = None,
                                progress: gr.Progress = gr.Progress()):
        params = {"engine": engine, "output": output, "color": color}
        name = f"{jobs.upload_stem(photo)}-{NAMES.get(output or 'transparent')}"
        async for update in jobs.run_job(client, OPERATION.name, lambda: {"image": jobs.read_upload(photo, "a photo")},
                                         params, progress, request, name):
            yield update

    async def remove_background_batch(photos: list[dict[str, Any]] | None, engine: str | None = None,
                                      output: str | None = None, color: str | None = None,
                                      request: gr.Request = None):
        params = {"engine": engine, "output": output, "color": color}
        read = lambda: batch.photo_batch(client, photos, "image", params, NAMES.get(output or "transparent"))  # noqa: E731
        async for update in batch.run_batch(client, OPERATION.name, read, request):
            yield update

    with batch_panel:
        batch_resume = batch.panel(client, remove_background_batch, [photos, engine, output, color], OPERATION.name,
                                   batch_box)
    resume = panel.wire(client, remove_background, [image, engine, output, color], [result, info], run, stop,
                        api_name="remove_background", operation=OPERATION.name)
    return panel.TabParts(OPERATION.name, [engines], [resume, batch_resume],
                          {"engine": engine, "output": output, "color": color},
                          {"image": image})
