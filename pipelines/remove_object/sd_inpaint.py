"""Stable Diffusion inpainting through diffusers (on GPU workers), with an optional prompt."""
from __future__ import annotations

from typing import Any

from PIL import Image

from pipelines import diffusion
from pipelines.context import RunContext
from pipelines.remove_object.base import InpaintEngine, RemoveObjectParams


class StableDiffusionInpaintEngine(diffusion.UsesDiffusers, InpaintEngine):
    name = "sd-inpaint"
    label = "Stable Diffusion inpainting"
    device = "gpu"
    work_size = 512
    min_size = 512  # as IOPaint: SD inpainting was trained at 512 px and blurs smaller crops
    pad_mod = 8

    def load(self) -> None:  # the pipeline depends on the job's model: see diffusion.load_pipeline
        return None

    def inpaint(self, model: Any, image: Image.Image, mask: Image.Image, params: RemoveObjectParams,
                ctx: RunContext) -> Image.Image:
        import torch

        pipe = diffusion.load_pipeline(params.model, "inpaint", ctx.span(0, 20))
        prompt = params.prompt or "background, seamless, natural continuation of the surroundings"
        (result,) = diffusion.run_steps(
            pipe, params.steps, ctx.span(20, 100), preview_every=max(1, params.steps // 4), prompt=prompt,
            image=image, mask_image=mask, width=image.width, height=image.height, strength=1.0,
            guidance_scale=diffusion.default_guidance(params.model),
            generator=torch.Generator().manual_seed(params.seed))
        return result.resize(image.size)
