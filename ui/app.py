"""The studio's Blocks app: one tab per operation."""
from __future__ import annotations

import gradio as gr

from tasks.client import StudioClient
from ui.tabs import face_swap, generate, remove_background, remove_object, style_transfer

TITLE = "AI Image Studio"
# The status box's progress bar, and a checkerboard behind results so transparency shows.
CSS = """
.studio-status progress.studio-bar { width: 100%; height: 12px; accent-color: var(--color-accent); }
.studio-status .studio-note { margin-top: 4px; font-size: 0.92em; }
.studio-status .studio-job { margin-top: 4px; font-size: 0.75em; opacity: 0.6; }
/* gr.Progress (for API clients) would draw Gradio's own bar over the status box */
.studio-status > .wrap, .studio-result > .wrap { display: none !important; }
.studio-result img { background: repeating-conic-gradient(#d4d4d4 0% 25%, #ffffff 0% 50%) 50% / 20px 20px; }
"""


def build_app(client: StudioClient | None = None) -> gr.Blocks:
    client = client or StudioClient()
    with gr.Blocks(title=TITLE) as demo:
        gr.Markdown(f"# {TITLE}")
        with gr.Tab("Generate", id="generate"):
            generate.render(client)
        with gr.Tab("Face swap", id="face_swap"):
            face_swap.render(client)
        with gr.Tab("Remove background", id="remove_background"):
            remove_background.render(client)
        with gr.Tab("Remove object", id="remove_object"):
            remove_object.render(client)
        with gr.Tab("Style transfer", id="style_transfer"):
            style_transfer.render(client)
    demo.queue(default_concurrency_limit=None)
    return demo
