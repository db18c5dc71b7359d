"""Stable Diffusion through diffusers, shared by Generate, Style transfer (img2img)
and Remove object (inpainting): which model, on which device, loaded once per
worker, with download progress, per-step progress, previews and cancel.

Models are named by a preset ("sd-turbo"), a Hugging Face id ("owner/name"), or
the name of a diffusers folder inside `<models>/diffusers/`. Users never pass
server paths.
"""
from __future__ import annotations

import os
import random
import re
from pathlib import Path
from typing import Any, Literal

from PIL import Image
from pydantic import AliasChoices, Field

from pipelines.context import RunContext
from pipelines.errors import InvalidInput, StudioError
from pipelines.registry import cached
from pipelines.weights import downloads_allowed, models_home

Task = Literal["text2image", "image2image", "inpaint"]
MAX_SEED = 2**32 - 1

PRESETS = {
    "sd-turbo": "stabilityai/sd-turbo",
    "sdxl-turbo": "stabilityai/sdxl-turbo",
    "sd-1.5": "stable-diffusion-v1-5/stable-diffusion-v1-5",
    "sd-2-inpainting": "stabilityai/stable-diffusion-2-inpainting",
}
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
FOLDER_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*$")
# What `_load` reads of a diffusers repository: the configs, tokenizer files and the
# components' safetensors, not the single-file checkpoints, .bin/.ckpt/ONNX/Flax copies
# or the fp16 variants beside them (`*` matches across folders).
DIFFUSERS_FILES = ["model_index.json", "*/*.json", "*/*.txt", "*/*.model", "*/*.safetensors"]
NOT_LOADED = ["*.fp16.safetensors", "*.non_ema.safetensors", "*.ema.safetensors"]

# Linear maps from the 4 latent channels to RGB, for cheap previews (no VAE decode).
LATENT_RGB = {
    "sd": ([[0.3512, 0.2297, 0.3227], [0.3250, 0.4974, 0.2350], [-0.2829, 0.1762, 0.2721],
            [-0.2120, -0.2616, -0.7177]], [0.0, 0.0, 0.0]),
    "sdxl": ([[0.3651, 0.4232, 0.4341], [-0.2533, -0.0042, 0.1068], [0.1076, 0.1111, -0.0362],
              [-0.3165, -0.2492, -0.2188]], [0.1084, -0.0175, -0.0011]),
}


def diffusers_folder() -> Path:
    return models_home() / "diffusers"


def hub_id_allowed(repo_id: str) -> bool:
    """Whether a visitor may name this Hugging Face id: the presets' always; others only
    those the operator lists in STUDIO_ALLOW_MODELS, or any with STUDIO_ALLOW_ANY_MODEL=1
    (a download fills the models disk, so it is not every visitor's choice)."""
    if repo_id in PRESETS.values() or os.environ.get("STUDIO_ALLOW_ANY_MODEL") == "1":
        return True
    return repo_id in {name.strip() for name in os.environ.get("STUDIO_ALLOW_MODELS", "").split(",")}


def model_field(default: str, engine: str, group: str) -> Any:
    """The `model` parameter of an operation with a Stable Diffusion engine (its old name
    `sd_model` still accepted), in the form's `group`."""
    return Field(default, max_length=200, validation_alias=AliasChoices("model", "sd_model"),
                 description=f"Model for {engine} (as in Generate).",
                 json_schema_extra={"label": "Model", "group": group, "row": "sd"})


def steps_field(default: int, engine: str, group: str) -> Any:
    return Field(default, ge=1, le=150, description=f"Denoising steps for {engine}.",
                 json_schema_extra={"group": group, "row": "sd"})


def seed_field(engine: str, group: str) -> Any:
    return Field(-1, ge=-1, le=MAX_SEED, description=f"Seed for {engine}; -1 picks one.",
                 json_schema_extra={"label": "Seed (-1 = random)", "widget": "number", "group": group, "row": "sd"})


def check_model_name(model: str) -> str:
    """A check fit for a params validator: a preset, a plain folder name (of the models
    folder's diffusers/), or an owner/name id the operator allows."""
    model = model.strip()
    if model in PRESETS or FOLDER_NAME.match(model):
        return model
    if HUB_ID.match(model):
        if hub_id_allowed(model):
            return model
        raise ValueError(f"model {model!r} is not offered on this studio: choose a preset ({', '.join(PRESETS)}) "
                         "or a folder of the models folder (the operator can allow Hugging Face ids with "
                         "STUDIO_ALLOW_MODELS or STUDIO_ALLOW_ANY_MODEL=1)")
    raise ValueError(f"Unknown model {model!r}: use a preset ({', '.join(PRESETS)}), a Hugging Face id like "
                     "owner/name, or the name of a folder in the models folder's diffusers/")


def resolve_model(model: str) -> str:
    """A local folder path or a Hugging Face id for `model`, or InvalidInput."""
    model = model.strip()
    if FOLDER_NAME.match(model) and (diffusers_folder() / model / "model_index.json").is_file():
        return str(diffusers_folder() / model)
    model = PRESETS.get(model, model)
    if HUB_ID.match(model):
        try:
            return check_model_name(model)  # the worker checks too: its own operator's allow-list
        except ValueError as exc:
            raise InvalidInput(f"{str(exc)[0].upper()}{str(exc)[1:]}.") from None
    raise InvalidInput(f"Unknown model {model!r}: use a preset ({', '.join(PRESETS)}), a Hugging Face id "
                       f"like owner/name, or the name of a diffusers folder in {diffusers_folder()}.")


def local_models() -> list[str]:
    """Models this machine can load without a download: presets and allowed ids in the
    Hugging Face cache, and the diffusers folders of the models folder."""
    from huggingface_hub import try_to_load_from_cache

    folder = diffusers_folder()
    found = sorted(p.name for p in folder.iterdir() if (p / "model_index.json").is_file()) if folder.is_dir() else []
    for name, repo_id in PRESETS.items():
        if isinstance(try_to_load_from_cache(repo_id, "model_index.json"), str):
            found += [name, repo_id]
    return found


class UsesDiffusers:
    """Mixed into the engines whose weights are the job's diffusion model: they are
    "ready" only where a model is on disk, and a first use downloads several GB."""

    def weights_present(self) -> bool:
        return bool(local_models())

    def download_note(self) -> str:
        return "2-7 GB per model"


def max_work() -> float:
    """Megapixel-steps one job may take (steps × width × height × images / 10⁶): 256
    allows 50 steps of 4 images at 1024², and refuses 150 steps of 8 at 2048² (5,033)."""
    return float(os.environ.get("STUDIO_MAX_GENERATE_WORK") or 256)


def resolve_seed(seed: int) -> int:
    """The seed to use: the one asked for, or a random one for -1 (it is reported, so reusable)."""
    return seed if seed >= 0 else random.randint(0, MAX_SEED)


def default_guidance(model: str) -> float:
    """Guidance for engines that do not ask for it: none for turbo models (trained without CFG)."""
    return 0.0 if "turbo" in model else 7.5


def device_and_dtype() -> tuple[str, Any]:
    """CUDA with fp16 when present, Apple MPS, else CPU with fp32."""
    import torch

    if torch.cuda.is_available():
        return "cuda", torch.float16
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps", torch.float16
    return "cpu", torch.float32


def load_pipeline(model: str, task: Task, ctx: RunContext) -> Any:
    """The pipeline for `task`, built on the worker's cached weights for `model`
    (img2img and inpaint reuse the text-to-image weights through `from_pipe`)."""
    from diffusers import AutoPipelineForImage2Image, AutoPipelineForInpainting

    source = resolve_model(model)
    base = cached(f"diffusers:{source}", lambda: _load(source, ctx), ctx)
    if task == "text2image":
        return base
    auto = AutoPipelineForImage2Image if task == "image2image" else AutoPipelineForInpainting
    def derive() -> Any:
        pipe = auto.from_pipe(base)
        pipe.set_progress_bar_config(disable=True)
        return pipe

    return cached(f"diffusers:{source}:{task}", derive, ctx)  # evicted with its base (see `cached`)


def _load(source: str, ctx: RunContext) -> Any:
    from diffusers import AutoPipelineForText2Image
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.disable_progress_bar()  # progress goes to the job instead
    folder = model_folder(source, ctx.span(0, 80))
    ctx.progress(80, "loading model")
    device, dtype = device_and_dtype()
    switches = {} if os.environ.get("STUDIO_SD_SAFETY_CHECKER", "1") != "0" else \
        {"safety_checker": None, "requires_safety_checker": False}
    try:
        pipe = AutoPipelineForText2Image.from_pretrained(folder, dtype=dtype, local_files_only=True, **switches)
    except (OSError, ValueError) as exc:
        raise StudioError(f"Model {source} could not be loaded as a diffusers pipeline: {exc}") from None
    if os.environ.get("STUDIO_SD_CPU_OFFLOAD") == "1" and device == "cuda":
        pipe.enable_model_cpu_offload()
    else:
        pipe.to(device)
    if os.environ.get("STUDIO_SD_ATTENTION_SLICING") == "1":
        pipe.enable_attention_slicing()
    pipe.set_progress_bar_config(disable=True)
    return pipe


def model_folder(source: str, ctx: RunContext) -> str:
    """The folder of a resolved model (see `resolve_model`): a local one as it is, a hub id's
    snapshot in the Hugging Face cache, downloaded first when allowed."""
    return source if Path(source).is_dir() else _fetch(source, ctx)


def _fetch(repo_id: str, ctx: RunContext) -> str:
    """The model's snapshot folder in the Hugging Face cache (HF_HOME), downloaded
    first when allowed, with the download reported as progress."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return snapshot_download(repo_id, local_files_only=True)
    except LocalEntryNotFoundError:
        pass
    how = (f"Download it where there is internet with 'hf download {repo_id}' (into HF_HOME), or put a "
           f"diffusers folder (one per model) in {diffusers_folder()} and choose the folder's name as the model.")
    if not downloads_allowed():
        raise StudioError(f"Model {repo_id} is not downloaded and downloads are turned off "
                          f"(HF_HUB_OFFLINE/STUDIO_OFFLINE). {how}")
    try:
        return snapshot_download(repo_id, allow_patterns=DIFFUSERS_FILES, ignore_patterns=NOT_LOADED,
                                 tqdm_class=_progress_bar(ctx, f"downloading {repo_id}"))
    except Exception as exc:  # network, auth (gated models), disk: all end the same way for the user
        raise StudioError(f"Model {repo_id} could not be downloaded ({type(exc).__name__}: {exc}). {how}") from None


def _progress_bar(ctx: RunContext, stage: str) -> type:
    """A tqdm class that reports huggingface_hub's download progress to `ctx`."""
    from tqdm.auto import tqdm

    class Reporter(tqdm):
        def update(self, n: float = 1) -> Any:
            shown = super().update(n)
            if self.total:
                ctx.check_cancelled()
                ctx.progress(100 * self.n / self.total, f"{stage} {100 * self.n / self.total:.0f} %")
            return shown

    return Reporter


def run_steps(pipe: Any, steps: int, ctx: RunContext, preview_every: int = 0, runs: int | None = None,
              **call: Any) -> list[Image.Image]:
    """Call the pipeline, reporting each denoising step, sending a cheap latent
    preview every `preview_every` steps, and stopping between steps on cancel.
    `runs`: how many of the `steps` actually run (img2img and inpainting skip the
    first ones according to their strength). Images the model's safety checker
    blanked are named in a note."""
    total = runs or steps
    kind = "sdxl" if "XL" in type(pipe).__name__ else "sd"

    def on_step(pipeline: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        done = step + 1
        preview = None
        if preview_every and done % preview_every == 0 and done < total:
            preview = latent_preview(tensors["latents"], kind, pipeline.vae_scale_factor)
        ctx.progress(100 * done / total, f"step {done}/{total}", preview)
        if ctx.is_cancelled():
            pipeline._interrupt = True
        return tensors

    output = pipe(num_inference_steps=steps, callback_on_step_end=on_step,
                  callback_on_step_end_tensor_inputs=["latents"], **call)  # out of memory: see tasks.operations
    ctx.check_cancelled()  # the loop stopped early because of a cancel
    flagged = getattr(output, "nsfw_content_detected", None) or []
    for number, blanked in enumerate(flagged, start=1):
        if blanked:
            ctx.note(f"The model's safety checker blanked image {number} of {len(flagged)} (it judged it not safe "
                     "for work). The operator can turn the checker off with STUDIO_SD_SAFETY_CHECKER=0.")
    return output.images


def latent_preview(latents: Any, kind: str, scale: int) -> Image.Image:
    """First image of the batch, latent channels mapped linearly to RGB, enlarged by
    the VAE's scale factor to the output's size."""
    import numpy as np
    import torch

    factors, bias = LATENT_RGB[kind]
    rgb = torch.einsum("chw,cr->hwr", latents[0].float().cpu(), torch.tensor(factors)) + torch.tensor(bias)
    pixels = ((rgb.clamp(-1, 1) + 1) * 127.5).numpy().astype(np.uint8)
    preview = Image.fromarray(pixels)
    return preview.resize((preview.width * scale, preview.height * scale), Image.Resampling.NEAREST)
