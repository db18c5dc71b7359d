"""Face swap (offline landmark engine) through the stack vs the same engine
in-process on the same photos (PNG/JPEG bytes in, PNG bytes out), for a one-face
photo (scikit-image's astronaut) and a six-face one (insightface's t1); and the
first job of a fresh worker vs the second (face models reused).

    python -m bench.face_swap [--jobs 10]
"""
from __future__ import annotations

import argparse
import io
from pathlib import Path

from bench import stack


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=10)
    args = parser.parse_args()
    stack.start_server()
    stack.start_studio_worker("cpu")

    import insightface
    from insightface.data import get_image
    from PIL import Image

    from pipelines.context import RunContext
    from pipelines.face_swap import FaceSwapParams, face_swap
    from pipelines.imaging import decode_image, encode_png

    source = (Path(insightface.__file__).parent / "data" / "images" / "Tom_Hanks_54745.png").read_bytes()
    group = io.BytesIO()
    Image.fromarray(get_image("t1")[..., ::-1].copy()).save(group, "JPEG", quality=92)
    params = {"engine": "landmarks"}

    for name, target in (("1 face, 512x512", stack.sample_jpeg()), ("6 faces, 1280x886", group.getvalue())):
        def in_process(target: bytes = target) -> bytes:
            result = face_swap({"source": decode_image(source), "target": decode_image(target)},
                               FaceSwapParams(**params), RunContext())
            return encode_png(result.images[0])

        stack.compare_with_in_process(f"face swap, {name}", "face_swap", {"source": source, "target": target},
                                      params, in_process, args.jobs)


if __name__ == "__main__":
    main()
