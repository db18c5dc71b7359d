"""The environment the requirements build: insightface asks for opencv-python and
mediapipe for opencv-contrib-python, and both install into the same cv2 folder.
Whichever wins, everything the studio calls must be there, and the packages must
import side by side."""
from __future__ import annotations

import subprocess
import sys


def test_one_working_cv2_with_everything_the_studio_calls():
    import cv2

    for name in ("inpaint", "stylization", "pencilSketch", "detailEnhance", "seamlessClone", "warpAffine",
                 "getAffineTransform", "convexHull", "fillConvexPoly", "cvtColor", "copyMakeBorder"):
        assert hasattr(cv2, name), f"cv2.{name} is missing"


def test_mediapipe_insightface_and_rembg_import_together():
    import insightface.app  # noqa: F401
    import mediapipe.python.solutions.face_mesh  # noqa: F401
    import rembg.sessions  # noqa: F401


def test_pip_check_is_clean():
    result = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
