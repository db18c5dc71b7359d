"""Queue mechanics: the Celery app, one task per operation, the job store and
the client API (`tasks.client`) that the UI and the REST API use.

`celery -A tasks worker -Q cpu,gpu` finds the app here. It is imported lazily
because the app reads REDIS_URL once, and `launch.py` sets it only after it has
started the embedded server.
"""
from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "app":
        from tasks.celery_app import app

        return app
    raise AttributeError(name)
