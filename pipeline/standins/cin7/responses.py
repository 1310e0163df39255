"""The responses of the Cin7 stand-in's endpoints and Cin7's error bodies.

``BadRequest`` is raised by an endpoint to answer 400 with its message from deep in its call stack.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipeline.standins.cin7.encoding import dumps


@dataclass
class Response:
    """One HTTP response of the stand-in (JSON unless ``content_type`` says otherwise)."""

    status: int
    body: bytes
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


def json_response(status: int, payload: Any) -> Response:
    """A JSON response in Cin7's number format."""
    return Response(status, dumps(payload).encode("utf-8"))


def error_response(status: int, message: str, *, wrap: bool = True, code: int | None = None) -> Response:
    """Cin7's ``{"ErrorCode", "Exception"}`` body, wrapped in a list unless ``wrap`` is false (as Cin7 varies)."""
    error = {"ErrorCode": code if code is not None else status, "Exception": message}
    return json_response(status, [error] if wrap else error)


class BadRequest(Exception):
    """Raised by an endpoint to answer 400 with the exception's message."""
