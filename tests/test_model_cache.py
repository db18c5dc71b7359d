"""The per-worker model cache: models of one kind evict each other, never another kind's."""
from __future__ import annotations

from pipelines.context import RunContext
from pipelines.registry import cached, load_model
from pipelines.remove_background import rembg_models


def test_generation_models_do_not_evict_the_background_remover(monkeypatch, u2netp_installed):
    monkeypatch.setenv("STUDIO_MAX_LOADED_MODELS", "1")
    loads = []
    u2netp = next(engine for engine in rembg_models.ENGINES if engine.name == "u2netp")
    session = load_model(u2netp, RunContext())  # a real ONNX session
    for model in ("sd-a", "sd-b", "sd-c"):  # a user switching diffusion models
        cached(f"diffusers:{model}", lambda model=model: loads.append(model) or model, RunContext())
    assert load_model(u2netp, RunContext()) is session  # still loaded
    cached("diffusers:sd-a", lambda: loads.append("sd-a again") or "sd-a", RunContext())
    assert loads == ["sd-a", "sd-b", "sd-c", "sd-a again"]  # within a family, one stays (the limit)
