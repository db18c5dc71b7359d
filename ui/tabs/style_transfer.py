"""Style transfer tab: a preset from the gallery, or any picture as the style."""
from __future__ import annotations

from pathlib import Path

import gradio as gr

from pipelines.style_transfer import OPERATION, PRESET_COUNT, PRESET_NAMES
from tasks.client import StudioClient
from ui import batch, examples, form, jobs, panel

THUMBNAILS = Path(__file__).resolve().parent.parent / "assets" / "style_presets"


def images(given: form.Given) -> dict[str, bytes]:
    photos = {"image": jobs.read_upload(given["image"], "a photo")}
    if given["style_image"]:
        photos["style_image"] = jobs.read_upload(given["style_image"], "a style image")
    return photos


def download_name(given: form.Given) -> str:
    preset = not given["style_image"] and given["engine"] in (None, "auto", "neural-preset")
    return f"{jobs.upload_stem(given['image'])}-" + (f"style-{given['preset'] or 0}" if preset else "styled")


def render(client: StudioClient) -> panel.TabParts:
    fields = form.Form(client, OPERATION, "style-transfer")
    with gr.Row():
        with gr.Column():
            image = panel.photo_input(client, "style-transfer-image")
            gr.Examples(examples.rows("cat.jpg", "astronaut.jpg", "rocket.jpg"), [image], label="Try a photo")
            fields.place("engine")
            thumbnails = [(str(THUMBNAILS / f"preset_{i:02d}.webp"), f"{i} · {PRESET_NAMES[i]}")
                          for i in range(PRESET_COUNT)]
            gallery = gr.Gallery(thumbnails, label="Preset styles (click one)", columns=4, height="auto",
                                 allow_preview=False, elem_id="style-transfer-presets")
            fields.place("preset")
            style_image = panel.photo_input(client, "style-transfer-style-image",
                                            "Style image (any painting; used by 'auto' when given)")
            fields.place_rest()
            run, stop = panel.buttons("Apply style", "style-transfer")
            with fields.batch_box("Batch: many photos at once, with these settings"):
                photos = batch.photos_input("style-transfer")
        with gr.Column():
            result, info = panel.result_view("style-transfer")

    def pick_preset(selection: gr.SelectData) -> int:
        return selection.index

    gallery.select(pick_preset, None, fields.fields["preset"], api_visibility="private")

    def photo_batch(given: form.Given, params: dict) -> batch.Batch:
        shared = {"style_image": jobs.read_upload(given["style_image"], "a style image")} \
            if given["style_image"] else {}
        return batch.photo_batch(client, given["photos"], "image", params, "styled", shared)

    photo_inputs = {"image": image, "style_image": style_image}
    batch_resume = fields.batch({"photos": photos, "style_image": style_image}, photo_batch,
                                renamed={"style": "style_image"})
    resume = fields.job(photo_inputs, images, download_name, [result, info], run, stop,
                        renamed={"photo": "image", "style": "style_image"})
    return panel.TabParts(OPERATION.name, fields.on_load, [resume, batch_resume], fields.fields, photo_inputs)
