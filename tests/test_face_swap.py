"""Face swap on real photos that ship in packages: scikit-image's astronaut, and
insightface's group photo t1 and Tom_Hanks_54745.png.

The swap itself runs with the offline landmark engine; insightface's path runs with
faithful stand-ins of its models in test_models.py. Here: where it looks for its
files, how it fetches them, its messages, and auto's choice."""
from __future__ import annotations

import hashlib
import io
import os
import zipfile

import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from pipelines.context import RunContext
from pipelines.errors import InvalidInput, WeightsMissing
from pipelines.face_swap import DETECT_FACES, FACE_SWAP, DetectFacesParams, FaceSwapParams, detect_faces, face_swap
from pipelines.face_swap.base import FaceNotPlaced
from pipelines.face_swap.insightface_engine import BUFFALO_FILES, InsightFaceEngine
from pipelines.registry import pick_engine
from tests.conftest import encode


def faces_of(image) -> list:
    from pipelines.face_swap import find_faces
    from pipelines.face_swap.landmarks import LandmarkEngine
    from pipelines.registry import load_model

    engine = LandmarkEngine()
    return find_faces(engine, load_model(engine, RunContext()), image, "test")[1]


def swap(source, target, **params):
    return face_swap({"source": source, "target": target}, FaceSwapParams(engine="landmarks", **params), RunContext())


def changed(a: Image.Image, b: Image.Image) -> np.ndarray:
    return np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16)).sum(2) > 0


def inside(boxes, shape, grow=0.25) -> np.ndarray:
    """Where the boxes are, each grown by `grow` of its size."""
    area = np.zeros(shape[:2], bool)
    for x0, y0, x1, y1 in boxes:
        dx, dy = (x1 - x0) * grow, (y1 - y0) * grow
        area[max(0, int(y0 - dy)):int(y1 + dy) + 1, max(0, int(x0 - dx)):int(x1 + dx) + 1] = True
    return area


def test_face_counts_and_left_to_right_numbers(astronaut, group, hanks):
    assert len(faces_of(astronaut)) == 1 and len(faces_of(hanks)) == 1
    found = faces_of(group)
    assert len(found) == 6
    assert [f.box[0] for f in found] == sorted(f.box[0] for f in found)
    assert all(len(f.points) == 468 for f in found)


def test_every_target_face_changes_and_nothing_far_from_them(hanks, group):
    result = swap(hanks, group)
    out = result.images[0]
    assert out.size == group.size and result.engine == "landmarks"
    boxes = [f.box for f in faces_of(group)]
    diff = changed(out, group)
    assert not diff[~inside(boxes, diff.shape)].any()  # far from every face: identical
    for x0, y0, x1, y1 in boxes:
        assert diff[int(y0):int(y1), int(x0):int(x1)].mean() > 0.3


def test_face_numbers_choose_which_faces_change(hanks, group):
    boxes = [f.box for f in faces_of(group)]
    diff = changed(swap(hanks, group, target_faces=[2, 5]).images[0], group)
    for number, (x0, y0, x1, y1) in enumerate(boxes, start=1):
        region = diff[int(y0):int(y1), int(x0):int(x1)]
        assert (region.mean() > 0.3) if number in (2, 5) else not region.any()


def test_source_face_number_picks_the_source(group, hanks):
    one = swap(group, hanks, source_face=1).images[0]
    six = swap(group, hanks, source_face=6).images[0]
    assert np.abs(np.asarray(one, np.float32) - np.asarray(six, np.float32)).mean() > 1


def test_colour_correction_takes_the_targets_skin_tone(hanks, astronaut):
    import cv2

    from pipelines.face_swap import mesh_regions as regions
    from pipelines.face_swap.mesh_blend import match_colours

    points = faces_of(astronaut)[0].points
    pale, target = (cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2LAB).astype(np.float32)
                    for image in (hanks.resize((512, 512)), astronaut))
    corrected = match_colours(pale, target, points)
    skin = regions.skin_patches((512, 512), points) > 0
    assert np.abs(corrected[skin].mean(0) - target[skin].mean(0)).max() < 4 < np.abs(
        pale[skin].mean(0) - target[skin].mean(0)).max()
    with_correction = swap(hanks, astronaut, color_correct=True).images[0]
    without = swap(hanks, astronaut, color_correct=False).images[0]
    assert changed(with_correction, without).any()  # the option reaches the result


def test_no_face_messages_name_the_photo(astronaut):
    from skimage import data

    coffee = Image.fromarray(data.coffee())
    with pytest.raises(InvalidInput, match="No face was found in the source photo"):
        swap(coffee, astronaut)
    with pytest.raises(InvalidInput, match="No face was found in the target photo"):
        swap(astronaut, coffee)


def test_face_numbers_out_of_range(hanks, group):
    with pytest.raises(InvalidInput, match="source photo has 1 face"):
        swap(hanks, group, source_face=2)
    with pytest.raises(InvalidInput, match="target photo has 6 face"):
        swap(hanks, group, target_faces=[7])


def test_a_face_cut_by_the_photo_s_edge_still_swaps(hanks, astronaut):
    cut = astronaut.crop((190, 0, astronaut.width, astronaut.height))  # the face's left edge outside the photo
    (face,) = faces_of(cut)
    assert face.box[0] < 0
    assert changed(swap(hanks, cut).images[0], cut)[:, :int(face.box[2])].sum() > 3000


def test_a_face_nothing_can_be_put_on_fails_instead_of_coming_back_unchanged(hanks, astronaut):
    """The face mesh's last guard: the astronaut's real mesh moved past the photo's top-left
    corner, where none of its triangles can be drawn. (Real detection hands over faces at
    most a third cut off, which still swap; see the test above.) The engine must say so, and
    `face_swap` then fails naming the face, rather than succeed with the photo as it was."""
    from pipelines.face_swap import find_faces
    from pipelines.face_swap.base import Face
    from pipelines.face_swap.landmarks import LandmarkEngine
    from pipelines.registry import load_model

    engine = LandmarkEngine()
    model = load_model(engine, RunContext())
    source, (source_face,) = find_faces(engine, model, hanks, "source")
    target, (face,) = find_faces(engine, model, astronaut, "target")
    beyond = face.points - face.points.max(0) - 1  # the face's lowest, rightmost point at (-1, -1)
    with pytest.raises(FaceNotPlaced, match="no part of the source face fits"):
        engine.swap(model, source, source_face, target, Face((*beyond.min(0), *beyond.max(0)), 1.0, beyond),
                    FaceSwapParams(engine="landmarks"))


def test_a_large_photo_keeps_its_size(hanks, group):
    large = group.resize((group.width * 3, group.height * 3))
    out = swap(hanks, large, target_faces=[3]).images[0]
    assert out.size == large.size


def test_detect_faces_draws_numbered_boxes(group):
    result = detect_faces({"image": group}, DetectFacesParams(engine="landmarks"), RunContext())
    assert result.detail == "6 face(s)" and changed(result.images[0], group).any()


# --- insightface: everything up to its models ------------------------------------------------

def test_insightface_missing_models_offline(tmp_path, monkeypatch, hanks, astronaut):
    monkeypatch.setenv("STUDIO_MODELS_DIR", str(tmp_path))
    with pytest.raises(WeightsMissing, match=r"inswapper_128.onnx is missing .* Put it in .*insightface"):
        face_swap({"source": hanks, "target": astronaut}, FaceSwapParams(engine="insightface"), RunContext())
    ctx = RunContext()
    result = face_swap({"source": hanks, "target": astronaut}, FaceSwapParams(engine="auto"), ctx)
    assert result.engine == "landmarks" and "inswapper_128.onnx" in ctx.notes[0]
    assert "Ran Face mesh warp" in ctx.notes[0] and "facefusion-assets" in ctx.notes[0]  # where it comes from


def test_insightface_fetches_inswapper_then_unpacks_buffalo(weights_server, tmp_path, monkeypatch):
    """Both from a local server: inswapper is held to its sha256 pin, so the test pins
    the stand-in it serves; buffalo_l.zip has no published checksum and is recorded."""
    served, url = weights_server
    (served / "inswapper_128.onnx").write_bytes(b"stand-in swapper")
    with zipfile.ZipFile(served / "buffalo_l.zip", "w") as archive:
        for name in (*BUFFALO_FILES, "genderage.onnx"):
            archive.writestr(f"buffalo_l/{name}", f"stand-in for {name}")
    monkeypatch.setenv("STUDIO_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("STUDIO_INSWAPPER_URL", f"{url}/inswapper_128.onnx")
    monkeypatch.setattr("pipelines.face_swap.insightface_engine.INSWAPPER_SHA256",
                        hashlib.sha256(b"stand-in swapper").hexdigest())
    monkeypatch.setattr("pipelines.face_swap.insightface_engine.BUFFALO_URL", f"{url}/buffalo_l.zip")
    stages = []
    ctx = RunContext(report=lambda p, stage, _: stages.append(stage))
    InsightFaceEngine().fetch_weights(ctx)
    unpacked = tmp_path / "models" / "insightface" / "models" / "buffalo_l"
    assert sorted(p.name for p in unpacked.iterdir()) == sorted(BUFFALO_FILES)  # only what the swap uses
    downloads = [stage.split()[1] for stage in stages if stage.startswith("downloading")]
    assert downloads[0] == "inswapper_128.onnx" and downloads[-1] == "buffalo_l.zip"
    assert "buffalo_l.zip has no published checksum" in ctx.notes[0]


def test_auto_prefers_insightface_once_its_files_are_there(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_MODELS_DIR", str(tmp_path))
    for weight in InsightFaceEngine().weights():
        weight.folder.mkdir(parents=True, exist_ok=True)
        weight.path.write_bytes(b"model")
    assert pick_engine(FACE_SWAP, "auto", RunContext()).name == "insightface"
    assert DETECT_FACES.engines is FACE_SWAP.engines


# --- through the queue and the UI ------------------------------------------------------------

def test_through_the_queue(client, cpu_worker, hanks, astronaut_jpeg):
    job = client.submit("face_swap", {"source": encode(hanks), "target": astronaut_jpeg},
                        {"engine": "landmarks", "target_faces": [1]})
    status = client.wait(job, timeout=120)
    assert status.state == "succeeded" and status.detail == "source face 1 onto target face(s) 1"
    assert Image.open(io.BytesIO(client.results(job)[0])).size == (512, 512)
    bad = client.submit("face_swap", {"source": astronaut_jpeg, "target": astronaut_jpeg},
                        {"engine": "landmarks", "target_faces": [3]})
    assert "target photo has 1 face" in client.wait(bad, timeout=60).error


def test_ui_api_detects_then_swaps(ui_url, tmp_path, hanks, group):
    source, target = tmp_path / "hanks.png", tmp_path / "group.jpg"
    source.write_bytes(encode(hanks))
    group.save(target, quality=92)
    api = Client(ui_url, verbose=False)
    annotated, choices = api.predict(handle_file(str(target)), "landmarks", api_name="/detect_target_faces")
    assert Image.open(annotated).size == group.size
    out, info = api.predict(handle_file(str(source)), handle_file(str(target)), "landmarks", 1, [4], True,
                            api_name="/face_swap")
    assert Image.open(out).size == group.size and "target face(s) 4" in info
    assert os.path.getsize(out) > 0
