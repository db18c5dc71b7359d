"""Each photo operation on a 12 MP phone photo (4000x3000 JPEG), through the stack vs
the same work in-process: decode the JPEG, run the operation, encode the result as the
studio would (JPEG for an opaque result of a JPEG, PNG for a cut-out).

    python -m bench.phone_photos [--jobs 10] [--only remove_object]

The operations run with their engines that need no download (u2netp from the tests'
copy, OpenCV, the face mesh, the preset style model) and their default parameters, so
style transfer gives its default 1024 px. Target: stack/in-process <= 1.10x each. Each
is also run with the server's append-only file off, to show what keeping every stored
image across a restart costs on this disk.
"""
from __future__ import annotations

import argparse
import io

from bench import stack

ENGINES = {"remove_background": "u2netp", "remove_object": "opencv-ns", "style_transfer": "neural-preset",
           "face_swap": "landmarks"}


def inputs_of(operation: str, photo: bytes) -> dict[str, bytes]:
    from pipelines.samples import sample

    if operation == "remove_object":
        return {"image": photo, "mask": stack.phone_mask()}
    if operation == "face_swap":
        portrait = io.BytesIO()
        sample("portrait.jpg").convert("RGB").save(portrait, "JPEG", quality=92)
        return {"source": portrait.getvalue(), "target": photo}
    return {"image": photo}


def in_process(operation: str, inputs: dict[str, bytes], params: dict):
    """What a script using the pipelines directly would do, as one call."""
    from pipelines.catalogue import OPERATIONS
    from pipelines.context import RunContext
    from pipelines.imaging import decode_image, encode_result, stored_format, with_metadata_of

    op = OPERATIONS[operation]
    model = op.params(**params)

    def run() -> None:
        images = {name: decode_image(data, standard_mode=name not in op.masks) for name, data in inputs.items()}
        result = op.run(images, model, RunContext())
        photo = images[op.photo_input]
        for image in result.images:
            encode_result(with_metadata_of(image, photo), stored_format(inputs[op.photo_input]))

    return run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=10)
    parser.add_argument("--only", choices=list(ENGINES), action="append")
    args = parser.parse_args()
    stack.use_test_u2netp()
    stack.start_server()
    stack.start_studio_worker("cpu")
    photo = stack.phone_jpeg()
    print(f"photo: 4000x3000 JPEG, {len(photo) / 1e6:.1f} MB")
    for operation in args.only or ENGINES:
        inputs, params = inputs_of(operation, photo), {"engine": ENGINES[operation]}
        stack.compare_with_in_process(f"{operation} at 12 MP, {params['engine']}", operation, inputs, params,
                                      in_process(operation, inputs, params), args.jobs, append_only_cost=True)


if __name__ == "__main__":
    main()
