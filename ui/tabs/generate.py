"""Generate tab: prompt in, images out, with live previews and reusable seeds."""
from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image

from pipelines.diffusion import PRESETS, diffusers_folder
from pipelines.errors import StudioError
from pipelines.generate import OPERATION, parse_parameters
from tasks.client import JobStatus, StudioClient
from ui import batch, form, jobs, panel

FIELDS = ["prompt", "negative_prompt", "model", "steps", "guidance", "width", "height", "seed"]
SUGGESTED = {"sd-turbo": (4, 0.0, 512), "sdxl-turbo": (4, 0.0, 512), "sd-1.5": (25, 7.5, 512)}  # steps, guidance, size


def suggested_settings(model: str) -> list[Any]:
    """Steps, guidance and size that suit a preset model; other models keep the form's values."""
    if model not in SUGGESTED:
        return [gr.skip()] * 4
    steps, guidance, size = SUGGESTED[model]
    return [steps, guidance, size, size]


def seed_of(status: JobStatus) -> int | None:
    """The first image's seed, from the job's detail line ("<model>, seed N")."""
    found = re.search(r"seed (\d+)$", status.detail or "")
    return int(found.group(1)) if found else None


class GenerateView(jobs.ResultView):
    """Generate shows the latest preview while the job runs, then a gallery and the seed."""

    def __init__(self, client: StudioClient):
        self.client = client

    def cleared(self, status_html: str) -> tuple:
        return None, [], None, status_html

    def live(self, status: JobStatus) -> tuple:
        data = self.client.preview(status.id) if status.preview_version else None
        return (Image.open(io.BytesIO(data)) if data else gr.skip()), gr.skip(), gr.skip(), jobs.describe(status)

    def final(self, status: JobStatus, files: list[str]) -> tuple:
        return gr.skip(), files, seed_of(status), jobs.describe(status)

    def names(self, status: JobStatus) -> list[str]:
        first_seed = seed_of(status)
        return [f"generate-{first_seed + i}" for i in range(max(status.outputs, 1))] if first_seed is not None \
            else ["generate"]


def prompt_batch(client: StudioClient, prompts: str | None, seeds: str | None, params: dict[str, Any]) -> batch.Batch:
    """One job per prompt and seed: every line of `prompts` with every seed of `seeds`."""
    lines = [line.strip() for line in (prompts or "").splitlines() if line.strip()]
    if not lines:
        raise gr.Error("Write some prompts first, one per line.", print_exception=False)
    most = client.settings.max_jobs_per_owner
    pieces = (seeds or "").replace(";", ",").split(",", most)  # counted before any is read
    if len(pieces) > most:
        raise gr.Error(f"A batch takes at most {most} seeds.", print_exception=False)
    try:
        numbers = [int(seed) for seed in pieces if seed.strip()]
    except ValueError:
        raise gr.Error("Seeds are whole numbers separated by commas, e.g. 1, 2, 3.", print_exception=False) \
            from None
    numbers = numbers or [params.get("seed")]
    if len(lines) * len(numbers) > most:
        raise gr.Error(f"{len(lines)} prompts × {len(numbers)} seeds make {len(lines) * len(numbers)} jobs; a batch "
                       f"takes at most {most}.", print_exception=False)
    combos = [(index, line, seed) for index, line in enumerate(lines) for seed in numbers]
    names = [f"prompt-{index + 1}" + (f"-seed-{seed}" if seed not in (None, -1) else "") for index, _, seed in combos]
    return batch.Batch([{} for _ in combos], [{**params, "prompt": line, "seed": seed} for _, line, seed in combos],
                       batch.unique(names))


def model_note(client: StudioClient, model: str | None) -> str:
    """Whether the GPU workers can run `model` now, before anyone presses Generate."""
    model = (model or "").strip()
    try:
        seen = client.availability()
    except StudioError as exc:
        return str(exc)
    if "gpu" not in seen.queues:
        return ("No GPU worker is running: a job waits until one starts "
                "(python launch.py --worker-only --queues gpu).")
    if model in seen.models or PRESETS.get(model) in seen.models:
        return f"{model} is on the GPU workers."
    if "/" not in model and model not in PRESETS:
        return f"{model} is not a folder in the GPU workers' models folder (diffusers/{model})."
    if seen.downloads:
        return f"{model} is not downloaded yet: the first run downloads it (several GB), with its progress shown."
    return (f"{model} is not on the GPU workers, and they are offline: download it where there is internet "
            f"('hf download {PRESETS.get(model, model)}'), or put a diffusers folder in their models folder.")


def model_choices() -> list[str]:
    """Presets, then diffusers folders in this machine's models folder."""
    folder = diffusers_folder()
    local = sorted(p.name for p in folder.iterdir() if (p / "model_index.json").is_file()) if folder.is_dir() else []
    return [name for name in PRESETS if name != "sd-2-inpainting"] + local


def read_png_parameters(payload: dict[str, Any] | None) -> list[Any]:
    """Fill the form from a PNG's "parameters" text (written by this tab, or AUTOMATIC1111).
    The file is a stranger's: Pillow refuses text chunks over 1 MB (ValueError), and
    `parse_parameters` reads the text in linear time."""
    if not payload:
        return [gr.skip()] * len(FIELDS)
    try:
        text = Image.open(Path(payload["path"])).info.get("parameters")
    except (OSError, ValueError):
        text = None
    if not isinstance(text, str) or not text:
        gr.Warning("This image carries no readable generation parameters.")
        return [gr.skip()] * len(FIELDS)
    found = parse_parameters(text)
    return [found.get(name, gr.skip()) for name in FIELDS]


def render(client: StudioClient) -> panel.TabParts:
    fields = form.Form(client, OPERATION, "generate")
    with gr.Row():
        with gr.Column():
            fields.place("prompt", "negative_prompt")
            gr.Examples([["a lighthouse on a cliff at dusk, oil painting"], ["a red fox in fresh snow, photo"],
                         ["a bowl of ramen, studio lighting, 35 mm"]], [fields.fields["prompt"]], label="Try a prompt")
            model = gr.Dropdown(model_choices(), value="sd-turbo", allow_custom_value=True,
                                label="Model (preset, a folder in the models folder, or an allowed Hugging Face id)",
                                elem_id="generate-model")
            fields.use("model", model)
            note = gr.Markdown(model_note(client, "sd-turbo"), elem_id="generate-model-note")
            fields.place("steps", "guidance", "width", "height")
            with gr.Row():  # the seed, with a button that takes the last one
                fields.place("seed")
                reuse = gr.Button("Reuse last seed", size="sm")
                fields.place("num_images")
            fields.place_rest()
            run, stop = panel.buttons("Generate", "generate")
            with fields.batch_box("Batch: several prompts and/or seeds, with these settings"):
                prompts = gr.Textbox(label="Prompts, one per line", lines=4, elem_id="generate-batch-prompts")
                seeds = gr.Textbox(label="Seeds, separated by commas (empty: the Seed above)",
                                   elem_id="generate-batch-seeds")
            dropped = gr.File(label="Read parameters from a PNG", file_types=[".png"], type="filepath",
                              elem_id="generate-png-parameters")
        with gr.Column():
            preview = gr.Image(label="Preview", type="pil", interactive=False, height=256)
            gallery = gr.Gallery(label="Images", format="png", columns=2, elem_id="generate-result",
                                 elem_classes=["studio-result"])
            used_seed = gr.Number(label="Seed used", precision=0, interactive=False)
            info = panel.status_view("generate")

    view = GenerateView(client)
    batch_resume = fields.batch({"prompts": prompts, "seeds": seeds},
                                lambda given, params: prompt_batch(client, given["prompts"], given["seeds"], params),
                                exclude=("prompt",))
    resume = fields.job({}, lambda given: {}, lambda given: "generate", [preview, gallery, used_seed, info], run, stop,
                        view)
    controls = fields.fields
    reuse.click(lambda last: last if last is not None else -1, used_seed, controls["seed"], api_visibility="private")
    model.input(suggested_settings, model, [controls[name] for name in ("steps", "guidance", "width", "height")],
                api_visibility="private")
    model.change(lambda name: model_note(client, name), model, note, api_visibility="private",
                 show_progress="hidden")
    dropped.upload(read_png_parameters, dropped, [controls[name] for name in FIELDS], preprocess=False,
                   api_visibility="private")
    return panel.TabParts(OPERATION.name, [panel.OnLoad(note, lambda: model_note(client, "sd-turbo"))],
                          [resume, batch_resume], controls, {})
