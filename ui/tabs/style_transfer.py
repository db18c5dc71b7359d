"""Style transfer tab: a preset from the gallery, or any picture as the style."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from pipelines.catalogue import OPERATIONS
from pipelines.style_transfer import PRESET_COUNT, PRESET_NAMES, SD_STYLES
from tasks.client import StudioClient
from ui import batch, examples, jobs, panel

OPERATION = OPERATIONS["style_transfer"]
THUMBNAILS = Path(__file__).resolve().parent.parent / "assets" / "style_presets"


def render(client: StudioClient) -> panel.TabParts:
    with gr.Row():
        with gr.Column():
            image = panel.photo_input(client, "style-transfer-photo")
            gr.Examples(examples.rows("cat.jpg", "astronaut.jpg", "rocket.jpg"), [image], label="Try a photo")
            engines = panel.engine_dropdown(client, "style-transfer", OPERATION,
                                            "Auto (style image if given, else preset)")
            engine = engines.component
            names = [f"{i} · {PRESET_NAMES[i]}" for i in range(PRESET_COUNT)]
            thumbnails = [(str(THUMBNAILS / f"preset_{i:02d}.webp"), names[i]) for i in range(PRESET_COUNT)]
            gallery = gr.Gallery(thumbnails, label="Preset styles (click one)", columns=4, height="auto",
                                 allow_preview=False, elem_id="style-transfer-presets")
            preset = gr.Dropdown([(name, i) for i, name in enumerate(names)], value=0, label="Preset")
            style_image = panel.photo_input(client, "style-transfer-style",
                                            "Style image (any painting; used by 'auto' when given)")
            with gr.Row():
                strength = gr.Slider(0, 1, value=1, step=0.05, label="Strength (0 = the photo unchanged)")
                max_side = gr.Slider(64, 4096, value=1024, step=32, label="Output size (longest side, px)")
            keep_colors = gr.Checkbox(False, label="Keep the photo's colours")
            with gr.Accordion("Stable Diffusion img2img (engine sd-img2img, runs on GPU workers)", open=False):
                sd_style = gr.Dropdown(list(SD_STYLES), value="oil-painting", label="Style prompt")
                sd_prompt = gr.Textbox(label="Extra prompt words")
                with gr.Row():
                    sd_model = gr.Textbox("sd-turbo", label="Model")
                    steps = gr.Slider(1, 150, value=4, step=1, label="Steps")
                    seed = gr.Number(-1, precision=0, label="Seed (-1 = random)")
            run, stop = panel.buttons("Apply style")
            with gr.Accordion("Batch: many photos at once, with these settings", open=False) as batch_box:
                photos = batch.photos_input("style-transfer")
                batch_panel = gr.Column()
        with gr.Column():
            result, info = panel.result_view("style-transfer")

    def pick_preset(selection: gr.SelectData) -> int:
        return selection.index

    gallery.select(pick_preset, None, preset, api_visibility="private")

    async def style_transfer(photo: dict[str, Any] | None, style: dict[str, Any] | None = None,
                             engine: str | None = None, preset: int | None = None, strength: float | None = None,
                             keep_colors: bool | None = None, max_side: int | None = None,
                             sd_style: str | None = None, sd_prompt: str | None = None, sd_model: str | None = None,
                             steps: int | None = None, seed: int | None = None, request: gr.Request = None,
                             progress: gr.Progress = gr.Progress()):
        def images() -> dict[str, bytes]:
            given = {"image": jobs.read_upload(photo, "a photo")}
            if style:
                given["style_image"] = jobs.read_upload(style, "a style image")
            return given

        params = {"engine": engine, "preset": preset, "strength": strength, "keep_colors": keep_colors,
                  "max_side": max_side, "sd_style": sd_style, "sd_prompt": sd_prompt, "sd_model": sd_model,
                  "steps": steps, "seed": seed}
        which = f"style-{preset or 0}" if not style and engine in (None, "auto", "neural-preset") else "styled"
        async for update in jobs.run_job(client, OPERATION.name, images, params, progress, request,
                                         f"{jobs.upload_stem(photo)}-{which}"):
            yield update

    async def style_transfer_batch(photos: list[dict[str, Any]] | None, style: dict[str, Any] | None = None,
                                   engine: str | None = None, preset: int | None = None,
                                   strength: float | None = None, keep_colors: bool | None = None,
                                   max_side: int | None = None, sd_style: str | None = None,
                                   sd_prompt: str | None = None, sd_model: str | None = None,
                                   steps: int | None = None, seed: int | None = None, request: gr.Request = None):
        params = {"engine": engine, "preset": preset, "strength": strength, "keep_colors": keep_colors,
                  "max_side": max_side, "sd_style": sd_style, "sd_prompt": sd_prompt, "sd_model": sd_model,
                  "steps": steps, "seed": seed}

        def read() -> batch.Batch:
            shared = {"style_image": jobs.read_upload(style, "a style image")} if style else {}
            return batch.photo_batch(client, photos, "image", params, "styled", shared)

        async for update in batch.run_batch(client, OPERATION.name, read, request):
            yield update

    fields = {"engine": engine, "preset": preset, "strength": strength, "keep_colors": keep_colors,
              "max_side": max_side, "sd_style": sd_style, "sd_prompt": sd_prompt, "sd_model": sd_model, "steps": steps,
              "seed": seed}
    with batch_panel:
        batch_resume = batch.panel(client, style_transfer_batch, [photos, style_image, *fields.values()],
                                   OPERATION.name, batch_box)
    resume = panel.wire(client, style_transfer, [image, style_image, *fields.values()], [result, info], run, stop,
                        api_name="style_transfer", operation=OPERATION.name)
    return panel.TabParts(OPERATION.name, [engines], [resume, batch_resume],
                          fields, {"image": image, "style_image": style_image})
