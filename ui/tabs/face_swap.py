"""Face swap tab: faces are found (and numbered) as soon as a photo is uploaded;
pick the source face and the target faces, then swap."""
from __future__ import annotations

from typing import Any

import gradio as gr
from PIL import Image

from pipelines.face_swap import DETECT_FACES, FACE_SWAP
from tasks.client import StudioClient
from ui import batch, examples, jobs, panel


def render(client: StudioClient) -> panel.TabParts:
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
            engines = panel.engine_dropdown(client, "face-swap", FACE_SWAP,
                                            "Auto (insightface if present, else face mesh)")
            engine = engines.component
            with gr.Row():
                source_face = gr.Dropdown([1], value=1, label="Source face")
                chosen = gr.CheckboxGroup([], label="Target faces to replace (none ticked = all)",
                                          elem_id="face-swap-target-faces")
            color_correct = gr.Checkbox(True, label="Match the target's skin tone (face mesh engine)")
            enhance = gr.Slider(0, 1, value=1, step=0.05, label="Face enhancer strength (GFPGAN 1.4, after the "
                                "insightface swap; 0 = off)", elem_id="face-swap-enhance")
            run, stop = panel.buttons("Swap faces")
            with gr.Accordion("Batch: the source face into many target photos", open=False) as batch_box:
                targets = batch.photos_input("face-swap", "Target photos (image files, or a .zip of them)")
                batch_panel = gr.Column()
        with gr.Column():
            result, info = panel.result_view("face-swap")

    async def detect_faces(photo: dict[str, Any] | None, engine: str, request: gr.Request | None,
                           progress: gr.Progress):
        """Numbered faces of one photo, and the face numbers to choose from."""
        if not photo:
            return None, []
        images = {"image": jobs.read_upload(photo, "a photo")}
        job = await jobs.submit(client, DETECT_FACES.name, images, {"engine": engine}, request, in_history=False)
        async for status in jobs.follow(client, job, progress, request):
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

    source.change(on_source, [source, engine, wanted_source], [source_faces, source_face, wanted_source],
                  preprocess=False, concurrency_limit=None, api_name="detect_source_faces")
    target.change(on_target, [target, engine, wanted_targets], [target_faces, chosen, wanted_targets],
                  preprocess=False, concurrency_limit=None, api_name="detect_target_faces")

    async def face_swap(source: dict[str, Any] | None, target: dict[str, Any] | None, engine: str | None = None,
                        source_face: int | None = None, target_faces: list[int] | None = None,
                        color_correct: bool | None = None, enhance: float | None = None,
                        request: gr.Request = None, progress: gr.Progress = gr.Progress()):
        def images() -> dict[str, bytes]:
            return {"source": jobs.read_upload(source, "a source photo"),
                    "target": jobs.read_upload(target, "a target photo")}

        params = {"engine": engine, "source_face": source_face, "target_faces": target_faces,
                  "color_correct": color_correct, "enhance": enhance}
        async for update in jobs.run_job(client, FACE_SWAP.name, images, params, progress, request,
                                         f"{jobs.upload_stem(target)}-faceswap"):
            yield update

    async def face_swap_batch(source: dict[str, Any] | None, targets: list[dict[str, Any]] | None,
                              engine: str | None = None, source_face: int | None = None,
                              color_correct: bool | None = None, enhance: float | None = None,
                              request: gr.Request = None):
        """Every face of each target (the target face numbers differ from photo to photo)."""
        params = {"engine": engine, "source_face": source_face, "color_correct": color_correct, "enhance": enhance}

        def read() -> batch.Batch:
            shared = {"source": jobs.read_upload(source, "a source photo")}
            return batch.photo_batch(client, targets, "target", params, "faceswap", shared)

        async for update in batch.run_batch(client, FACE_SWAP.name, read, request):
            yield update

    with batch_panel:
        batch_resume = batch.panel(client, face_swap_batch,
                                   [source, targets, engine, source_face, color_correct, enhance], FACE_SWAP.name,
                                   batch_box)
    fields = {"engine": engine, "source_face": source_face, "target_faces": chosen, "color_correct": color_correct,
              "enhance": enhance}
    resume = panel.wire(client, face_swap, [source, target, *fields.values()], [result, info], run, stop,
                        api_name="face_swap", operation=FACE_SWAP.name)
    refill = {**fields, "source_face": wanted_source, "target_faces": wanted_targets}  # see on_source, on_target
    return panel.TabParts(FACE_SWAP.name, [engines], [resume, batch_resume], refill,
                          {"source": source, "target": target})
