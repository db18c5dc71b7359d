"""Putting a warped source face into the target photo without the artifacts of a plain
paste: what is darker than either face's skin (hair across the forehead, a brim, glasses
frames) stays the target's, the target's mouth interior stays its own, colours follow the target's
skin region by region in Lab, and a Laplacian-pyramid blend joins the two at a feathered
edge eroded inside the jaw and hair line (unlike Poisson blending, it cannot pull in dark
colours from the border). All arrays are one crop around the target face."""
from __future__ import annotations

import numpy as np

from pipelines.face_swap import mesh_regions as regions

ERODE = 0.02  # of the face's width: the pasted edge stays this far inside the jaw and hair line
FEATHER = 0.025  # of the face's width: the Gaussian that softens that edge
DARKER_THAN_SKIN = 12.0  # this far (L, 0..255) below the darkest 1 % of the cheeks and nose: not skin
GREY_CHROMA = 2.5  # a source whose skin chroma varies less than this (Lab units) is a greyscale photo


def blend_mask(warped_lab: np.ndarray, target_lab: np.ndarray, points: np.ndarray, covered: np.ndarray
               ) -> np.ndarray:
    """Where the source face replaces the target's, as a float alpha in 0..1: inside the
    face outline and the warp, less what is not skin on either face (outside the features
    and the skin between them), eroded inside the jaw and hair line, then feathered."""
    import cv2

    shape = target_lab.shape[:2]
    width = regions.face_width(points)
    keep = regions.pasted_outline(shape, points) & covered
    protected = (regions.features(shape, points) > 0) | (regions.core(shape, points) > 0)
    cheeks = regions.skin_patches(shape, points, regions.CHEEKS + regions.NOSE)
    speck = np.ones((max(3, round(width * 0.02)) | 1,) * 2, np.uint8)
    # the source's occluders (sampled only where its warp reached), then the target's own
    for lab, sampled in ((warped_lab, cheeks & covered), (target_lab, cheeks)):
        occluded = (occluders(lab, sampled) & ~protected).astype(np.uint8) * 255
        keep[cv2.dilate(cv2.morphologyEx(occluded, cv2.MORPH_OPEN, speck), speck) > 0] = 0
    keep = cv2.erode(keep, np.ones((max(3, round(width * ERODE)) | 1,) * 2, np.uint8))
    return cv2.GaussianBlur(keep.astype(np.float32) / 255, (0, 0), max(1.0, width * FEATHER))


def inner_mouth(shape: tuple[int, int], points: np.ndarray) -> np.ndarray:
    """The target's mouth opening (and a pixel or two around it) as a float weight: put back
    after blending, so a source's teeth never land on closed lips, nor its closed lips on an
    open mouth."""
    import cv2

    mouth = regions.polygon(shape, points, regions.INNER_MOUTH)
    grow = max(3, round(regions.face_width(points) * 0.015)) | 1
    mouth = cv2.dilate(mouth, np.ones((grow, grow), np.uint8)).astype(np.float32) / 255
    return np.maximum(mouth, cv2.GaussianBlur(mouth, (0, 0), 1.0))


def occluders(lab: np.ndarray, cheeks: np.ndarray) -> np.ndarray:
    """Pixels darker than any of this face's bare skin: hair, a hat's brim, glasses frames.
    The skin's range comes from the cheeks and nose (hair seldom covers them, while it
    often lies across the forehead); both cheeks are sampled, so the shadowed side of a
    face lit from one side counts as skin. No skin in sight (cheeks cut off): no occluders."""
    if not cheeks.any():
        return np.zeros(lab.shape[:2], bool)
    floor = np.percentile(lab[..., 0][cheeks > 0], 1) - DARKER_THAN_SKIN
    return lab[..., 0] < floor


def match_colours(warped_lab: np.ndarray, target_lab: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The warped face's colours moved, region by region, to the target's: around each
    pixel, the two faces' skin means (a smooth field over the face, so a lit forehead and a
    shadowed jaw each get their own) replace one another, and the chroma around them is
    made no more varied than the target's (a colour face on a grey photo comes out grey).
    A greyscale source takes the target's chroma outright."""
    shape = target_lab.shape[:2]
    bare = (regions.polygon(shape, points, regions.FACE_OVAL) > 0) & (regions.features(shape, points) == 0)
    bare &= regions.polygon(shape, points, regions.INNER_MOUTH) == 0
    sigma = regions.face_width(points) / 2
    weight = wide_blur(bare.astype(np.float32), sigma) + 1e-6
    source_spread, target_spread = warped_lab[bare].std(0), target_lab[bare].std(0)
    gain = np.ones(3, np.float32)
    gain[1:] = np.minimum(1.0, target_spread[1:] / np.maximum(source_spread[1:], 1e-3))
    corrected = np.empty_like(warped_lab)
    for channel in range(3):
        target_mean, source_mean = (wide_blur(lab[..., channel] * bare, sigma) / weight
                                    for lab in (target_lab, warped_lab))
        corrected[..., channel] = target_mean + (warped_lab[..., channel] - source_mean) * gain[channel]
    if (source_spread[1:] < GREY_CHROMA).all():
        corrected[..., 1:] = target_lab[..., 1:]
    return corrected


def wide_blur(field: np.ndarray, sigma: float) -> np.ndarray:
    """A Gaussian blur of a wide `sigma`, run where the image is scaled down until sigma is
    8 px, then scaled back: the result is smooth anyway, and a 12 MP photo's face (sigma
    about 700 px) then takes milliseconds instead of 30 seconds."""
    import cv2

    scale = min(1.0, 8 / sigma)
    small = cv2.resize(field, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else field
    blurred = cv2.GaussianBlur(small, (0, 0), sigma * scale)
    return cv2.resize(blurred, field.shape[1::-1], interpolation=cv2.INTER_LINEAR) if scale < 1 else blurred


def laplacian_blend(face: np.ndarray, target: np.ndarray, alpha: np.ndarray, levels: int = 5) -> np.ndarray:
    """`face` over `target` (float32 arrays) through `alpha`, band by band: fine detail
    joins over a few pixels, broad colour over many, so no seam and no halo."""
    import cv2

    levels = max(1, min(levels, int(np.log2(max(2, min(alpha.shape)))) - 3))
    a = alpha[..., None] if face.ndim == 3 else alpha
    face_pyramid, target_pyramid, alpha_pyramid = [face], [target], [a]
    for _ in range(levels):
        face_pyramid.append(cv2.pyrDown(face_pyramid[-1]))
        target_pyramid.append(cv2.pyrDown(target_pyramid[-1]))
        alpha_pyramid.append(cv2.pyrDown(alpha_pyramid[-1]).reshape(face_pyramid[-1].shape[:2] + a.shape[2:]))
    blended = face_pyramid[-1] * alpha_pyramid[-1] + target_pyramid[-1] * (1 - alpha_pyramid[-1])
    for level in range(levels - 1, -1, -1):
        size = (face_pyramid[level].shape[1], face_pyramid[level].shape[0])
        detail = [p[level] - cv2.pyrUp(p[level + 1], dstsize=size) for p in (face_pyramid, target_pyramid)]
        band = detail[0] * alpha_pyramid[level] + detail[1] * (1 - alpha_pyramid[level])
        blended = cv2.pyrUp(blended, dstsize=size) + band
    return blended
