"""The offline face swap: MediaPipe's face detector and 468-point face mesh (both
ship in the mediapipe wheel), a triangle-by-triangle warp of the source face onto
each target face, then `mesh_blend`: occluders and the mouth's inside kept from the
target, colours matched region by region, Laplacian blending. No weights to download."""
from __future__ import annotations

from typing import Any

import numpy as np

from pipelines.face_swap import mesh_blend
from pipelines.face_swap.base import Face, FaceNotPlaced, FaceSwapEngine, FaceSwapParams, box_around

DETECT_CONFIDENCE = 0.6
MESH_CROP = 256  # face crops are scaled to this before the mesh runs, so small faces work too


class LandmarkEngine(FaceSwapEngine):
    name = "landmarks"
    light = True
    label = "Face mesh warp (MediaPipe, offline)"
    hint = "insightface's inswapper gives more natural results."

    def load(self) -> Any:
        from mediapipe.python.solutions.face_detection import FaceDetection
        from mediapipe.python.solutions.face_mesh import FaceMesh

        return (FaceDetection(model_selection=0, min_detection_confidence=DETECT_CONFIDENCE),
                FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=False))

    def detect(self, model: Any, rgb: np.ndarray) -> list[Face]:
        detector, mesh = model
        faces: list[Face] = []
        for box, score in _detect_boxes(detector, rgb):
            points = _mesh_points(mesh, rgb, box)
            if points is None:
                continue
            mesh_box = (*points.min(0), *points.max(0))
            # the mesh confirms the detection only if it found the face where the detector did
            if _iou(box, mesh_box) > 0.3 and all(_iou(mesh_box, face.box) < 0.3 for face in faces):
                faces.append(Face(tuple(float(v) for v in mesh_box), score, points))
        return faces

    def swap(self, model: Any, source: np.ndarray, source_face: Face, target: np.ndarray, target_face: Face,
             params: FaceSwapParams) -> np.ndarray:
        """The source face warped onto the target's mesh, triangle by triangle, then put in
        place by `mesh_blend`; all on a crop around the target face (a 12 MP photo costs no
        more than a small one)."""
        import cv2

        margin = 0.25 * np.ptp(target_face.points, 0).max()  # a quarter of the face more on each side
        x0, y0, x1, y1 = box_around(target_face.points, margin, target.shape)
        crop = target[y0:y1, x0:x1]
        points = target_face.points - np.array([x0, y0], np.float32)
        warped, covered = _warp_face(source, source_face.points, points, crop.shape)
        warped_lab, crop_lab = (cv2.cvtColor(a, cv2.COLOR_RGB2LAB).astype(np.float32) for a in (warped, crop))
        alpha = mesh_blend.blend_mask(warped_lab, crop_lab, points, covered)
        if alpha.max() < 0.5:
            raise FaceNotPlaced("no part of the source face fits on it (it is too small, cut off by the photo's "
                                "edge, or turned away)")
        if params.color_correct:
            warped_lab = mesh_blend.match_colours(warped_lab, crop_lab, points)
        face = cv2.cvtColor(np.clip(warped_lab, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)
        face = np.where(alpha[..., None] > 0.01, face, crop).astype(np.float32)  # nothing dark bleeds in
        blended = mesh_blend.laplacian_blend(face, crop.astype(np.float32), alpha)
        mouth = mesh_blend.inner_mouth(crop.shape[:2], points)[..., None]
        blended = np.clip(blended * (1 - mouth) + crop * mouth + 0.5, 0, 255).astype(np.uint8)
        reach = cv2.dilate((alpha > 0.002).astype(np.uint8), np.ones((9, 9), np.uint8)) > 0  # the blend's spread
        result = target.copy()
        result[y0:y1, x0:x1][reach] = blended[reach]
        return result


def _detect_boxes(detector: Any, rgb: np.ndarray) -> list[tuple[tuple[float, float, float, float], float]]:
    """Short-range detection over the whole photo and over overlapping tiles at two
    scales (small faces in group photos), merged by non-maximum suppression."""
    height, width = rgb.shape[:2]
    longest = max(height, width)
    found = []
    for side in (longest, longest // 2, longest // 3):
        for x, y in _tile_origins(width, height, side):
            tile = np.ascontiguousarray(rgb[y:y + side, x:x + side])
            for detection in detector.process(tile).detections or []:
                b = detection.location_data.relative_bounding_box
                th, tw = tile.shape[:2]
                box = (x + b.xmin * tw, y + b.ymin * th, x + (b.xmin + b.width) * tw, y + (b.ymin + b.height) * th)
                found.append((box, float(detection.score[0])))
    return _suppress(found)


def _tile_origins(width: int, height: int, side: int) -> list[tuple[int, int]]:
    def starts(length: int) -> list[int]:
        if length <= side:
            return [0]
        count = int(np.ceil(length / side * 1.5))  # tiles overlap by about a third
        return [int(v) for v in np.linspace(0, length - side, count)]

    return [(x, y) for y in starts(height) for x in starts(width)]


def _suppress(found: list, overlap: float = 0.3) -> list:
    kept: list = []
    for box, score in sorted(found, key=lambda item: -item[1]):
        if all(_iou(box, other) < overlap for other, _ in kept):
            kept.append((box, score))
    return kept


def _iou(a: tuple, b: tuple) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _mesh_points(mesh: Any, rgb: np.ndarray, box: tuple) -> np.ndarray | None:
    """468 landmarks for the face in `box`, found on an enlarged crop around it."""
    import cv2

    x0, y0, x1, y1 = box
    cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0) * 0.9
    left, top = int(max(0, cx - half)), int(max(0, cy - half))
    right, bottom = int(min(rgb.shape[1], cx + half)), int(min(rgb.shape[0], cy + half))
    crop = rgb[top:bottom, left:right]
    if crop.size == 0:
        return None
    scale = MESH_CROP / max(crop.shape[:2])
    crop = cv2.resize(crop, (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale))))
    result = mesh.process(np.ascontiguousarray(crop))
    if not result.multi_face_landmarks:
        return None
    landmarks = result.multi_face_landmarks[0].landmark
    points = np.array([(p.x * crop.shape[1], p.y * crop.shape[0]) for p in landmarks], np.float32)
    return points / scale + np.array([left, top], np.float32)


def _warp_face(source: np.ndarray, src: np.ndarray, dst: np.ndarray, shape: tuple) -> tuple[np.ndarray, np.ndarray]:
    """The source face warped onto the target's landmarks, triangle by triangle
    (Delaunay on the target's points); returns the image and where it was drawn."""
    import cv2
    from scipy.spatial import Delaunay

    warped = np.zeros(shape, np.uint8)
    covered = np.zeros(shape[:2], np.uint8)
    for triangle in Delaunay(dst).simplices:
        s, d = src[triangle].astype(np.float32), dst[triangle].astype(np.float32)
        sx, sy, sw, sh = cv2.boundingRect(s)
        dx, dy, dw, dh = cv2.boundingRect(d)
        if sw == 0 or sh == 0 or dw == 0 or dh == 0 or dx < 0 or dy < 0:
            continue
        dw, dh = min(dw, shape[1] - dx), min(dh, shape[0] - dy)
        if dw <= 0 or dh <= 0:
            continue
        patch = source[max(0, sy):sy + sh, max(0, sx):sx + sw]
        if patch.size == 0:
            continue
        matrix = cv2.getAffineTransform((s - [max(0, sx), max(0, sy)]).astype(np.float32),
                                        (d - [dx, dy]).astype(np.float32))
        piece = cv2.warpAffine(patch, matrix, (dw, dh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        inside = np.zeros((dh, dw), np.uint8)
        cv2.fillConvexPoly(inside, np.round(d - [dx, dy]).astype(np.int32), 255)
        region = warped[dy:dy + dh, dx:dx + dw]
        region[inside > 0] = piece[inside > 0]
        covered[dy:dy + dh, dx:dx + dw] |= inside
    return warped, covered
