"""The webhook receiver over HTTP: uvicorn serving `pipeline.webhooks.asgi.ReceiverApp`.

uvicorn runs one event loop, so a connection costs a coroutine, not a thread: hundreds of slow or
malformed clients hold no worker that a real delivery needs. What uvicorn leaves open is bounded here:
every request head must arrive within WEBHOOK_HEAD_TIMEOUT_SECONDS of its connection opening (or of the
previous response on a kept-alive connection), else the client gets 408 and is closed; a head larger
than WEBHOOK_MAX_HEADER_BYTES is refused by h11 (400). Blocking work (the ledger, readiness, metrics)
runs on a pool of WEBHOOK_THREADS threads.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from pipeline.operations.metrics import pipeline_registry
from pipeline.settings import get_settings
from pipeline.source.cin7core.webhooks import auth_configured
from pipeline.webhooks.asgi import HEALTH_PATH, METRICS_PATH, READY_PATH, WEBHOOK_PATH, ReceiverApp
from pipeline.webhooks.receipt import WebhookReceiver

__all__ = ["HEALTH_PATH", "METRICS_PATH", "READY_PATH", "WEBHOOK_PATH", "WebhookServer"]

log = logging.getLogger(__name__)

_TIMEOUT_RESPONSE = b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class HeadDeadlineProtocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, with a deadline for each request head.

    uvicorn times out an idle kept-alive connection, but not a client that trickles its head a byte
    at a time (slowloris): this closes one whose head has not arrived in time, whatever it sends.
    """

    head_deadline: float = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the first request's deadline with the connection."""
        super().connection_made(transport)
        self._head_timer: asyncio.TimerHandle | None = None
        self._arm()

    def handle_events(self) -> None:
        """A request head parsed (a new cycle began) stops its deadline."""
        before = self.cycle
        super().handle_events()
        if self.cycle is not before and self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def on_response_complete(self) -> None:
        """The next request on a kept-alive connection gets a deadline of its own."""
        finished = self.cycle
        super().on_response_complete()
        if self.cycle is finished and not self.transport.is_closing():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        """No deadline outlives its connection."""
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        self._head_timer = self.loop.call_later(self.head_deadline, self._expired)

    def _expired(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.write(_TIMEOUT_RESPONSE)
            self.transport.close()


class WebhookServer:
    """The receiver over HTTP: `start()` serves in a thread, `serve_forever()` in this one."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, max_connections: int | None = None) -> None:
        settings = get_settings()
        if not auth_configured(settings):
            raise ValueError(
                "refusing to run the webhook receiver unauthenticated: set CIN7_WEBHOOK_TOKEN, or "
                "CIN7_WEBHOOK_USER and CIN7_WEBHOOK_PASSWORD"
            )
        self._executor = ThreadPoolExecutor(max_workers=settings.webhook_threads, thread_name_prefix="webhook")
        app = ReceiverApp(WebhookReceiver(), pipeline_registry(settings), self._executor)
        protocol = type(
            "ReceiverProtocol", (HeadDeadlineProtocol,), {"head_deadline": settings.webhook_head_timeout_seconds}
        )
        self._config = uvicorn.Config(
            app,
            http=protocol,
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            date_header=True,
            # Past this many open connections a request is answered 503 (Cin7 delivers again later).
            limit_concurrency=max_connections or settings.webhook_max_connections,
            h11_max_incomplete_event_size=settings.webhook_max_header_bytes,
            timeout_keep_alive=5,
            timeout_graceful_shutdown=10,
        )
        self._server = uvicorn.Server(self._config)
        self._socket = socket.create_server((host, port), reuse_port=False, backlog=2048)
        self.host = host
        self.port = int(self._socket.getsockname()[1])
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """`http://host:port` (the port is the bound one when 0 was asked)."""
        return f"http://{self.host}:{self.port}"

    @property
    def webhook_url(self) -> str:
        """The URL to register in Cin7 (behind TLS in production)."""
        return self.url + WEBHOOK_PATH

    def start(self) -> WebhookServer:
        """Serve in a daemon thread; return once it accepts connections."""
        self._thread = threading.Thread(target=self._run, name="webhook-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the webhook receiver did not start")
            time.sleep(0.01)
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until SIGINT/SIGTERM (uvicorn's own handlers) or `stop()`."""
        self._run()

    def _run(self) -> None:
        try:
            self._server.run(sockets=[self._socket])
        finally:
            self._executor.shutdown(wait=False, cancel_futures=True)

    def stop(self) -> None:
        """Stop accepting, finish what is in flight (briefly), release the port."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=15)
            self._thread = None
        self._socket.close()

    def __enter__(self) -> WebhookServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
