"""Remove background tab: photo in, cut-out (or mask, or new background) out."""
from __future__ import annotations

from typing import Any

import gradio as gr

from pipelines.catalogue import OPERATIONS
from tasks.client import StudioClient
from ui import jobs

OPERATION = OPERATIONS["remove_background"]
OUTPUTS = [("Transparent PNG", "transparent"), ("Mask", "mask"), ("Solid colour", "color")]


def render(client: StudioClient) -> None:
    engines = [("Auto (best available)", "auto")] + [(e.label, name) for name, e in OPERATION.engines.items()]
    with gr.Row():
        with gr.Column():
            image = gr.Image(label="Photo", type="filepath", image_mode=None, sources=["upload", "clipboard"])
            engine = gr.Dropdown(engines, value="auto", label="Engine / model")
            output = gr.Radio(OUTPUTS, value="transparent", label="Output")
            color = gr.ColorPicker("#ffffff", label="Background colour (for Solid colour)")
            with gr.Row():
                run = gr.Button("Remove background", variant="primary")
                stop = gr.Button("Cancel", variant="stop")
        with gr.Column():
            result = gr.Image(label="Result", type="pil", format="png", interactive=False, buttons=["download", "fullscreen"], elem_id="remove-background-result")
            info = gr.Markdown(elem_id="remove-background-status")
    job_id = gr.State()

    async def remove_background(photo: dict[str, Any] | None, engine: str, output: str, color: str,
                                progress: gr.Progress = gr.Progress()):
        params = {"engine": engine, "output": output, "color": color}
        job = jobs.submit(client, OPERATION.name, {"image": jobs.read_upload(photo, "a photo")}, params)
        yield None, "Submitted", job
        async for status in jobs.follow(client, job, progress):
            yield gr.skip(), jobs.describe(status), job
        yield jobs.result_images(client, status)[0], jobs.describe(status), job

    running = run.click(remove_background, [image, engine, output, color], [result, info, job_id],
                        api_name="remove_background", preprocess=False, concurrency_limit=None)
    stop.click(lambda job: jobs.cancel(client, job), job_id, info, cancels=[running], api_visibility="private")
