"""The engine interface, the operation catalogue entry, and engine choice.

An *operation* (remove background, ...) has one pydantic params model, the
names of its input images, and several *engines*: ways to do it, each with its
own model files and device. `pick_engine` resolves "auto" the same way for
every operation; `load_model` keeps loaded models per process.
"""
from __future__ import annotations

import abc
import gc
import os
import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Generic, TypeVar

from PIL import Image
from pydantic import BaseModel

from pipelines.context import RunContext
from pipelines.errors import InvalidInput, WeightsMissing
from pipelines.weights import WeightFile, ensure_weights

AUTO = "auto"


class Engine(abc.ABC):
    """One way of doing an operation. Heavy imports belong in `load`."""

    name: str
    label: str
    device: str = "cpu"
    hint: str = ""  # how to get something better, shown when this engine ran as a fallback
    # short work on one core (OpenCV, the face mesh): a host runs as many such jobs at once as it
    # has cores (tasks.routing). Not for engines whose library already uses every core (ONNX Runtime,
    # torch): two of those at once ran at half the speed of one after the other (bench.cpu_sharing).
    light: bool = False

    def weights(self) -> list[WeightFile]:
        return []

    def companions(self) -> list[WeightFile]:
        """Files the engine's results use when present but can do without (the face
        enhancer after a swap); `launch.py download` fetches them with the weights."""
        return []

    def weights_present(self) -> bool:
        return all(w.present() for w in self.weights())

    def download_note(self) -> str:
        """What a first use downloads, for the engine lists ("554 MB")."""
        sizes = [w.size for w in self.weights()]
        return f"{sum(sizes) / 1e6:.0f} MB" if sizes and all(sizes) else ""

    def fetch_weights(self, ctx: RunContext) -> None:
        for weight in self.weights():
            ensure_weights(weight, ctx)

    @abc.abstractmethod
    def load(self) -> Any:
        """Build the model object; called once per process thanks to `load_model`."""


@dataclass(frozen=True)
class Result:
    images: list[Image.Image]
    engine: str
    detail: str = ""  # what else the user should see about the run: the style, the seed, ...


@dataclass(frozen=True)
class Example:
    """A small job of an operation, and what it gives: sample photos (pipelines.samples) by
    input name and parameters (the rest default). One contract test runs it with every
    engine whose weights are present, through REST, the Gradio API and the page."""

    inputs: dict[str, str]
    params: dict[str, Any]
    size: tuple[int, int]  # the result's
    mode: str


E = TypeVar("E", bound=Engine)


@dataclass(frozen=True)
class Operation(Generic[E]):
    """A catalogue entry: everything the queue and the UI need to know about an operation."""

    name: str
    title: str
    params: type[BaseModel]
    inputs: tuple[str, ...]  # required input images
    engines: dict[str, E]
    run: Callable[[dict[str, Image.Image], Any, RunContext], Result]
    auto_order: tuple[str, ...]  # best first; "auto" takes the first whose weights are present
    first_use: tuple[str, ...]  # when none is present, "auto" tries to fetch these, in order
    auto_device: str = "cpu"  # the queue of an auto job while no worker is alive to say better (tasks.routing)
    time_limit: int = 600
    optional_inputs: tuple[str, ...] = ()
    # extra checks at submit: (every input's upright size, the `masks` decoded, the params);
    # the other inputs are not decoded there
    check_inputs: Callable[[dict[str, tuple[int, int]], dict[str, Image.Image], Any], None] | None = None
    # inputs read as masks: decoded in the mode they are stored in (a 12 MP mask takes 12 MB, not 36),
    # at submit for `check_inputs` and by the worker
    masks: tuple[str, ...] = ()
    photo_input: str = "image"  # the input the result is made from: it passes on its colour profile and EXIF
    # a job's compute in the operation's own unit, held to a budget per visitor (tasks.client)
    work: Callable[[Any], float] | None = None
    work_unit: str = ""
    example: Example | None = None

    @property
    def all_inputs(self) -> tuple[str, ...]:
        return self.inputs + self.optional_inputs

    def engine(self, name: str) -> E:
        try:
            return self.engines[name]
        except KeyError:
            choices = ", ".join(self.engines)
            raise InvalidInput(f"Unknown engine {name!r} for {self.title}; choose one of: {choices}.") from None


def installed_engines(operations: dict[str, Operation]) -> list[str]:
    """"<operation>/<engine>" for each engine that can run here without a download."""
    return [f"{op.name}/{name}" for op in operations.values() for name, engine in op.engines.items()
            if engine.weights_present()]


def pick_engine(op: Operation[E], requested: str, ctx: RunContext) -> E:
    """The engine to run: the one asked for (weights fetched if needed), or for
    "auto" the best with weights present, else the first that can be fetched,
    noting in `ctx` which file was missing and which engine ran instead."""
    if requested != AUTO:
        engine = op.engine(requested)
        engine.fetch_weights(ctx)
        return engine
    ranked = [op.engines[name] for name in op.auto_order]
    for engine in ranked:
        if engine.weights() and engine.weights_present():
            return engine
    missing: list[WeightsMissing] = []
    for engine in (op.engines[name] for name in op.first_use):
        try:
            engine.fetch_weights(ctx)
        except WeightsMissing as exc:
            missing.append(exc)
            continue
        if missing:  # one note, however many better engines lacked their files
            ctx.note(" ".join(map(str, missing)) + f" Ran {engine.label} instead. {engine.hint}".rstrip())
        return engine
    raise missing[-1]


_models: dict[str, OrderedDict[str, Any]] = {}  # family -> its loaded models, oldest first
_models_lock = threading.Lock()


def load_model(engine: Engine, ctx: RunContext) -> Any:
    """The engine's model, loaded once per process."""
    return cached(f"{type(engine).__module__}.{engine.name}", engine.load, ctx, f"loading model {engine.name}")


def model_family(key: str) -> str:
    """The kind of model a cache key names ("diffusers:<model>" or "pipelines.<family>....")."""
    return key.split(":", 1)[0] if ":" in key else key.split(".")[1] if key.startswith("pipelines.") else key


def cached(key: str, load: Callable[[], Any], ctx: RunContext, stage: str = "loading model") -> Any:
    """`load()`'s result, kept per process under `key`. Of each family (remove_background,
    style_transfer, face_swap, remove_object, diffusers) the most recent `STUDIO_MAX_LOADED_MODELS`
    (default 3) stay; older ones are dropped first, so a worker's memory stays bounded
    when users switch models, and a generation never evicts the background remover."""
    with _models_lock:
        models = _models.setdefault(model_family(key), OrderedDict())
        if key in models:
            models.move_to_end(key)
            return models[key]
        ctx.progress(0, stage)
        limit = max(1, int(os.environ.get("STUDIO_MAX_LOADED_MODELS", "3")))
        if len(models) >= limit:
            while len(models) >= limit:
                evicted, _ = models.popitem(last=False)
                for derived in [k for k in models if k.startswith(f"{evicted}:")]:
                    del models[derived]  # built on the evicted one's weights (diffusers' from_pipe)
            _free_memory()
        model = load()
        models[key] = model
        ctx.progress(100, stage.replace("loading", "loaded", 1))
        return model


def is_out_of_memory(error: BaseException) -> bool:
    """A GPU (or ONNX runtime) allocation failure, wherever it happened."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(error, torch.cuda.OutOfMemoryError):
        return True
    return "out of memory" in str(error).lower()  # TorchScript and onnxruntime raise their own classes


def release_models() -> None:
    """Drop every model this process holds (they load again when next needed), so a
    worker that ran out of memory can serve the next job."""
    with _models_lock:
        _models.clear()
    _free_memory()


def loaded_models() -> list[str]:
    """The cache keys of the models this process holds."""
    with _models_lock:
        return [key for models in _models.values() for key in models]


def gpu_memory() -> tuple[int, int] | None:
    """(free, total) bytes of this process's CUDA device, once it has used one."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return None
    return torch.cuda.mem_get_info()


def _free_memory() -> None:
    """Give dropped models' memory back, GPU memory included."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
