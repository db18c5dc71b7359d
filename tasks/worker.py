"""The workers' entry: `celery -A tasks.worker worker -Q cpu,gpu`. The one module that
configures the app from the environment (REDIS_URL and the STUDIO_* settings) as it loads."""
from tasks.celery_app import app, configure
from tasks.settings import Settings

configure(Settings.from_env())

__all__ = ["app"]
