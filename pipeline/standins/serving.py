"""The HTTP serving that the Cin7 and Xero stand-ins share: a server that carries its stand-in, a quiet handler.

Each stand-in subclasses both, choosing its own accept queue, buffers and request handling.
"""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Generic, TypeVar

StandInT = TypeVar("StandInT")


class StandInServer(ThreadingHTTPServer, Generic[StandInT]):
    """A threading HTTP server (daemon request threads) holding the stand-in its handler answers for."""

    daemon_threads = True
    standin: StandInT


class QuietHandler(BaseHTTPRequestHandler):
    """An HTTP/1.1 keep-alive request handler without Nagle's delay and without per-request log lines."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request logging; tests and benchmarks would otherwise spend their time on stderr."""
