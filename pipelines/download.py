"""`python launch.py download [operation | operation/engine | all] ...`: fetch and verify
an engine's weights ahead of time, with progress, like `rembg d` and `iopaint download`,
so a GPU host is ready before it serves. Files already there are checked against their
pinned checksums. Engines whose model is the job's diffusion model fetch the
operation's default model into the Hugging Face cache."""
from __future__ import annotations

import sys

from pipelines import diffusion
from pipelines.catalogue import OPERATIONS
from pipelines.context import RunContext
from pipelines.errors import StudioError
from pipelines.registry import Engine, Operation
from pipelines.weights import ChecksumMismatch, WeightFile, ensure_weights, verify_present


def selected(targets: list[str]) -> list[tuple[Operation, Engine]]:
    """The (operation, engine) pairs that `targets` name; ValueError for a wrong name."""
    pairs = []
    for target in targets or ["all"]:
        name, _, engine = target.partition("/")
        if name == "all":
            pairs += [(op, e) for op in OPERATIONS.values() for e in op.engines.values()]
        elif name not in OPERATIONS:
            raise ValueError(f"unknown operation {name!r}: choose from {', '.join(OPERATIONS)} or all")
        elif engine:
            pairs.append((OPERATIONS[name], OPERATIONS[name].engine(engine)))
        else:
            pairs += [(OPERATIONS[name], e) for e in OPERATIONS[name].engines.values()]
    return list({(op.name, e.name): (op, e) for op, e in pairs}.values())  # each once, in order


def console(prefix: str) -> RunContext:
    shown = {"stage": ""}

    def report(percent: float, stage: str, _: object) -> None:
        if stage != shown["stage"]:
            shown["stage"] = stage
            print(f"  {prefix}: {stage}", flush=True)

    return RunContext(report=report)


def fetch(weight: WeightFile) -> str:
    """Download and verify one file, or verify the one there; a line saying how it went."""
    if weight.present():
        return f"{weight.path}: {verify_present(weight)}"
    ctx = console(weight.filename)
    ensure_weights(weight, ctx)
    return f"{weight.path}: downloaded and verified" + (f" ({ctx.notes[0]})" if ctx.notes else "")


def default_model(op: Operation) -> str | None:
    """The diffusion model an operation uses unless a job names another."""
    field = op.params.model_fields.get("model")
    return field.default if field else None


def main(targets: list[str]) -> int:
    try:
        pairs = selected(targets)
    except (ValueError, StudioError) as exc:
        print(f"download: {exc}", file=sys.stderr)
        return 2
    failed = 0
    for op, engine in pairs:
        print(f"{op.name}/{engine.name} ({engine.label})", flush=True)
        try:
            model = default_model(op) if isinstance(engine, diffusion.UsesDiffusers) else None
            if model:
                source = diffusion.resolve_model(model)
                print(f"  {model}: {diffusion.model_folder(source, console(source))}")
            for weight in engine.weights() + engine.companions():
                print(f"  {fetch(weight)}", flush=True)
        except (StudioError, ChecksumMismatch) as exc:
            failed += 1
            print(f"  FAILED: {exc}", file=sys.stderr, flush=True)
    return 1 if failed else 0
