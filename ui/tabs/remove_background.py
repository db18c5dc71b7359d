"""Remove background tab: photo in, cut-out (or mask, or new background) out."""
from __future__ import annotations

import gradio as gr

from pipelines.remove_background import OPERATION
from tasks.client import StudioClient
from ui import batch, examples, form, jobs, panel

NAMES = {"transparent": "cutout", "mask": "mask", "color": "new-background"}  # download file names


def render(client: StudioClient) -> panel.TabParts:
    fields = form.Form(client, OPERATION, "remove-background")
    with gr.Row():
        with gr.Column():
            image = panel.photo_input(client, "remove-background-image")
            gr.Examples(examples.rows("astronaut.jpg", "cat.jpg", "coffee.jpg"), [image], label="Try a photo")
            fields.place_rest()
            run, stop = panel.buttons("Remove background", "remove-background")
            with fields.batch_box("Batch: many photos at once, with these settings"):
                photos = batch.photos_input("remove-background")
        with gr.Column():
            result, info = panel.result_view("remove-background")

    def download_name(given: form.Given) -> str:
        return f"{jobs.upload_stem(given['image'])}-{NAMES.get(given['output'] or 'transparent')}"

    def photo_batch(given: form.Given, params: dict) -> batch.Batch:
        return batch.photo_batch(client, given["photos"], "image", params, NAMES.get(given["output"] or "transparent"))

    batch_resume = fields.batch({"photos": photos}, photo_batch)
    resume = fields.job({"image": image}, lambda given: {"image": jobs.read_upload(given["image"], "a photo")},
                        download_name, [result, info], run, stop, renamed={"photo": "image"})
    return panel.TabParts(OPERATION.name, fields.on_load, [resume, batch_resume], fields.fields, {"image": image})
