"""The studio's Blocks app: one tab per operation."""
from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import os

import gradio as gr

from pipelines.catalogue import OPERATIONS
from tasks.client import StudioClient
from ui import history

TITLE = "AI Image Studio"
# (title, layout) of each operation with a layout in ui/tabs/ named as it, in the catalogue's order
TABS = [(op.title, importlib.import_module(f"ui.tabs.{name}")) for name, op in OPERATIONS.items()
        if importlib.util.find_spec(f"ui.tabs.{name}")]
# The status box's progress bar, and a checkerboard behind results so transparency shows.
CSS = """
.studio-status progress.studio-bar { width: 100%; height: 12px; accent-color: var(--color-accent); }
.studio-status .studio-note { margin-top: 4px; font-size: 0.92em; }
.studio-status .studio-job { margin-top: 4px; font-size: 0.75em; opacity: 0.6; }
/* gr.Progress (for API clients) would draw Gradio's own bar over the status box */
.studio-status > .wrap, .studio-result > .wrap { display: none !important; }
/* galleries of small pictures keep them small, however few there are (Gradio widens them to fill the row) */
.studio-thumbs .grid-container { grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)) !important; }
/* whole captions, readable over the picture */
.studio-thumbs .caption-label { white-space: normal !important; max-width: 92% !important; opacity: 0.9 !important;
                                background: var(--background-fill-primary) !important; }
.studio-status ol.studio-items { margin: 4px 0 0 1.2em; font-size: 0.92em; }
.studio-result img { background: repeating-conic-gradient(#d4d4d4 0% 25%, #ffffff 0% 50%) 50% / 20px 20px; }
"""


def warm_up_matplotlib() -> None:
    """Gradio sets matplotlib's backend around every event, when matplotlib is installed
    (some model packages bring it). The first time imports matplotlib.pyplot on the event
    loop: a second in which no page is served. Done here, at start-up, instead."""
    with contextlib.suppress(ImportError):
        import matplotlib

        matplotlib.use("agg")
        matplotlib.get_backend()


# A reload (or the next visit) opens the operation tab the person last chose (History is
# not one: a visit starts on an operation). A script in the page's head, so that it
# notes every click on a tab, even before the app has mounted; it notes clicks, not the
# tabs' select events, as the app fires one for its first tab when it mounts. The noted
# tab is chosen as soon as it is drawn, unless the person has chosen one by then.
HEAD = """<script>
(() => {
  const titles = TITLES, key = 'studio-tab', noted = localStorage.getItem(key), began = Date.now();
  let chosen = false;
  document.addEventListener('click', event => {
    const tab = event.target.closest && event.target.closest('[role=tab]');
    if (!tab) return;
    chosen = chosen || event.isTrusted;
    if (titles.includes(tab.textContent.trim())) localStorage.setItem(key, tab.textContent.trim());
  }, true);
  const restore = () => {
    if (chosen) return;
    const tab = [...document.querySelectorAll('[role=tab]')].find(t => t.textContent.trim() === noted);
    if (tab && tab.getAttribute('aria-selected') !== 'true') tab.click();
    else if (!tab && Date.now() - began < 60000) setTimeout(restore, 50);
  };
  if (titles.includes(noted)) restore();
})();
</script>""".replace("TITLES", json.dumps([title for title, _ in TABS]))


def build_app(client: StudioClient | None = None) -> gr.Blocks:
    client = client or StudioClient()
    warm_up_matplotlib()
    # Gradio's copies of uploads and results: removed within the job TTL (checked every
    # quarter of it), so one visitor's upload budget bounds the disk they can fill
    ttl = client.settings.job_ttl
    with gr.Blocks(title=TITLE, delete_cache=(max(60, ttl // 4), max(60, ttl * 3 // 4))) as demo:
        gr.Markdown(f"# {TITLE}")
        destinations = []
        with gr.Tabs(overflow_behavior="wrap") as tabs:  # a phone shows every tab, not a "..." menu
            for title, module in TABS:
                with gr.Tab(title, id=module.__name__.rsplit(".", 1)[1]) as tab:
                    destinations.append(history.Destination(tab, module.render(client)))
            with gr.Tab("History", id="history") as own_tab:
                history.History(client, own_tab, tabs, destinations)
        parts = [destination.parts for destination in destinations]
        # what the workers have, anew for each visit
        on_load = [item for part in parts for item in part.on_load]
        demo.load(lambda: [item.value() for item in on_load], None, [item.component for item in on_load],
                  api_visibility="private", show_progress="hidden")
        # each tab's latest job and batch, where they stand (a reload loses nothing)
        for resume in (resume for part in parts for resume in part.resumes):
            demo.load(resume.handler, None, resume.outputs, api_visibility="private", show_progress="hidden")
    # Celery decides what runs; Gradio's queue only bounds how many events wait at once
    demo.queue(default_concurrency_limit=None, max_size=int(os.environ.get("STUDIO_UI_QUEUE_SIZE", "500")))
    return demo
