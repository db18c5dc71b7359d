"""The parts every operation tab has: Run/Cancel buttons, the result with its
status line, and the wiring of a job handler to them."""
from __future__ import annotations

from typing import Callable

import gradio as gr

from tasks.client import StudioClient
from ui import jobs


def photo_input(key: str, label: str = "Photo") -> gr.Image:
    """An upload whose original file reaches the worker (events use preprocess=False)."""
    return gr.Image(label=label, type="filepath", image_mode=None, sources=["upload", "clipboard"], elem_id=key)


def buttons(run_label: str) -> tuple[gr.Button, gr.Button]:
    with gr.Row():
        return gr.Button(run_label, variant="primary"), gr.Button("Cancel", variant="stop")


def result_view(key: str) -> tuple[gr.Image, gr.Markdown]:
    image = gr.Image(label="Result", type="pil", format="png", interactive=False,
                     buttons=["download", "fullscreen"], elem_id=f"{key}-result")
    return image, gr.Markdown(elem_id=f"{key}-status")


def wire(client: StudioClient, handler: Callable, inputs: list, outputs: list, run: gr.Button, stop: gr.Button,
         info: gr.Markdown, api_name: str, preprocess: bool = False) -> None:
    """Run starts `handler`, an async generator yielding values for `outputs` and, last,
    the job id; Cancel cancels the job and stops following it (its answer goes to `info`).
    Without `preprocess`, the handler gets uploads as files (see `photo_input`)."""
    job_id = gr.State()
    running = run.click(handler, inputs, [*outputs, job_id], api_name=api_name,
                        preprocess=preprocess, concurrency_limit=None)
    stop.click(lambda job: jobs.cancel(client, job), job_id, info, cancels=[running], api_visibility="private")
