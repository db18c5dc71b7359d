"""Model files: where they live, whether they are there, and fetching them with progress.

Weights are described as data (`WeightFile`); every engine uses `ensure_weights`
so that the download progress, the verification and the "where to put it" message
are the same everywhere.

Every download is verified before it is kept. A file whose checksum is known is
pinned (md5 as IOPaint and rembg pin theirs, or sha256), and a mirror set by an
environment variable is held to the same pin. A publisher's checksum file beside
the model (FaceFusion's `.hash`, a CRC32) is fetched and compared. With neither,
the file's sha256 is recorded at its first download and shown. A mismatch deletes
the file and says so.
"""
from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.context import RunContext
from pipelines.errors import WeightsMissing

CHUNK = 1 << 20


def models_home() -> Path:
    """`STUDIO_MODELS_DIR`, else `$XDG_CACHE_HOME/ai-studio/models` (~/.cache/...)."""
    configured = os.environ.get("STUDIO_MODELS_DIR")
    if configured:
        return Path(configured).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "ai-studio" / "models"


def downloads_allowed() -> bool:
    """Downloads are off when `STUDIO_OFFLINE` (or Hugging Face's `HF_HUB_OFFLINE`) is set."""
    return not any(os.environ.get(var, "") not in ("", "0") for var in ("STUDIO_OFFLINE", "HF_HUB_OFFLINE"))


@dataclass(frozen=True)
class WeightFile:
    filename: str
    folder: Path
    url: str | None = None
    md5: str | None = None
    sha256: str | None = None
    hash_url: str | None = None  # the publisher's CRC32 file beside the model (FaceFusion's .hash)
    size: int | None = None  # bytes, for "downloads on first use (N MB)" and the progress without Content-Length

    @property
    def path(self) -> Path:
        return self.folder / self.filename

    @property
    def recorded_sha256(self) -> Path:
        """Where the sha256 of a downloaded file is kept (shown by `launch.py download`)."""
        return self.folder / f"{self.filename}.sha256"

    def present(self) -> bool:
        return self.path.is_file() and self.path.stat().st_size > 0

    def missing(self, reason: str) -> WeightsMissing:
        return WeightsMissing(self.filename, str(self.folder), self.url, reason)


class ChecksumMismatch(OSError):
    pass


def ensure_weights(weight: WeightFile, ctx: RunContext) -> Path:
    """Return the file's path, downloading (and verifying) it first when it is absent and allowed."""
    if weight.present():
        return weight.path
    if not weight.url:
        raise weight.missing("it cannot be downloaded automatically")
    if not downloads_allowed():
        raise weight.missing("downloads are turned off by STUDIO_OFFLINE/HF_HUB_OFFLINE")
    try:
        sha256 = _download(weight, ctx)
    except ChecksumMismatch as exc:
        raise weight.missing(f"{exc}; the downloaded file was deleted") from None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise weight.missing(f"download failed: {getattr(exc, 'reason', exc)}") from None
    if not (weight.md5 or weight.sha256 or weight.hash_url):
        ctx.note(f"{weight.filename} has no published checksum; its sha256 at download was {sha256} "
                 f"(kept in {weight.recorded_sha256.name}).")
    return weight.path


def _download(weight: WeightFile, ctx: RunContext) -> str:
    """Fetch into a .part file, verify, then move into place; returns the sha256."""
    weight.folder.mkdir(parents=True, exist_ok=True)
    partial = weight.path.with_name(weight.filename + ".part")
    digests = {"md5": hashlib.md5(), "sha256": hashlib.sha256()}
    crc = 0
    stage = f"downloading {weight.filename}"
    ctx.progress(0, stage)
    try:
        published_crc = _published_crc(weight.hash_url) if weight.hash_url else None
        with urllib.request.urlopen(weight.url, timeout=30) as response, open(partial, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or weight.size or 0
            done = 0
            while chunk := response.read(CHUNK):
                ctx.check_cancelled()
                out.write(chunk)
                for digest in digests.values():
                    digest.update(chunk)
                crc = zlib.crc32(chunk, crc)
                done += len(chunk)
                if total:
                    ctx.progress(100 * done / total, f"{stage} {100 * done / total:.0f} % of {total / 1e6:.1f} MB")
        _check_pins(weight, digests)
        if published_crc is not None and crc != published_crc:
            raise ChecksumMismatch(f"its CRC32 is {crc:08x}, not the publisher's {published_crc:08x}")
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(weight.path)
    sha256 = digests["sha256"].hexdigest()
    weight.recorded_sha256.write_text(sha256 + "\n")
    ctx.progress(100, f"downloaded {weight.filename} (verified)")
    return sha256


def _published_crc(url: str) -> int:
    with urllib.request.urlopen(url, timeout=30) as response:
        text = response.read(64).decode("ascii", "replace").strip()
    try:
        return int(text.split()[0], 16)
    except (ValueError, IndexError):
        raise ChecksumMismatch(f"the publisher's checksum file {url} holds no CRC32") from None


def _check_pins(weight: WeightFile, digests: dict[str, Any]) -> None:
    """ChecksumMismatch unless the file's md5 and sha256 match the pins it has."""
    for kind in ("md5", "sha256"):
        expected, got = getattr(weight, kind), digests[kind].hexdigest()
        if expected and got != expected.lower():
            raise ChecksumMismatch(f"its {kind} is {got}, not the pinned {expected}")


def verify_present(weight: WeightFile) -> str:
    """Check a file already on disk against its pin: "verified", "recorded sha256 …",
    or ChecksumMismatch (the file is left alone: someone put it there by hand)."""
    digests = {"md5": hashlib.md5(), "sha256": hashlib.sha256()}
    with open(weight.path, "rb") as source:
        while chunk := source.read(CHUNK):
            for digest in digests.values():
                digest.update(chunk)
    try:
        _check_pins(weight, digests)
    except ChecksumMismatch as exc:
        raise ChecksumMismatch(f"{weight.path}: {exc}") from None
    if weight.md5 or weight.sha256:
        return "verified against its pinned checksum"
    return f"sha256 {digests['sha256'].hexdigest()} (no pinned checksum)"
