"""Remove object tab: paint over something in the photo, it is gone."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

from pipelines.inpaint import OPERATION
from tasks.client import StudioClient
from ui import examples, jobs, panel


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def inputs_from(editor: dict[str, Any] | None, image_file: str | None, mask_file: str | None) -> dict[str, bytes]:
    """The photo and mask, from the two files when given (API), else from the editor:
    its background is the photo, whatever is painted on its layers is the mask."""
    if image_file:
        if not mask_file:
            raise gr.Error("Give a mask file too (white = remove), or paint on the photo instead.")
        return {"image": Path(image_file).read_bytes(), "mask": Path(mask_file).read_bytes()}
    if not editor or editor.get("background") is None:
        raise gr.Error("Upload a photo, then paint over what should disappear.")
    background: Image.Image = editor["background"]
    painted = np.zeros((background.height, background.width), bool)
    for layer in editor.get("layers") or []:
        painted |= np.asarray(layer.convert("RGBA").resize(background.size))[..., 3] > 0
    return {"image": png(background.convert("RGB")), "mask": png(Image.fromarray(painted.astype(np.uint8) * 255))}


def render(client: StudioClient) -> None:
    engines = [("Auto (LaMa if present, else OpenCV)", "auto")] + [
        (e.label, name) for name, e in OPERATION.engines.items()]
    with gr.Row():
        with gr.Column():
            editor = gr.ImageEditor(label="Photo: paint over what should disappear", type="pil", format="png",
                                    brush=gr.Brush(colors=["#ff3b30"], color_mode="fixed", default_size=30),
                                    eraser=gr.Eraser(default_size=30), layers=False, elem_id="remove-object-editor")
            gr.Examples(examples.rows("coffee.jpg", "rocket.jpg"), [editor], label="Try a photo, then paint on it")
            engine = gr.Dropdown(engines, value="auto", label="Engine")
            with gr.Row():
                dilate = gr.Slider(0, 128, value=8, step=1, label="Grow the mask (px)")
                feather = gr.Slider(0, 64, value=4, step=1, label="Feather the edge (px)")
            with gr.Accordion("Stable Diffusion inpainting (engine sd-inpaint, GPU workers)", open=False):
                prompt = gr.Textbox(label="What should be there instead (optional)")
                with gr.Row():
                    sd_model = gr.Textbox("sd-2-inpainting", label="Model")
                    steps = gr.Slider(1, 150, value=25, step=1, label="Steps")
                    seed = gr.Number(-1, precision=0, label="Seed (-1 = random)")
            with gr.Accordion("Or give the photo and a mask as two files (white = remove)", open=False):
                with gr.Row():
                    image_file = gr.File(label="Photo", type="filepath", file_types=["image"])
                    mask_file = gr.File(label="Mask", type="filepath", file_types=["image"])
            run, stop = panel.buttons("Remove object")
        with gr.Column():
            result, info = panel.result_view("remove-object")

    async def remove_object(editor: dict[str, Any] | None = None, image_file: str | None = None,
                            mask_file: str | None = None, engine: str | None = None, dilate: int | None = None,
                            feather: int | None = None, prompt: str | None = None, sd_model: str | None = None,
                            steps: int | None = None, seed: int | None = None, progress: gr.Progress = gr.Progress()):
        params = {"engine": engine, "dilate": dilate, "feather": feather, "prompt": prompt, "sd_model": sd_model,
                  "steps": steps, "seed": seed}
        name = f"{Path(image_file).stem if image_file else 'photo'}-removed"
        async for update in jobs.run_job(client, OPERATION.name, inputs_from(editor, image_file, mask_file),
                                         params, progress, name):
            yield update

    panel.wire(client, remove_object, [editor, image_file, mask_file, engine, dilate, feather, prompt, sd_model,
                                       steps, seed], [result, info], run, stop, api_name="remove_object",
               preprocess=True)
