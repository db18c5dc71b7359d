"""Remove object tab: paint over something in the photo, it is gone."""
from __future__ import annotations

from typing import Any

import gradio as gr

from pipelines.remove_object import OPERATION
from tasks.client import StudioClient
from ui import examples, form, jobs, panel


def inputs_from(editor: dict[str, Any] | None, image: dict[str, Any] | None,
                mask: dict[str, Any] | None) -> dict[str, bytes]:
    """The photo and mask as the files they arrived as, from the two files when given
    (API), else from the editor: its background is the photo, its (one) layer, painted
    where not transparent, is the mask. The event runs with preprocess=False, so nothing
    is decoded in this process: the checks every upload gets (size, megapixels) run at
    submit, and the worker reads the layer's alpha."""
    if image:
        if not mask:
            raise gr.Error("Give a mask file too (white = remove), or paint on the photo instead.")
        return {"image": jobs.read_upload(image, "a photo"), "mask": jobs.read_upload(mask, "a mask")}
    if not editor or not editor.get("background"):
        raise gr.Error("Upload a photo, then paint over what should disappear.")
    if not editor.get("layers"):
        raise gr.Error("Paint over what should disappear first.")
    return {"image": jobs.read_upload(editor["background"], "a photo"),
            "mask": jobs.read_upload(editor["layers"][0], "a mask")}


def render(client: StudioClient) -> panel.TabParts:
    fields = form.Form(client, OPERATION, "remove-object")
    with gr.Row():
        with gr.Column():
            editor = gr.ImageEditor(label="Photo: paint over what should disappear", type="filepath", format="png",
                                    brush=gr.Brush(colors=["#ff3b30"], color_mode="fixed", default_size=30),
                                    eraser=gr.Eraser(default_size=30), layers=False, elem_id="remove-object-editor")
            gr.Examples(examples.rows("coffee.jpg", "rocket.jpg"), [editor], label="Try a photo, then paint on it")
            fields.place_rest()
            with gr.Accordion("Or give the photo and a mask as two files (white = remove)", open=False):
                with gr.Row():
                    image = gr.File(label="Photo", type="filepath", file_types=["image"], elem_id="remove-object-image")
                    mask = gr.File(label="Mask", type="filepath", file_types=["image"], elem_id="remove-object-mask")
            run, stop = panel.buttons("Remove object", "remove-object")
        with gr.Column():
            result, info = panel.result_view("remove-object")

    def images(given: form.Given) -> dict[str, bytes]:
        return inputs_from(given["editor"], given["image"], given["mask"])

    def download_name(given: form.Given) -> str:
        return f"{jobs.upload_stem(given['image'])}-removed"  # the editor keeps no file name

    resume = fields.job({"editor": editor, "image": image, "mask": mask}, images, download_name, [result, info], run,
                        stop, renamed={"image_file": "image", "mask_file": "mask"})
    return panel.TabParts(OPERATION.name, fields.on_load, [resume], fields.fields, {"image": editor})
