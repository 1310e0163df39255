"""The request and response values passed between the Xero stand-in's HTTP handler and its endpoints.

Also the builders of Xero's plain-text, JSON, validation, query and OAuth error responses, and
``BadRequest``, which an endpoint raises to answer with one of them from deep in its call stack.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

NOT_FOUND_TEXT = "The resource you're looking for cannot be found"
JSON_TYPE = "application/json; charset=utf-8"
TEXT_TYPE = "text/plain; charset=utf-8"


class Headers(Protocol):
    """What the stand-in needs from request headers (``http.client.HTTPMessage`` or a dict)."""

    def get(self, name: str, /) -> str | None:
        """The header's value, or ``None``."""
        ...


@dataclass(slots=True)
class Response:
    """One HTTP response; ``drop`` closes the connection without sending it (an injected fault)."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    drop: bool = False


def json_response(status: int, payload: Any, headers: Iterable[tuple[str, str]] = ()) -> Response:
    """A compact JSON response."""
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(status, [("Content-Type", JSON_TYPE), *headers], body)


def text_response(status: int, text: str, headers: Iterable[tuple[str, str]] = ()) -> Response:
    """A plain-text response."""
    return Response(status, [("Content-Type", TEXT_TYPE), *headers], text.encode("utf-8"))


def not_found() -> Response:
    """Xero's plain-text 404."""
    return text_response(404, NOT_FOUND_TEXT)


def validation_error(message: str, elements: list[Any] | None = None) -> Response:
    """Xero's 400 ``ValidationException``, with the failing ``Elements`` when given."""
    payload: dict[str, Any] = {"ErrorNumber": 10, "Type": "ValidationException", "Message": message}
    if elements is not None:
        payload["Elements"] = elements
    return json_response(400, payload)


def query_error(message: str) -> Response:
    """Xero's 400 ``QueryParseException`` for a bad ``where`` or ``order``."""
    return json_response(400, {"ErrorNumber": 16, "Type": "QueryParseException", "Message": message})


def oauth_error(status: int, error: str) -> Response:
    """An OAuth 2.0 error response (``invalid_client``, ``invalid_grant`` ...)."""
    return json_response(status, {"error": error}, [("Cache-Control", "no-store")])


@dataclass(slots=True)
class Request:
    """One API request as the endpoints see it: path segments, query keys in lower case, the raw body."""

    method: str
    segments: list[str]
    query: dict[str, str]
    headers: Headers
    body: bytes
    target: str

    def flag(self, name: str) -> bool | None:
        """A boolean query parameter (``summarizeErrors``, ``includeArchived`` ...); ``None`` when absent."""
        value = self.query.get(name.lower())
        if value is None:
            return None
        return value.strip().lower() in ("true", "1", "yes")


class BadRequest(Exception):
    """Raised inside a handler to return an error response from deep in the call stack."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response
