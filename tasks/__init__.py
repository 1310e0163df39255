"""Celery tasks: each unpacks ids and calls one pipeline function."""
