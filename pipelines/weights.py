"""Model files: where they live, whether they are there, and fetching them with progress.

Weights are described as data (`WeightFile`); every engine uses `ensure_weights`
so that the download progress, the checksum and the "where to put it" message
are the same everywhere.
"""
from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

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

    @property
    def path(self) -> Path:
        return self.folder / self.filename

    def present(self) -> bool:
        return self.path.is_file() and self.path.stat().st_size > 0

    def missing(self, reason: str) -> WeightsMissing:
        return WeightsMissing(self.filename, str(self.folder), self.url, reason)


def ensure_weights(weight: WeightFile, ctx: RunContext) -> Path:
    """Return the file's path, downloading it first when it is absent and allowed."""
    if weight.present():
        return weight.path
    if not weight.url:
        raise weight.missing("it cannot be downloaded automatically")
    if not downloads_allowed():
        raise weight.missing("downloads are turned off by STUDIO_OFFLINE/HF_HUB_OFFLINE")
    try:
        _download(weight, ctx)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise weight.missing(f"download failed: {getattr(exc, 'reason', exc)}") from None
    return weight.path


def _download(weight: WeightFile, ctx: RunContext) -> None:
    weight.folder.mkdir(parents=True, exist_ok=True)
    partial = weight.path.with_name(weight.filename + ".part")
    digest = hashlib.md5()
    stage = f"downloading {weight.filename}"
    ctx.progress(0, stage)
    try:
        with urllib.request.urlopen(weight.url, timeout=30) as response, open(partial, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0)
            done = 0
            while chunk := response.read(CHUNK):
                ctx.check_cancelled()
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if total:
                    ctx.progress(100 * done / total, f"{stage} {100 * done / total:.0f} % of {total / 1e6:.1f} MB")
        if weight.md5 and digest.hexdigest() != weight.md5:
            raise OSError(f"checksum mismatch for {weight.filename}")
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(weight.path)
    ctx.progress(100, f"downloaded {weight.filename}")
