"""Tile-by-tile runs of one-call models: same picture, progress between tiles, cancel
between tiles (what keeps a 16 MP style preset cancellable without killing the worker)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pipelines.context import RunContext
from pipelines.errors import Cancelled
from pipelines.tiles import run_tiled


def photo(width: int, height: int) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def test_an_identity_model_gives_back_the_photo_and_the_bar_moves_per_tile():
    reports = []
    ctx = RunContext(report=lambda percent, stage, preview=None: reports.append((percent, stage)))
    image = photo(2500, 1300)
    out = run_tiled(image, lambda tile: tile, ctx, "preset 3")
    assert np.abs(np.asarray(out, int) - np.asarray(image, int)).max() <= 1
    assert [stage for _, stage in reports] == [f"preset 3: tile {i}/6" for i in range(1, 7)]
    assert [p for p, _ in reports] == sorted(p for p, _ in reports)


def test_a_small_photo_is_one_call():
    calls = []
    run_tiled(photo(800, 600), lambda tile: calls.append(tile.size) or tile, RunContext(), "x")
    assert calls == [(800, 600)]


def test_cancel_stops_between_tiles():
    calls = []
    cancelled = {"now": False}

    def model(tile: Image.Image) -> Image.Image:
        calls.append(tile.size)
        cancelled["now"] = True  # the user presses Cancel while the first tile runs
        return tile

    with pytest.raises(Cancelled):
        run_tiled(photo(3000, 3000), model, RunContext(is_cancelled=lambda: cancelled["now"]), "x")
    assert len(calls) == 1
