"""Stable Diffusion img2img with style prompt presets (on GPU workers). Here
`strength` is the denoising strength: how far the picture may move from the photo."""
from __future__ import annotations

from typing import Any

from PIL import Image

from pipelines import diffusion
from pipelines.context import RunContext
from pipelines.style_transfer.base import SD_STYLES, StyleEngine, StyleTransferParams


class StableDiffusionImg2ImgEngine(diffusion.UsesDiffusers, StyleEngine):
    name = "sd-img2img"
    label = "Stable Diffusion img2img with a style prompt"
    device = "gpu"
    strength_is_denoising = True

    def load(self) -> None:  # the pipeline depends on the job's model: see diffusion.load_pipeline
        return None

    def stylize(self, model: Any, image: Image.Image, style_image: Image.Image | None,
                params: StyleTransferParams, ctx: RunContext) -> Image.Image:
        import torch

        pipe = diffusion.load_pipeline(params.model, "image2image", ctx.span(0, 20))
        width, height = (side - side % 8 for side in image.size)  # the VAE needs multiples of 8
        # img2img runs int(steps * strength) steps: ask for enough that at least one runs
        steps = max(params.steps, round(1 / params.strength + 0.5))
        prompt = ", ".join(part for part in (SD_STYLES[params.sd_style], params.prompt) if part)
        runs = max(1, int(steps * params.strength))
        (result,) = diffusion.run_steps(
            pipe, steps, ctx.span(20, 100), preview_every=max(1, runs // 4), runs=runs, prompt=prompt,
            image=image.resize((width, height)), strength=params.strength,
            guidance_scale=diffusion.default_guidance(params.model),
            generator=torch.Generator().manual_seed(params.seed))
        return result.resize(image.size, Image.Resampling.LANCZOS)

    def describe(self, params: StyleTransferParams) -> str:
        return f"{params.sd_style} ({params.model}, seed {params.seed})"
