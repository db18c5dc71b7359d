"""Face swap tab: faces are found (and numbered) as soon as a photo is uploaded;
pick the source face and the target faces, then swap."""
from __future__ import annotations

from typing import Any

import gradio as gr
from PIL import Image

from pipelines.face_swap import DETECT_FACES, FACE_SWAP
from tasks.client import StudioClient
from ui import batch, examples, form, jobs, panel


def render(client: StudioClient) -> panel.TabParts:
    fields = form.Form(client, FACE_SWAP, "face-swap")
    with gr.Row():
        with gr.Column():
            with gr.Row():
                source = panel.photo_input(client, "face-swap-source", "Source photo (the face to use)")
                target = panel.photo_input(client, "face-swap-target", "Target photo")
            gr.Examples(examples.rows(("portrait.jpg", "astronaut.jpg"), ("astronaut.jpg", "group.jpg")),
                        [source, target], label="Try a pair (source, target)")
            with gr.Row():
                source_faces = gr.Image(label="Faces found in the source", interactive=False, type="pil")
                target_faces = gr.Image(label="Faces found in the target", interactive=False, type="pil")
            fields.place("engine")
            engine = fields.fields["engine"]
            with gr.Row():  # the faces found in the photos are the choices
                fields.use("source_face", gr.Dropdown([1], value=1, label="Source face"))
                fields.use("target_faces", gr.CheckboxGroup([], label="Target faces to replace (none ticked = all)",
                                                            elem_id="face-swap-target-faces"))
            fields.place_rest()
            run, stop = panel.buttons("Swap faces", "face-swap")
            with fields.batch_box("Batch: the source face into many target photos"):
                targets = batch.photos_input("face-swap", "Target photos (image files, or a .zip of them)")
        with gr.Column():
            result, info = panel.result_view("face-swap")

    async def detect_faces(photo: dict[str, Any] | None, engine: str, request: gr.Request | None,
                           progress: gr.Progress):
        """Numbered faces of one photo, and the face numbers to choose from."""
        if not photo:
            return None, []
        images = {"image": jobs.read_upload(photo, "a photo")}
        job = await jobs.submit(client, DETECT_FACES.name, images, {"engine": engine}, request, in_history=False)
        async for status in jobs.Follower.job(client, job, request, progress).statuses():
            pass
        files, error = await jobs.outcome(client, status, [f"{jobs.upload_stem(photo)}-faces"])
        if error:
            raise error
        annotated = Image.open(files[0])
        annotated.load()
        jobs.discard(job)
        count = int(status.detail.split()[0]) if status.detail else 0
        if not count:
            gr.Warning("No face was found in this photo.")
        return annotated, list(range(1, count + 1))

    # History's "use again" brings the job's face choices with its photos; the choices a
    # photo's detection sets anew then tick them (the faces it has), once.
    wanted_source, wanted_targets = gr.State(), gr.State()

    async def on_source(photo: dict[str, Any] | None, engine: str, wanted: int | None = None,
                        request: gr.Request = None, progress: gr.Progress = gr.Progress()):
        annotated, numbers = await detect_faces(photo, engine, request, progress)
        value = wanted if wanted in numbers else 1
        return annotated, gr.update(choices=numbers or [1], value=value), wanted if photo is None else None

    async def on_target(photo: dict[str, Any] | None, engine: str, wanted: list[int] | None = None,
                        request: gr.Request = None, progress: gr.Progress = gr.Progress()):
        annotated, numbers = await detect_faces(photo, engine, request, progress)
        value = [number for number in wanted or [] if number in numbers]
        return annotated, gr.update(choices=numbers, value=value), wanted if photo is None else None

    source_face, chosen = fields.fields["source_face"], fields.fields["target_faces"]
    source.change(on_source, [source, engine, wanted_source], [source_faces, source_face, wanted_source],
                  preprocess=False, concurrency_limit=None, api_name="detect_source_faces")
    target.change(on_target, [target, engine, wanted_targets], [target_faces, chosen, wanted_targets],
                  preprocess=False, concurrency_limit=None, api_name="detect_target_faces")

    def images(given: form.Given) -> dict[str, bytes]:
        return {"source": jobs.read_upload(given["source"], "a source photo"),
                "target": jobs.read_upload(given["target"], "a target photo")}

    def target_batch(given: form.Given, params: dict) -> batch.Batch:
        """Every face of each target (the target face numbers differ from photo to photo)."""
        shared = {"source": jobs.read_upload(given["source"], "a source photo")}
        return batch.photo_batch(client, given["targets"], "target", params, "faceswap", shared)

    batch_resume = fields.batch({"source": source, "targets": targets}, target_batch,
                                exclude=("target_faces",))
    resume = fields.job({"source": source, "target": target}, images,
                        lambda given: f"{jobs.upload_stem(given['target'])}-faceswap", [result, info], run, stop)
    refill = {**fields.fields, "source_face": wanted_source, "target_faces": wanted_targets}  # see on_source, on_target
    return panel.TabParts(FACE_SWAP.name, fields.on_load, [resume, batch_resume], refill,
                          {"source": source, "target": target})
