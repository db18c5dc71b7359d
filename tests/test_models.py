"""The model layer as it runs where people have the weights: every model path with a
faithful stand-in (tests/standins.py) loaded by the library's own loading code, the
verified downloads, `launch.py download`, and "auto" routed to the worker that holds
the weights."""
from __future__ import annotations

import gc
import hashlib
import subprocess
import sys
import weakref
import zlib

import numpy as np
import pytest
from PIL import Image

from pipelines.catalogue import OPERATIONS
from pipelines.context import RunContext
from pipelines.errors import StudioError, WeightsMissing
from pipelines.face_swap import FaceSwapParams, face_swap
from pipelines.face_swap.enhancer import enhancer_weights
from pipelines.face_swap.insightface_engine import buffalo_weights, swapper_weights
from pipelines.registry import installed_engines
from pipelines.remove_object import OPERATION as REMOVE_OBJECT
from pipelines.remove_object import RemoveObjectParams, remove_object
from tasks.routing import route
from tests import standins
from tests.conftest import MODELS, ROOT, encode

# --- insightface and the face enhancer ------------------------------------------------------

FACES = [(4, 7), (15, 7)]  # marker cells of the target's two faces, left to right
FACE_2 = (368, 112, 624, 368)  # the stand-in detector's box around the second marker


@pytest.fixture
def insightface_models(tmp_path, monkeypatch):
    """buffalo_l's detector and recogniser and inswapper as stand-ins, where the engine looks."""
    monkeypatch.setenv("STUDIO_MODELS_DIR", str(tmp_path))
    detector, recogniser = buffalo_weights()
    standins.scrfd(detector.path)
    standins.arcface(recogniser.path)
    standins.inswapper(swapper_weights().path)
    return tmp_path


@pytest.fixture(scope="module")
def faces():
    source = Image.fromarray(standins.face_photo((640, 480), [(9, 7)]))
    target = Image.fromarray(standins.face_photo((640, 480), FACES, seed=1))
    return source, target


def swap(faces, **params) -> tuple:
    source, target = faces
    ctx = RunContext()
    result = face_swap({"source": source, "target": target}, FaceSwapParams(**params), ctx)
    return result, np.asarray(result.images[0]).astype(int), np.asarray(target).astype(int), ctx


def test_insightface_swaps_the_chosen_face_in_rgb_and_nothing_else(insightface_models, faces):
    result, out, target, ctx = swap(faces, target_faces=[2], enhance=0)
    assert result.engine == "insightface" and result.detail == "source face 1 onto target face(s) 2"
    assert np.abs(out[240, 496] - np.array(standins.SWAP_RGB) * 255).max() <= 2  # the swapper's colour, in RGB
    changed = np.abs(out - target).sum(2) > 0
    x0, y0, x1, y1 = FACE_2
    assert changed[y0 + 40:y1 - 40, x0 + 40:x1 - 40].mean() > 0.95
    outside = np.ones_like(changed)
    outside[y0:y1, x0:x1] = False
    assert not changed[outside].any()  # face 1 and everything else untouched


def test_insightface_pastes_back_on_the_face_box_as_on_the_whole_photo(insightface_models):
    """The swap runs on the box its aligned crop covers (so a 12 MP photo costs a box, not the
    photo): the pixels are those of insightface's own paste-back over the whole photo, for a
    face inside the photo and one cut off by its corner."""
    engine = OPERATIONS["face_swap"].engines["insightface"]
    model, params = engine.load(), FaceSwapParams(engine="insightface")
    source = standins.face_photo((640, 480), [(9, 7)])
    target = np.asarray(Image.fromarray(standins.face_photo((640, 480), [(9, 7), (1, 1)], seed=1))
                        .resize((1600, 1200), Image.Resampling.NEAREST))  # detected at 640 px: markers stay on the grid
    source_face = engine.detect(model, source)[0]
    faces = engine.detect(model, target)
    assert len(faces) == 2
    for face in faces:
        ours = engine.swap(model, source, source_face, target, face, params)
        whole = model[1].get(np.ascontiguousarray(target[..., ::-1]), face.native, source_face.native)[..., ::-1]
        assert (ours != target).any(axis=2).sum() > 10_000
        assert np.abs(ours.astype(int) - whole).max() <= 1


def test_face_enhancer_gets_the_face_in_rgb_minus_one_to_one(insightface_models, faces):
    standins.gfpgan(enhancer_weights().path)
    result, out, _, ctx = swap(faces, target_faces=[2], enhance=1)
    assert result.detail.endswith("enhanced by GFPGAN 1.4 at 1") and ctx.notes == []
    red = standins.SWAP_RGB[0] * 255
    # the stand-in keeps channel 0 and sets 1 and 2 to -1 and +1: fed BGR or 0..1, this differs
    assert np.abs(out[240, 496] - np.array([red, 0, 255])).max() <= 3
    _, half, _, _ = swap(faces, target_faces=[2], enhance=0.5)
    assert abs(half[240, 496, 2] - (255 + standins.SWAP_RGB[2] * 255) / 2) <= 3  # strength blends
    assert np.array_equal(out[:, :300], np.asarray(faces[1]).astype(int)[:, :300])  # face 1 not enhanced


def test_codeformer_gets_the_face_in_rgb_minus_one_to_one_and_its_fidelity_weight(insightface_models, faces):
    standins.codeformer(enhancer_weights("codeformer").path)
    result, out, _, ctx = swap(faces, target_faces=[2], enhancer="codeformer")
    assert result.detail.endswith("enhanced by CodeFormer at 1") and ctx.notes == []
    # channel 1 is minus the weight: fed 0 instead of FaceFusion's 1, it would read 128
    assert np.abs(out[240, 496] - np.array([standins.SWAP_RGB[0] * 255, 0, 255])).max() <= 3
    assert np.array_equal(out[:, :300], np.asarray(faces[1]).astype(int)[:, :300])  # face 1 not enhanced
    _, _, _, without = swap(faces, target_faces=[2], enhancer="gfpgan")  # each enhancer has its own file
    assert "gfpgan_1.4.onnx is missing" in without.notes[0]


def test_without_the_enhancer_the_swap_says_how_to_get_it(insightface_models, faces):
    result, out, _, ctx = swap(faces, target_faces=[2])  # enhance is on by default; offline, no file
    assert "enhanced" not in result.detail
    assert "gfpgan_1.4.onnx is missing" in ctx.notes[0] and "was not enhanced" in ctx.notes[0]


def test_inswapper_comes_first_and_buffalo_only_once_it_is_there(weights_server, tmp_path, monkeypatch):
    """The swapper is fetched (and verified) before buffalo_l: a wrong swapper is refused
    and deleted, and buffalo_l is never downloaded for nothing."""
    served, url = weights_server
    (served / "inswapper_128.onnx").write_bytes(b"not inswapper")
    (served / "buffalo_l.zip").write_bytes(b"never fetched")
    monkeypatch.setenv("STUDIO_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("STUDIO_INSWAPPER_URL", f"{url}/inswapper_128.onnx")  # a mirror: held to the same pin
    monkeypatch.setattr("pipelines.face_swap.insightface_engine.BUFFALO_URL", f"{url}/buffalo_l.zip")
    from pipelines.face_swap.insightface_engine import InsightFaceEngine

    with pytest.raises(WeightsMissing, match="sha256 is .*not the pinned e4a3f08c.*deleted"):
        InsightFaceEngine().fetch_weights(RunContext())
    assert not list((tmp_path / "models" / "insightface").rglob("*.onnx"))
    assert not (tmp_path / "models" / "insightface" / "models" / "buffalo_l.zip").exists()


# --- object removal: LaMa, MI-GAN, Stable Diffusion --------------------------------------------

@pytest.fixture(scope="module")
def cat():
    """A photo whose red and blue means differ a lot (an orange cat), and a mask on it."""
    from skimage import data

    photo = Image.fromarray(data.chelsea())
    mask = Image.new("L", photo.size, 0)
    mask.paste(255, (200, 120, 260, 190))
    return photo, mask


def red_and_blue_around(photo, mask, box) -> tuple[float, float]:
    """The crop's means of red and blue outside the hole (the stand-ins fill with the red)."""
    crop = np.asarray(photo, np.float32)[box[1]:box[3], box[0]:box[2]]
    keep = np.asarray(mask)[box[1]:box[3], box[0]:box[2]] == 0
    return crop[..., 0][keep].mean(), crop[..., 2][keep].mean()


@pytest.mark.parametrize("engine, build, folder", [("lama", standins.lama, "lama/big-lama.pt"),
                                                   ("migan", standins.migan, "migan/migan_traced.pt")])
def test_learned_inpainting_gets_rgb_in_its_range_and_a_binary_mask(cat, tmp_path, monkeypatch, engine, build,
                                                                     folder):
    photo, mask = cat
    monkeypatch.setenv("STUDIO_MODELS_DIR", str(tmp_path))
    build(tmp_path / folder)
    stages = []
    result = remove_object({"image": photo, "mask": mask}, RemoveObjectParams(engine="auto", dilate=0, feather=0),
                           RunContext(report=lambda p, stage, _: stages.append(stage)))
    assert result.engine == engine  # auto takes it once its file is there (LaMa before MI-GAN)
    filled = np.asarray(result.images[0], np.float32)[np.asarray(mask) > 0]
    box = (136, 56, 324, 254)  # the crop: the mask's box with 64 px around it
    red, blue = red_and_blue_around(photo, mask, box)
    assert abs(red - blue) > 30  # the photo tells the channels apart
    assert np.abs(filled.mean(0) - [red, 0, 0]).max() < 12  # channel 0 came back as red, in range
    if engine == "migan":
        assert any("on a 512x" in stage for stage in stages)  # a small crop is scaled up to its 512 px


def test_sd_inpainting_works_at_512_or_more(cat, tiny_inpaint):
    """A 188x198 crop runs at SD's training size, through a 9-channel inpainting pipeline."""
    photo, mask = cat
    stages = []
    result = remove_object({"image": photo, "mask": mask},
                           RemoveObjectParams(engine="sd-inpaint", model=tiny_inpaint, steps=2, seed=1, dilate=0,
                                              feather=0), RunContext(report=lambda p, stage, _: stages.append(stage)))
    work = next(stage for stage in stages if stage.startswith("removing with"))
    width, height = map(int, work.split(" on a ")[1].split(" ")[0].split("x"))
    assert max(width, height) == 512 and width % 8 == 0 and height % 8 == 0
    changed = np.abs(np.asarray(result.images[0], np.int16) - np.asarray(photo, np.int16)).sum(2) > 0
    assert changed[np.asarray(mask) > 0].mean() > 0.9


def test_img2img_uses_the_photo(tiny_sd):
    from skimage import data

    from pipelines.style_transfer import StyleTransferParams, style_transfer

    params = StyleTransferParams(engine="sd-img2img", model=tiny_sd, steps=2, strength=0.5, seed=5)
    one, two = (style_transfer({"image": Image.fromarray(photo).resize((64, 64))}, params, RunContext()).images[0]
                for photo in (data.chelsea(), data.coffee()))
    assert np.abs(np.asarray(one, np.int16) - np.asarray(two, np.int16)).mean() > 5


# --- diffusion: eviction with from_pipe, "ready" ----------------------------------------------

def test_an_evicted_base_takes_its_from_pipe_pipelines_with_it(tiny_sd, monkeypatch):
    import shutil

    from pipelines import diffusion, registry

    other = MODELS / "diffusers" / "tiny-sd-copy"
    if not other.exists():
        shutil.copytree(MODELS / "diffusers" / tiny_sd, other)
    monkeypatch.setenv("STUDIO_MAX_LOADED_MODELS", "2")
    registry.release_models()
    base = diffusion.load_pipeline(tiny_sd, "text2image", RunContext())
    diffusion.load_pipeline(tiny_sd, "inpaint", RunContext())
    unet = weakref.ref(base.unet)
    del base
    diffusion.load_pipeline("tiny-sd-copy", "text2image", RunContext())  # the family is full: the oldest goes
    gc.collect()
    assert unet() is None  # the inpaint pipeline built on it went too, so its weights were freed
    assert [key.rsplit("/", 1)[-1] for key in registry._models["diffusers"]] == ["tiny-sd-copy"]
    registry.release_models()


def test_a_tiny_sdxl_pipeline_generates_with_steps_and_previews():
    """SDXL's folder layout (two text encoders, "text_time" conditioning), as sdxl-turbo's,
    loaded through the same code path; its previews use SDXL's latent colours."""
    from pipelines import diffusion
    from pipelines.generate import GenerateParams, generate
    from tests.tiny_diffusion import build_tiny_sdxl

    if not (MODELS / "diffusers" / "tiny-sdxl" / "model_index.json").is_file():
        build_tiny_sdxl(MODELS / "diffusers" / "tiny-sdxl")
    seen = []
    params = GenerateParams(prompt="a cat", model="tiny-sdxl", steps=4, seed=1, width=64, height=96)
    first = generate({}, params, RunContext(report=lambda p, stage, preview: seen.append((stage, preview))))
    again = generate({}, params, RunContext())
    loaded = diffusion.load_pipeline("tiny-sdxl", "text2image", RunContext())
    assert type(loaded).__name__ == "StableDiffusionXLPipeline"
    assert first.images[0].size == (64, 96) and first.images[0].tobytes() == again.images[0].tobytes()
    assert [stage for stage, _ in seen if stage.startswith("step")] == [f"step {i}/4" for i in range(1, 5)]
    assert [preview.size for _, preview in seen if preview is not None] == [(64, 96)] * 3


def test_an_image_the_safety_checker_blanks_is_named(monkeypatch):
    """diffusers' own StableDiffusionSafetyChecker, loaded with the model as sd-1.5's is,
    with thresholds that flag every image: each blanked image is named, not returned
    black without a word; the operator's switch loads the model without it."""
    from pipelines import registry
    from pipelines.generate import GenerateParams, generate
    from tests.tiny_diffusion import build_tiny_pipeline

    folder = MODELS / "diffusers" / "tiny-sd-checked"
    if not (folder / "model_index.json").is_file():
        build_tiny_pipeline(folder, strict_checker=True)
    params = GenerateParams(prompt="a cat", model="tiny-sd-checked", steps=1, seed=1, num_images=2, width=64,
                            height=64)
    ctx = RunContext()
    blanked = generate({}, params, ctx).images
    assert [note.split(" (")[0] for note in ctx.notes] == [
        f"The model's safety checker blanked image {n} of 2" for n in (1, 2)]
    assert all(np.asarray(image).max() == 0 for image in blanked)
    registry.release_models()
    monkeypatch.setenv("STUDIO_SD_SAFETY_CHECKER", "0")
    ctx = RunContext()
    shown = generate({}, params, ctx).images
    assert ctx.notes == [] and all(np.asarray(image).max() > 0 for image in shown)
    registry.release_models()


def test_diffusion_engines_are_ready_only_with_a_model_on_disk(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_MODELS_DIR", str(tmp_path))  # no diffusers folder, and the suite's HF cache is empty

    empty = installed_engines(OPERATIONS)
    assert not {"generate/diffusers", "remove_object/sd-inpaint", "style_transfer/sd-img2img"} & set(empty)
    assert "remove_object/opencv-telea" in empty and "remove_object/lama" not in empty
    assert REMOVE_OBJECT.engines["sd-inpaint"].download_note() == "2-7 GB per model"


# --- verified downloads ------------------------------------------------------------------------

def test_a_download_is_verified_by_the_publishers_checksum_file(weights_server, tmp_path, monkeypatch):
    served, url = weights_server
    model = b"an onnx model" * 5000
    (served / "gfpgan_1.4.onnx").write_bytes(model)
    (served / "gfpgan_1.4.hash").write_text(f"{zlib.crc32(model):08x}")
    monkeypatch.setenv("STUDIO_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setattr("pipelines.face_swap.enhancer.RELEASE", url)
    from pipelines.weights import ensure_weights

    stages = []
    path = ensure_weights(enhancer_weights(), RunContext(report=lambda p, stage, _: stages.append(stage)))
    assert path.read_bytes() == model and any("%" in stage for stage in stages)
    assert (path.parent / "gfpgan_1.4.onnx.sha256").read_text().strip() == hashlib.sha256(model).hexdigest()
    path.unlink()
    (served / "gfpgan_1.4.hash").write_text("deadbeef")
    with pytest.raises(WeightsMissing, match="CRC32 is .*not the publisher's deadbeef.*deleted"):
        ensure_weights(enhancer_weights(), RunContext())
    assert not path.exists() and not path.with_name("gfpgan_1.4.onnx.part").exists()


def test_a_file_without_a_published_checksum_has_its_sha256_recorded_and_shown(weights_server, tmp_path):
    from pipelines.weights import WeightFile, ensure_weights

    served, url = weights_server
    (served / "buffalo_l.zip").write_bytes(b"zip" * 1000)
    ctx = RunContext()
    ensure_weights(WeightFile("buffalo_l.zip", tmp_path / "m", f"{url}/buffalo_l.zip"), ctx)
    digest = hashlib.sha256(b"zip" * 1000).hexdigest()
    assert digest in ctx.notes[0] and (tmp_path / "m" / "buffalo_l.zip.sha256").read_text().strip() == digest


def test_a_lama_mirror_is_held_to_iopaints_pin(weights_server, tmp_path, monkeypatch, cat):
    served, url = weights_server
    standins.lama(served / "big-lama.pt")
    monkeypatch.setenv("STUDIO_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("STUDIO_LAMA_URL", f"{url}/big-lama.pt")
    photo, mask = cat
    with pytest.raises(WeightsMissing, match="md5 is .*not the pinned e3aa4aaa15225a33ec84f9f4bc47e500"):
        remove_object({"image": photo, "mask": mask}, RemoveObjectParams(engine="lama"), RunContext())
    assert not (tmp_path / "models" / "lama" / "big-lama.pt").exists()


def test_launch_download_fetches_verifies_and_reports(weights_server, tmp_path):
    """`python launch.py download remove_background/u2netp` as an operator runs it."""
    from tests.assets import u2netp_onnx

    served, url = weights_server
    (served / "u2netp.onnx").write_bytes(u2netp_onnx().read_bytes())
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("STUDIO_OFFLINE", "HF_HUB_OFFLINE")}
    env.update(STUDIO_MODELS_DIR=str(tmp_path / "models"), STUDIO_REMBG_BASE_URL=url)
    command = [sys.executable, str(ROOT / "launch.py"), "download", "remove_background/u2netp"]
    first = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "downloading u2netp.onnx" in first.stdout and "downloaded and verified" in first.stdout
    again = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert "verified against its pinned checksum" in again.stdout
    (tmp_path / "models" / "rembg" / "u2netp.onnx").write_bytes(b"tampered")
    tampered = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert tampered.returncode == 1 and "not the pinned 8e83ca70e441ab06c318d82300c84806" in tampered.stderr
    wrong = subprocess.run([*command[:3], "nonsense"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert wrong.returncode == 2 and "unknown operation" in wrong.stderr


# --- routing -------------------------------------------------------------------------------------

def worker(queues, engines=(), downloads=False):
    return {"queues": list(queues), "engines": list(engines), "downloads": downloads}


def test_auto_goes_where_the_weights_are():
    cpu, gpu = worker(["cpu"], ["remove_object/opencv-telea"]), worker(["gpu"], ["remove_object/lama"])
    assert route(REMOVE_OBJECT, "auto", [cpu, gpu]) == ("gpu", "lama")
    assert route(REMOVE_OBJECT, "auto", [gpu]) == ("gpu", "lama")
    lama_on_cpu = worker(["cpu"], ["remove_object/lama"])
    assert route(REMOVE_OBJECT, "auto", [lama_on_cpu, worker(["gpu"])]) == ("cpu", "lama")
    migan = worker(["cpu"], ["remove_object/migan", "remove_object/opencv-telea"])
    assert route(REMOVE_OBJECT, "auto", [migan, worker(["gpu"], downloads=True)]) == ("gpu", "lama")
    assert route(REMOVE_OBJECT, "auto", [migan, worker(["gpu"])]) == ("cpu", "migan")
    assert route(REMOVE_OBJECT, "auto", []) == ("cpu", None)  # no worker: say so in the status
    assert route(REMOVE_OBJECT, "opencv-telea", [gpu]) == ("gpu", "opencv-telea")  # a GPU host runs CPU work
    assert route(REMOVE_OBJECT, "sd-inpaint", [cpu]) == ("gpu", "sd-inpaint")  # diffusion waits for a GPU


def test_light_work_goes_to_the_light_queue_where_one_is_served():
    """OpenCV fills and face-mesh swaps run one per core in the light worker; rembg, LaMa and
    diffusion stay on their one-at-a-time queues."""
    cpu = worker(["cpu", "light"], ["remove_object/opencv-telea", "face_swap/landmarks", "remove_background/u2netp"])
    light = worker(["light"], cpu["engines"])
    assert route(REMOVE_OBJECT, "opencv-ns", [cpu, light]) == ("light", "opencv-ns")
    assert route(REMOVE_OBJECT, "auto", [cpu, light]) == ("light", "opencv-telea")
    assert route(OPERATIONS["face_swap"], "landmarks", [cpu, light]) == ("light", "landmarks")
    assert route(OPERATIONS["remove_background"], "u2netp", [cpu, light]) == ("cpu", "u2netp")
    assert route(REMOVE_OBJECT, "opencv-ns", [worker(["cpu"])]) == ("cpu", "opencv-ns")  # nobody serves light
    assert route(REMOVE_OBJECT, "opencv-ns", [light]) == ("light", "opencv-ns")
    assert route(OPERATIONS["remove_background"], "u2netp", [light]) == ("cpu", "u2netp")  # heavy: not there
    lama_host = worker(["light"], ["remove_object/lama", "remove_object/opencv-telea"])
    assert route(REMOVE_OBJECT, "auto", [cpu, lama_host]) == ("cpu", "opencv-telea")  # it would run LaMa there


def test_auto_object_removal_runs_on_the_only_worker_with_lama(client, start_worker, tmp_path, astronaut_jpeg):
    """A GPU host: only a gpu worker, LaMa in its own models folder. Before, the job waited
    for a cpu worker that did not exist."""
    standins.lama(tmp_path / "gpu-host" / "lama" / "big-lama.pt")
    host = start_worker("gpu", STUDIO_MODELS_DIR=str(tmp_path / "gpu-host"))
    mask = Image.new("L", (512, 512), 0)
    mask.paste(255, (300, 300, 360, 380))
    job = client.submit("remove_object", {"image": astronaut_jpeg, "mask": encode(mask)}, {})
    queued = client.status(job)
    assert queued.queue == "gpu" and queued.engine == "lama"  # the status names the engine chosen
    status = client.wait(job, timeout=120)
    assert status.state == "succeeded" and status.engine == "lama", status.error
    assert client.store.get(job)["worker"].startswith(host.hostname_prefix)


def test_out_of_memory_anywhere_says_so_and_the_worker_carries_on(client, start_worker, tmp_path, astronaut_jpeg):
    import torch

    class OutOfMemory(torch.nn.Module):  # what a CUDA allocation failure inside LaMa looks like
        def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    (tmp_path / "lama").mkdir()
    torch.jit.script(OutOfMemory()).save(str(tmp_path / "lama" / "big-lama.pt"))
    host = start_worker("gpu", STUDIO_MODELS_DIR=str(tmp_path))
    mask = Image.new("L", (512, 512), 0)
    mask.paste(255, (300, 300, 360, 380))
    images = {"image": astronaut_jpeg, "mask": encode(mask)}
    failed = client.wait(client.submit("remove_object", images, {"engine": "lama"}), timeout=120)
    assert failed.state == "failed" and "ran out of GPU memory" in failed.error and "carries on" in failed.error
    after = client.wait(client.submit("diagnostic", {"image": astronaut_jpeg}, {"engine": "identity-gpu"}), 120)
    assert after.state == "succeeded" and client.store.get(after.id)["worker"].startswith(host.hostname_prefix)


# --- no silent no-ops ------------------------------------------------------------------------------

def test_a_face_too_small_for_inswapper_fails_instead_of_coming_back_unchanged(insightface_models, faces):
    """A 20 x 15 thumbnail: the detector finds its face (about 8 px across), but insightface's
    own paste-back erodes 10 px off the face's mask, so the swap would change no pixel."""
    block = [(column, row) for column in (9, 10, 11) for row in (6, 7, 8)]  # one cell stays red when shrunk
    thumbnail = Image.fromarray(standins.face_photo((640, 480), block, seed=1)).resize((20, 15), Image.Resampling.BOX)
    with pytest.raises(StudioError, match="Target face 1 was not swapped by the insightface .* too small"):
        face_swap({"source": faces[0], "target": thumbnail}, FaceSwapParams(enhance=0), RunContext())
    larger = thumbnail.resize((64, 48), Image.Resampling.BOX)  # the same face at 3 x the size does swap
    result = face_swap({"source": faces[0], "target": larger}, FaceSwapParams(enhance=0), RunContext())
    assert result.engine == "insightface" and (np.asarray(result.images[0]) != np.asarray(larger)).any()


def test_a_cut_out_with_no_subject_says_so():
    from pipelines.remove_background import remove_background
    from pipelines.remove_background.base import RemoveBackgroundParams

    empty_room = Image.new("RGB", (256, 256), (200, 205, 210))
    with pytest.raises(StudioError, match="found no subject"):
        remove_background({"image": empty_room}, RemoveBackgroundParams(engine="mediapipe-person"), RunContext())
