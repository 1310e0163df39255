"""Celery tasks for webhooks (being written)."""
