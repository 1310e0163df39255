"""Re-read settings in a running process (the demo and tests change the environment after import)."""

from __future__ import annotations

from pipeline.app import reconfigure
from pipeline.context import forget_contexts
from pipeline.db import reset_engines
from pipeline.settings import get_settings


def reload_runtime() -> None:
    """Forget cached settings, engines and tenant contexts, and re-apply the Celery configuration."""
    get_settings.cache_clear()
    reset_engines()
    forget_contexts()
    reconfigure(get_settings())
