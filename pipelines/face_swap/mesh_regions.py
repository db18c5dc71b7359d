"""Where things are on a face, from MediaPipe's 468-point face mesh: its outline, the eyes,
brows and lips, the inside of the mouth, and patches of bare skin (cheeks, forehead, nose)
whose lightness tells skin from hair or glasses frames. Point numbers are the mesh's own
(mediapipe/python/solutions/face_mesh_connections.py)."""
from __future__ import annotations

import numpy as np

FACE_OVAL = [10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148,
             176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109]
INNER_MOUTH = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95]
LIPS = [61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146]
RIGHT_EYE = [33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7]
LEFT_EYE = [263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249]
RIGHT_BROW = [70, 63, 105, 66, 107, 55, 65, 52, 53, 46]
LEFT_BROW = [300, 293, 334, 296, 336, 285, 295, 282, 283, 276]
FEATURES = (RIGHT_EYE, LEFT_EYE, RIGHT_BROW, LEFT_BROW, LIPS)
CHEEKS = [50, 280, 117, 346, 123, 352, 205, 425, 187, 411]
FOREHEAD = [151, 9, 108, 337, 69, 299]
NOSE = [6, 197, 195, 5]
SKIN = CHEEKS + FOREHEAD + NOSE
HAIRLINE_DROP = 0.25


def face_width(points: np.ndarray) -> float:
    return float(np.ptp(points[FACE_OVAL, 0]))


def polygon(shape: tuple[int, int], points: np.ndarray, indices: list[int]) -> np.ndarray:
    """A uint8 mask (255 inside) of the polygon through `points[indices]`."""
    import cv2

    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(points[indices]).astype(np.int32)], 255)
    return mask


def pasted_outline(shape: tuple[int, int], points: np.ndarray) -> np.ndarray:
    """The face's outline with its top brought down `HAIRLINE_DROP` of the way to the eyes:
    the hair line (and a fringe, or the light band along it) stays the target's."""
    outline = points[FACE_OVAL].copy()
    eyes = points[RIGHT_EYE + LEFT_EYE, 1].mean()
    above = outline[:, 1] < eyes
    outline[above, 1] += (eyes - outline[above, 1]) * HAIRLINE_DROP
    return polygon(shape, outline, list(range(len(outline))))


def features(shape: tuple[int, int], points: np.ndarray) -> np.ndarray:
    """Eyes, brows and lips, grown a little (their edges are not skin either)."""
    import cv2

    mask = np.zeros(shape, np.uint8)
    for indices in FEATURES:
        mask |= polygon(shape, points, indices)
    grow = max(3, round(face_width(points) * 0.03)) | 1
    return cv2.dilate(mask, np.ones((grow, grow), np.uint8))


def core(shape: tuple[int, int], points: np.ndarray) -> np.ndarray:
    """The eyes, brows, nose and mouth and the skin between them: what makes a face who it
    is. Its shading (eye sockets, nostrils, a beard's shadow) is never taken for an occluder."""
    import cv2

    centre = np.concatenate([points[indices] for indices in FEATURES])
    mask = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.round(centre).astype(np.int32)), 255)
    return mask


def skin_patches(shape: tuple[int, int], points: np.ndarray, where: list[int] = SKIN) -> np.ndarray:
    """Small discs around the points `where` (by default on the cheeks, forehead and nose:
    bare skin on nearly every face)."""
    import cv2

    mask = np.zeros(shape, np.uint8)
    radius = max(2, round(face_width(points) * 0.045))
    for x, y in np.round(points[where]).astype(int):
        cv2.circle(mask, (int(x), int(y)), radius, 255, -1)
    return mask
