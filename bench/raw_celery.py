"""The baseline for queue overhead: a bare Celery no-op task, configured like the studio's app."""
import os

from celery import Celery

app = Celery("raw", broker=os.environ["REDIS_URL"], backend=os.environ["REDIS_URL"])
app.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"],
                task_acks_late=True, worker_prefetch_multiplier=1, task_default_queue="raw")


@app.task(name="raw.noop")
def noop() -> None:
    return None
