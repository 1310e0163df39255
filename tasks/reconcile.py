"""Celery tasks for reconcile (being written)."""
