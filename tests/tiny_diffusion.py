"""A tiny Stable Diffusion pipeline with random weights, built from configs and
saved as a diffusers folder, so the studio loads it through exactly the code path
a real model takes. It makes noise, not pictures; the tests check the plumbing
(steps, previews, seeds, cancel, metadata), not the art."""
from __future__ import annotations

import json
from pathlib import Path

VOCAB = ["!", "\"", "#", "a", "b", "c", "d", "e", "o", "r", "t", "s", "</w>", "a</w>", "c</w>", "t</w>",
         "ca", "cat</w>", "<|startoftext|>", "<|endoftext|>"]


def build_tiny_pipeline(folder: Path, inpainting: bool = False, strict_checker: bool = False) -> Path:
    """With `inpainting`, the shape of SD's inpainting checkpoints: a 9-channel UNet
    (latents, mask, masked-image latents) and a VAE that scales by 8 like the real one,
    so it runs at SD's 512 px working size in a second. With `strict_checker`, diffusers'
    own safety checker (a tiny CLIP) whose thresholds flag every image, as sd-1.5's
    checker flags some."""
    import torch
    from diffusers import (
        AutoencoderKL,
        StableDiffusionInpaintPipeline,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=1, sample_size=32, in_channels=9 if inpainting else 4,
        out_channels=4, down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=32, attention_head_dim=8,
        norm_num_groups=8)
    blocks = 4 if inpainting else 2
    vae = AutoencoderKL(block_out_channels=(16, 32, 32, 32)[:blocks] if inpainting else (32, 64), in_channels=3,
                        out_channels=3, latent_channels=4, down_block_types=("DownEncoderBlock2D",) * blocks,
                        up_block_types=("UpDecoderBlock2D",) * blocks, norm_num_groups=8)
    checker, features = _strict_checker() if strict_checker else (None, None)
    kind = StableDiffusionInpaintPipeline if inpainting else StableDiffusionPipeline
    pipe = kind(vae=vae, text_encoder=CLIPTextModel(_text_config()), tokenizer=_tokenizer(folder), unet=unet,
                scheduler=_scheduler(), safety_checker=checker, feature_extractor=features,
                requires_safety_checker=strict_checker)
    pipe.save_pretrained(folder)
    return folder


def _strict_checker():
    import torch
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPConfig, CLIPImageProcessor

    tiny = {"hidden_size": 32, "intermediate_size": 37, "num_attention_heads": 4, "num_hidden_layers": 2}
    config = CLIPConfig(text_config={**tiny, "vocab_size": len(VOCAB)}, projection_dim=32,
                        vision_config={**tiny, "image_size": 32, "patch_size": 8})
    checker = StableDiffusionSafetyChecker(config)
    with torch.no_grad():
        checker.concept_embeds_weights.fill_(-2.0)  # cosine - weight > 0 for every image: all flagged
    return checker, CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})


def build_tiny_sdxl(folder: Path) -> Path:
    """A tiny SDXL text-to-image pipeline: two text encoders (the second with a projection),
    a UNet with SDXL's "text_time" conditioning, saved as a diffusers folder like
    sdxl-turbo's."""
    import torch
    from diffusers import AutoencoderKL, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=1, sample_size=32, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4), use_linear_projection=True, addition_embed_type="text_time",
        addition_time_embed_dim=8, transformer_layers_per_block=(1, 1), projection_class_embeddings_input_dim=80,
        cross_attention_dim=64, norm_num_groups=8)
    vae = AutoencoderKL(block_out_channels=(32, 64), in_channels=3, out_channels=3, latent_channels=4,
                        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                        norm_num_groups=8)
    config, tokenizer = _text_config(projection_dim=32), _tokenizer(folder)
    pipe = StableDiffusionXLPipeline(vae=vae, text_encoder=CLIPTextModel(config), tokenizer=tokenizer,
                                     text_encoder_2=CLIPTextModelWithProjection(config), tokenizer_2=tokenizer,
                                     unet=unet, scheduler=_scheduler())
    pipe.save_pretrained(folder)
    return folder


def _text_config(**extra: int):
    """A 2-layer CLIP text model over the tiny vocabulary."""
    from transformers import CLIPTextConfig

    return CLIPTextConfig(bos_token_id=18, eos_token_id=19, pad_token_id=19, hidden_size=32, intermediate_size=37,
                          num_attention_heads=4, num_hidden_layers=2, vocab_size=len(VOCAB), max_position_embeddings=77,
                          **extra)


def _tokenizer(folder: Path):
    """A CLIP tokenizer over the tiny vocabulary, read back through `from_pretrained` (see NOTES)."""
    from transformers import CLIPTokenizer

    source = folder / "_tokenizer_source"
    source.mkdir(parents=True, exist_ok=True)
    (source / "vocab.json").write_text(json.dumps({token: i for i, token in enumerate(VOCAB)}))
    (source / "merges.txt").write_text("#version: 0.2\nc a\nca t</w>\n")
    return CLIPTokenizer.from_pretrained(source, model_max_length=77)


def _scheduler():
    from diffusers import EulerDiscreteScheduler

    return EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1)
