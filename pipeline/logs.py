"""Log lines as JSON (LOG_FORMAT=json) or plain text, carrying what the line is about.

Each JSON line has the time, level, logger and message, and, when known, the Celery task's id and
name, the tenant, and the document's kind and number: from `log_context` (the app module sets the task
and tenant around every task; stages add the document they work on) or from a call's
`extra={"kind": ..., "number": ...}`. Text stays the default for a terminal.
"""

from __future__ import annotations

import contextvars
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

#: Fields a line may carry about its work, in the order they are written.
CONTEXT_FIELDS = ("task_id", "task_name", "tenant", "kind", "number")
_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("cin7xero_log_context", default={})  # noqa: B039 - never mutated, only replaced


def bind(**fields: Any) -> contextvars.Token[dict[str, Any]]:
    """Add fields to this context's lines until `unbind(token)`."""
    return _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})


def unbind(token: contextvars.Token[dict[str, Any]]) -> None:
    """Undo one `bind`."""
    _context.reset(token)


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Lines logged inside the block carry these fields."""
    token = bind(**fields)
    try:
        yield
    finally:
        unbind(token)


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON line, with its context fields and any exception's traceback."""
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        bound = _context.get()
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None) or bound.get(name)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def formatter(log_format: str) -> logging.Formatter:
    """The formatter LOG_FORMAT asks for."""
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


def use_format(logger: logging.Logger, log_format: str) -> None:
    """Give every handler of `logger` the LOG_FORMAT formatter (Celery's loggers, once it made them)."""
    if log_format != "json":
        return
    for handler in logger.handlers:
        handler.setFormatter(JsonFormatter())


def configure_logging(log_format: str, level: int) -> None:
    """Root logging for a command (the receiver, metrics serve): one stderr handler in LOG_FORMAT."""
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(log_format))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
