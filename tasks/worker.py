"""The workers' entry: `celery -A tasks.worker worker -Q cpu,gpu`. The one module that
configures the app from the environment (REDIS_URL and the STUDIO_* settings) as it loads."""
from tasks.celery_app import app, configure
from tasks.settings import Settings
from tasks.worker_memory import keep_freed_memory

configure(Settings.from_env())
keep_freed_memory()

__all__ = ["app"]
