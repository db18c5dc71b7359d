"""Background removal through the stack vs `rembg.remove` in-process with the
same u2netp session on the same photo (both: JPEG bytes in, PNG bytes out), and
the first job of a fresh worker (model load) vs the second (model reused).

Needs u2netp.onnx in the models folder (`STUDIO_MODELS_DIR`); the tests' copy is
used when present.

    python -m bench.remove_background [--jobs 20]
"""
from __future__ import annotations

import argparse

from bench import stack


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=20)
    args = parser.parse_args()
    stack.use_test_u2netp()
    stack.start_server()
    stack.start_studio_worker("cpu")

    import rembg

    from pipelines.remove_background.rembg_models import RembgEngine

    photo = stack.sample_jpeg()
    session = RembgEngine("u2netp").load()
    stack.compare_with_in_process("remove background 512x512 u2netp", "remove_background", {"image": photo},
                                  {"engine": "u2netp"}, lambda: rembg.remove(photo, session=session), args.jobs)


if __name__ == "__main__":
    main()
