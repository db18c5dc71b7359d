"""Queue mechanics: the Celery app, its one task (the next job of a queue, in fair
order), the job store and the client API (`tasks.client`) that the UI and the REST API use.

`celery -A tasks worker -Q cpu,gpu` finds the app here. The app reads
REDIS_URL when this package is first imported.
"""
from tasks.celery_app import app

__all__ = ["app"]
