"""Celery tasks for alerts (being written)."""
