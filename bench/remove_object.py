"""Remove object on a 4000x3000 photo with a small mask: the studio's crop-and-paste
path vs running the same engine on the whole photo downscaled to the engine's
working size (then upscaled and pasted through the mask). Each variant runs in a
fresh process, so its peak memory (max RSS, which includes the 36 MB photo and the
imports, the same for both) is its own; the time is the operation's alone.

    python -m bench.remove_object [--engine opencv-telea] [--work-size 1024]
"""
from __future__ import annotations

import argparse
import multiprocessing
import resource
import time


def photo_and_mask():
    from PIL import Image
    from skimage import data

    photo = Image.fromarray(data.astronaut()).resize((4000, 3000), Image.Resampling.LANCZOS)
    mask = Image.new("L", photo.size, 0)
    mask.paste(255, (2300, 1900, 2450, 2100))  # an object of 150x200 px
    return photo, mask


def crop_and_paste(photo, mask, engine: str, work_size: int) -> None:
    from pipelines.context import RunContext
    from pipelines.remove_object import RemoveObjectParams, remove_object

    remove_object({"image": photo, "mask": mask}, RemoveObjectParams(engine=engine), RunContext())


def whole_downscaled(photo, mask, engine_name: str, work_size: int) -> None:
    from PIL import Image

    from pipelines.context import RunContext
    from pipelines.registry import load_model
    from pipelines.remove_object import OPERATION, RemoveObjectParams, feathered, grow

    params = RemoveObjectParams(engine=engine_name)
    engine = OPERATION.engine(engine_name)
    mask = grow(mask, params.dilate)
    scale = work_size / max(photo.size)
    size = (round(photo.width * scale) // 8 * 8, round(photo.height * scale) // 8 * 8)
    small = engine.inpaint(load_model(engine, RunContext()), photo.resize(size, Image.Resampling.LANCZOS),
                           mask.resize(size, Image.Resampling.NEAREST), params, RunContext())
    Image.composite(small.resize(photo.size, Image.Resampling.LANCZOS), photo, feathered(mask, params.feather))


def measure(variant, engine: str, work_size: int, queue) -> None:
    import pipelines.remove_object  # noqa: F401  (imports are not what is measured)

    photo, mask = photo_and_mask()
    started = time.perf_counter()
    variant(photo, mask, engine, work_size)
    queue.put((time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def run_in_fresh_process(variant, engine: str, work_size: int) -> tuple[float, float]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=measure, args=(variant, engine, work_size, queue))
    process.start()
    result = queue.get()
    process.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--engine", default="opencv-telea")
    parser.add_argument("--work-size", type=int, default=1024, help="the downscaled baseline's longest side")
    args = parser.parse_args()
    crop_time, crop_mb = run_in_fresh_process(crop_and_paste, args.engine, args.work_size)
    whole_time, whole_mb = run_in_fresh_process(whole_downscaled, args.engine, args.work_size)
    print(f"remove object, 4000x3000 photo, 150x200 px mask, {args.engine}:")
    print(f"  crop and paste: {crop_time:.2f} s, peak RSS {crop_mb:.0f} MB (full resolution kept)")
    print(f"  whole photo at {args.work_size} px: {whole_time:.2f} s, peak RSS {whole_mb:.0f} MB "
          f"(the fill is upscaled {4000 / args.work_size:.1f}x)")
    print(f"  time ratio crop/whole {crop_time / whole_time:.2f}, memory ratio {crop_mb / whole_mb:.2f}")


if __name__ == "__main__":
    main()
