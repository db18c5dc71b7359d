"""Remove object tab: paint over something in the photo, it is gone."""
from __future__ import annotations

from typing import Any

import gradio as gr

from pipelines.remove_object import OPERATION
from tasks.client import StudioClient
from ui import examples, jobs, panel


def inputs_from(editor: dict[str, Any] | None, image_file: dict[str, Any] | None,
                mask_file: dict[str, Any] | None) -> dict[str, bytes]:
    """The photo and mask as the files they arrived as, from the two files when given
    (API), else from the editor: its background is the photo, its (one) layer, painted
    where not transparent, is the mask. The event runs with preprocess=False, so nothing
    is decoded in this process: the checks every upload gets (size, megapixels) run at
    submit, and the worker reads the layer's alpha."""
    if image_file:
        if not mask_file:
            raise gr.Error("Give a mask file too (white = remove), or paint on the photo instead.")
        return {"image": jobs.read_upload(image_file, "a photo"), "mask": jobs.read_upload(mask_file, "a mask")}
    if not editor or not editor.get("background"):
        raise gr.Error("Upload a photo, then paint over what should disappear.")
    if not editor.get("layers"):
        raise gr.Error("Paint over what should disappear first.")
    return {"image": jobs.read_upload(editor["background"], "a photo"),
            "mask": jobs.read_upload(editor["layers"][0], "a mask")}


def render(client: StudioClient) -> panel.TabParts:
    with gr.Row():
        with gr.Column():
            editor = gr.ImageEditor(label="Photo: paint over what should disappear", type="filepath", format="png",
                                    brush=gr.Brush(colors=["#ff3b30"], color_mode="fixed", default_size=30),
                                    eraser=gr.Eraser(default_size=30), layers=False, elem_id="remove-object-editor")
            gr.Examples(examples.rows("coffee.jpg", "rocket.jpg"), [editor], label="Try a photo, then paint on it")
            engines = panel.engine_dropdown(client, "remove-object", OPERATION,
                                            "Auto (LaMa or MI-GAN if present, else OpenCV)")
            engine = engines.component
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

    async def remove_object(editor: dict[str, Any] | None = None, image_file: dict[str, Any] | None = None,
                            mask_file: dict[str, Any] | None = None, engine: str | None = None,
                            dilate: int | None = None, feather: int | None = None, prompt: str | None = None,
                            sd_model: str | None = None, steps: int | None = None, seed: int | None = None,
                            request: gr.Request = None, progress: gr.Progress = gr.Progress()):
        params = {"engine": engine, "dilate": dilate, "feather": feather, "prompt": prompt, "sd_model": sd_model,
                  "steps": steps, "seed": seed}
        # the editor keeps no file name (its background is "background.png")
        name = f"{jobs.upload_stem(image_file)}-removed"
        async for update in jobs.run_job(client, OPERATION.name, lambda: inputs_from(editor, image_file, mask_file),
                                         params, progress, request, name):
            yield update

    fields = {"engine": engine, "dilate": dilate, "feather": feather, "prompt": prompt, "sd_model": sd_model,
              "steps": steps, "seed": seed}
    resume = panel.wire(client, remove_object, [editor, image_file, mask_file, *fields.values()], [result, info],
                        run, stop, api_name="remove_object", operation=OPERATION.name)
    return panel.TabParts(OPERATION.name, [engines], [resume], fields, {"image": editor})
