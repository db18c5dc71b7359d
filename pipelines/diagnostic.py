"""Identity operation for checking the queue itself.

It returns its input after `steps` pauses, reporting progress and honouring
cancel at each one, with no model cost. The queue tests and benchmarks use it; it
is offered only where STUDIO_DIAGNOSTIC=1 (see pipelines.catalogue).
"""
from __future__ import annotations

import time

from PIL import Image
from pydantic import BaseModel, Field

from pipelines.context import RunContext
from pipelines.registry import Engine, Example, Operation, Result, pick_engine


class DiagnosticParams(BaseModel):
    engine: str = Field("identity-cpu", description="identity-cpu, identity-gpu or identity-light: picks the queue.")
    steps: int = Field(0, ge=0, le=10_000)
    step_seconds: float = Field(0.0, ge=0.0, le=10.0)
    crash: bool = Field(False, description="End with an unexpected error (what a bug in a pipeline does).")


class IdentityEngine(Engine):
    def __init__(self, device: str, light: bool = False):
        kind = "light" if light else device
        self.name, self.device, self.light, self.label = f"identity-{kind}", device, light, f"identity ({kind} work)"

    def load(self) -> None:
        return None


def echo(inputs: dict[str, Image.Image], params: DiagnosticParams, ctx: RunContext) -> Result:
    engine = pick_engine(OPERATION, params.engine, ctx)
    for step in range(params.steps):
        ctx.check_cancelled()
        ctx.progress(100 * step / params.steps, f"step {step + 1}/{params.steps} under way")  # past the check
        time.sleep(params.step_seconds)
        ctx.progress(100 * (step + 1) / params.steps, f"step {step + 1}/{params.steps}")
    if params.crash:
        raise RuntimeError("/opt/studio/secret/internal.bin: an internal detail")
    return Result([inputs["image"]], engine.name)


OPERATION = Operation(
    name="diagnostic",
    title="Queue diagnostic",
    params=DiagnosticParams,
    inputs=("image",),
    engines={e.name: e for e in (IdentityEngine("cpu"), IdentityEngine("gpu"), IdentityEngine("cpu", light=True))},
    run=echo,
    auto_order=("identity-cpu",),
    first_use=("identity-cpu",),
    time_limit=3600,
    example=Example({"image": "astronaut.jpg"}, {"steps": 1}, (512, 512), "RGB"),
)
