"""Queue mechanics: the Celery app (`tasks.celery_app`), its one task (the next job of a
queue, in fair order), the job store and the client API (`tasks.client`) that the UI
and the REST API use.

Importing any of it reads no configuration: `celery_app.configure(settings)` points the
app at Redis (`StudioClient` calls it with its settings; workers start from `tasks.worker`).
"""
