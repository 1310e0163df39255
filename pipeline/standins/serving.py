"""The HTTP serving that the Cin7 and Xero stand-ins share: a server that carries its stand-in, a quiet handler.

Each stand-in subclasses both, choosing its own accept queue, buffers and request handling.
"""

from __future__ import annotations

import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any, Generic, Protocol, TypeVar

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


class Stoppable(Protocol):
    """A running stand-in."""

    def stop(self) -> None:
        """Shut its server down."""
        ...


def serve_until_signalled(*standins: Stoppable) -> None:
    """Block until SIGINT (Ctrl-C) or SIGTERM (docker stop), then stop every stand-in cleanly."""
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        while not stopping.wait(0.5):
            pass
    finally:
        for standin in standins:
            standin.stop()
