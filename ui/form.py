"""A tab's controls and its Gradio handlers, made from the operation's parameter model.

A parameter is described once, in its pydantic model: type, bounds, default and
description, and in `json_schema_extra` how it shows:
  label      the control's label (else the field's name)
  widget     "engine" (the engine list), "color", "number" (no slider), "none" (not in the form)
  choices    values, or [label, value] pairs: a dropdown (a radio for a Literal field)
  step, lines, placeholder
  row        fields with the same row share one
  group      fields with the same group share a closed accordion with that title
The handlers carry a signature made from the same fields, so the Gradio API names each
input as the model does, with the model's defaults; a field's old names (its pydantic
`validation_alias`) stay accepted as extra inputs, so existing clients keep working.
"""
from __future__ import annotations

import contextlib
import inspect
import typing
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable, Iterator

import annotated_types
import gradio as gr
from pydantic import AliasChoices
from pydantic.fields import FieldInfo

from pipelines.registry import Operation
from tasks.client import StudioClient
from ui import batch, jobs, panel

Given = dict[str, Any]  # a handler's inputs by name: photos as upload payloads, parameters as values


def hints(field: FieldInfo) -> dict[str, Any]:
    extra = field.json_schema_extra
    return extra if isinstance(extra, dict) else {}


def old_names(name: str, field: FieldInfo) -> list[str]:
    """The names a field had before (its validation aliases other than its own name)."""
    alias = field.validation_alias
    choices = alias.choices if isinstance(alias, AliasChoices) else [alias] if isinstance(alias, str) else []
    return [choice for choice in choices if isinstance(choice, str) and choice != name]


def bounds(field: FieldInfo, whole: bool) -> tuple[float | None, float | None]:
    low = high = None
    for rule in field.metadata:
        if isinstance(rule, annotated_types.Ge):
            low = rule.ge
        elif isinstance(rule, annotated_types.Gt):
            low = rule.gt + 1 if whole else rule.gt
        elif isinstance(rule, annotated_types.Le):
            high = rule.le
        elif isinstance(rule, annotated_types.Lt):
            high = rule.lt - 1 if whole else rule.lt
    return low, high


def control(name: str, field: FieldInfo, key: str) -> gr.components.Component:
    """The control for one field (see the module's hints)."""
    hint = hints(field)
    options: dict[str, Any] = {"label": hint.get("label") or name.replace("_", " ").capitalize(),
                               "elem_id": f"{key}-{name.replace('_', '-')}"}
    default = None if field.is_required() else field.get_default(call_default_factory=True)
    kind = field.annotation
    literal = typing.get_args(kind) if typing.get_origin(kind) is typing.Literal else ()
    choices = [tuple(choice) if isinstance(choice, list) else choice for choice in hint.get("choices", literal)]
    if hint.get("widget") == "color":
        return gr.ColorPicker(default, **options)
    if choices:
        return (gr.Radio if literal else gr.Dropdown)(choices, value=default, **options)
    if kind is bool:
        return gr.Checkbox(default, **options)
    if kind in (int, float):
        low, high = bounds(field, kind is int)
        if hint.get("widget") == "number" or low is None or high is None:
            return gr.Number(default, precision=0 if kind is int else None, minimum=low, maximum=high, **options)
        return gr.Slider(low, high, value=default, step=hint.get("step", 1 if kind is int else 0.05), **options)
    if kind is str:
        return gr.Textbox(default, lines=hint.get("lines", 1), placeholder=hint.get("placeholder"), **options)
    raise TypeError(f"{name}: no control for {kind}; the tab makes this one (Form.use)")


@dataclass(frozen=True)
class Inputs:
    """A handler's inputs: their names in the Gradio API, their components, and old names -> new."""

    names: list[str]
    components: list[gr.components.Component]
    renamed: dict[str, str]


def api_handler(name: str, inputs: Inputs, body: Callable[[Given, gr.Request, gr.Progress], AsyncIterator]
                ) -> Callable:
    """An async generator Gradio calls with `inputs` (positionally), the request and a
    progress tracker, that runs `body` with the inputs by name (an old name's value, when
    given, under its new name). Its signature names the inputs, which is what the Gradio
    API shows and what `gradio_client` matches keyword arguments against."""

    async def handler(*args: Any):
        *values, request, progress = args
        given = dict(zip(inputs.names, values))
        for old, new in inputs.renamed.items():
            if given.get(old) is not None:
                given[new] = given[old]
        async for update in body(given, request, progress):
            yield update

    positional = inspect.Parameter.POSITIONAL_OR_KEYWORD
    handler.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(input_name, positional, default=None) for input_name in inputs.names]
        + [inspect.Parameter("request", positional, default=None, annotation=gr.Request),
           inspect.Parameter("progress", positional, default=gr.Progress())])
    handler.__annotations__ = {"request": gr.Request}  # Gradio finds the request by its type
    handler.__name__ = handler.__qualname__ = name
    return handler


class Form:
    """The controls of an operation's parameters on its tab, placed where the tab's
    layout calls `place` and `place_rest`, and the tab's job and batch handlers."""

    def __init__(self, client: StudioClient, op: Operation, key: str):
        self.client, self.op, self.key = client, op, key
        self.on_load: list[panel.OnLoad] = []  # the engine list, refreshed on each page load
        self._controls: dict[str, gr.components.Component] = {}

    @property
    def model_fields(self) -> dict[str, FieldInfo]:
        return self.op.params.model_fields

    @property
    def fields(self) -> dict[str, gr.components.Component]:
        """Each parameter's control, in the model's order."""
        return {name: self._controls[name] for name in self.model_fields if name in self._controls}

    def place(self, *names: str) -> None:
        """The controls of `names`, here and in that order; fields hinted into one row
        share it, where the first of them stands."""
        row_of = {name: hints(self.model_fields[name]).get("row") for name in names}
        for name in names:
            if name in self._controls:
                continue
            together = [other for other in names if row_of[name] and row_of[other] == row_of[name]] or [name]
            with gr.Row() if len(together) > 1 else contextlib.nullcontext():
                for member in together:
                    self._controls[member] = self._make(member)

    def place_rest(self) -> None:
        """Every control not placed yet: those without a group here, then each group in an accordion."""
        rest = [name for name, field in self.model_fields.items()
                if name not in self._controls and hints(field).get("widget") != "none"]
        group_of = {name: hints(self.model_fields[name]).get("group") for name in rest}
        self.place(*[name for name in rest if not group_of[name]])
        for title in dict.fromkeys(group for group in group_of.values() if group):
            with gr.Accordion(title, open=False):
                self.place(*[name for name in rest if group_of[name] == title])

    def use(self, name: str, component: gr.components.Component) -> None:
        """A control the tab makes itself (face pickers, a model list with a note)."""
        self._controls[name] = component

    def _make(self, name: str) -> gr.components.Component:
        field = self.model_fields[name]
        if hints(field).get("widget") == "engine":
            engines = panel.engine_dropdown(self.client, self.key, self.op, hints(field).get("auto_label", "Auto"))
            self.on_load.append(engines)
            return engines.component
        return control(name, field, self.key)

    def inputs(self, leading: dict[str, gr.components.Component], exclude: tuple[str, ...] = (),
               renamed: dict[str, str] | None = None) -> Inputs:
        """`leading` (photos, a batch's prompts and seeds), the parameters' controls but
        `exclude`, then one hidden input per old name: of a parameter (its aliases) and of
        `renamed` (old -> new). A field added to the model comes after the others, so
        callers that pass inputs by position keep working."""
        named = {**leading, **{n: c for n, c in self.fields.items() if n not in exclude}}
        renamed = {**(renamed or {}), **{old: name for name in named if name in self.model_fields
                                         for old in old_names(name, self.model_fields[name])}}
        hidden = [gr.File(visible=False) if new in leading else gr.JSON(visible=False) for new in renamed.values()]
        return Inputs([*named, *renamed], [*named.values(), *hidden], renamed)

    def params(self, given: Given, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
        return {name: given.get(name) for name in self.fields if name not in exclude}

    def job(self, photos: dict[str, gr.components.Component], read: Callable[[Given], dict[str, bytes]],
            name: Callable[[Given], str], outputs: list, run: gr.Button, stop: gr.Button,
            view: jobs.ResultView = jobs.ResultView(), renamed: dict[str, str] | None = None) -> panel.Resume:
        """The tab's Run: one job of the photos `read` gives and the form's parameters,
        its result downloading as `name`. Returns the page-load handler (`panel.wire`)."""
        inputs = self.inputs(photos, renamed=renamed)

        async def body(given: Given, request: gr.Request, progress: gr.Progress):
            async for update in jobs.run_job(self.client, self.op.name, lambda: read(given), self.params(given),
                                             progress, request, name(given), view):
                yield update

        handler = api_handler(self.op.name, inputs, body)
        return panel.wire(self.client, handler, inputs.components, outputs, run, stop, api_name=self.op.name,
                          operation=self.op.name, view=view)

    @contextlib.contextmanager
    def batch_box(self, title: str) -> Iterator[None]:
        """The tab's batch accordion: what the tab places in it (the photos, the prompts),
        then the panel `batch` fills."""
        with gr.Accordion(title, open=False) as box:
            yield
            self._batch_box = gr.Column(), box

    def batch(self, leading: dict[str, gr.components.Component], read: Callable[[Given, dict[str, Any]], batch.Batch],
              exclude: tuple[str, ...] = (), renamed: dict[str, str] | None = None) -> panel.Resume:
        """The tab's batch panel, in its `batch_box`: `read(given, params)` makes the batch
        from the inputs and the form's parameters but `exclude`."""
        where, box = self._batch_box
        with where:
            inputs = self.inputs(leading, exclude, renamed)

            async def body(given: Given, request: gr.Request, progress: gr.Progress):
                params = self.params(given, exclude)
                async for update in batch.run_batch(self.client, self.op.name, lambda: read(given, params), request):
                    yield update

            handler = api_handler(f"{self.op.name}_batch", inputs, body)
            return batch.panel(self.client, handler, inputs.components, self.op.name, box)
