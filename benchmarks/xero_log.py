"""The Xero stand-in with a timestamped request log, and the per-window reading of it.

`XeroStandIn.stats()` counts calls (in total and per endpoint) but not when they came. The throttled
figure needs the time of every invoice write, so this subclass records one `XeroCall` per API request
as the stand-in sees it: when it arrived, its endpoint, its status and how many invoices it wrote.

The stand-in limits calls with a sliding window (at most `minute_limit` accepted calls in any
`window_seconds`), so every W-second interval holds at most 60 accepted calls, wherever it starts.
`per_window` therefore aligns windows to the first invoice write: window k is [t0 + kW, t0 + (k+1)W).
The first window holds the start-up (batches still filling while the backlog builds) and the last
one the tail (the final partial batches), so both are dropped; the windows between them are the
steady state.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from pipeline.standins.xero import XeroStandIn

INVOICE_WRITES = frozenset({"PUT /Invoices", "POST /Invoices", "POST /Invoices/{id}"})


@dataclass(frozen=True, slots=True)
class XeroCall:
    """One API request as the stand-in saw it."""

    at: float  # time.monotonic() when it reached the stand-in (the clock of its rate window)
    endpoint: str  # method and path template, as in stats()["by_endpoint"]
    status: int
    invoices_written: int


class RecordingXeroStandIn(XeroStandIn):
    """A `XeroStandIn` that keeps a timestamped log of its API requests (not OAuth or admin ones)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._log_lock = threading.Lock()
        self.calls: list[XeroCall] = []
        super().__init__(*args, **kwargs)

    def _api(self, method: str, subpath: str, *args: Any, **kwargs: Any) -> Any:
        at = time.monotonic()
        response, holds_slot = super()._api(method, subpath, *args, **kwargs)
        endpoint = self._route(method, [unquote(s) for s in subpath.split("/") if s])[0]
        written = _invoices_written(response.body) if endpoint in INVOICE_WRITES and response.status == 200 else 0
        with self._log_lock:
            self.calls.append(XeroCall(at, endpoint, response.status, written))
        return response, holds_slot

    def call_log(self) -> list[XeroCall]:
        """The requests so far, in order of arrival."""
        with self._log_lock:
            return sorted(self.calls, key=lambda c: c.at)


def _invoices_written(body: bytes) -> int:
    """Invoices a 200 response to an invoice write stands for (elements without validation errors)."""
    try:
        elements = json.loads(body).get("Invoices") or []
    except ValueError:
        return 0
    return sum(
        1
        for e in elements
        if not e.get("HasErrors") and not e.get("ValidationErrors") and e.get("StatusAttributeString") != "ERROR"
    )


@dataclass
class Window:
    """One W-second window after the first invoice write."""

    index: int
    invoices: int = 0
    accepted_calls: int = 0
    invoice_calls: int = 0
    rate_limited: int = 0
    steady: bool = False


@dataclass
class WindowReport:
    """Invoices per window over the steady state, as a share of the bound."""

    window_seconds: float
    calls_per_window: int
    bound_per_window: int
    windows: list[Window] = field(default_factory=list)
    invoices: int = 0
    calls: int = 0
    rate_limited: int = 0
    span_seconds: float = 0.0  # first to last invoice write

    @property
    def steady(self) -> list[Window]:
        """The full windows between the first and the last."""
        return [w for w in self.windows if w.steady]

    @property
    def sustained_invoices_per_window(self) -> float | None:
        """Mean invoices per steady window; None when the run spans fewer than three windows."""
        steady = self.steady
        return statistics.fmean(w.invoices for w in steady) if steady else None

    @property
    def sustained_share(self) -> float | None:
        """Mean invoices per steady window / the bound (50 invoices x 60 calls)."""
        mean = self.sustained_invoices_per_window
        return None if mean is None else mean / self.bound_per_window

    @property
    def accepted_calls_per_steady_window(self) -> float | None:
        """Mean calls Xero accepted per steady window (at the limit: the pipeline used every call)."""
        steady = self.steady
        return statistics.fmean(w.accepted_calls for w in steady) if steady else None

    @property
    def share_429(self) -> float:
        """429s over all calls of the run (start-up and tail included)."""
        return self.rate_limited / self.calls if self.calls else 0.0

    def as_json(self) -> dict[str, Any]:
        """Everything, for the report."""
        return {
            "window_seconds": self.window_seconds,
            "calls_per_window": self.calls_per_window,
            "bound_per_window": self.bound_per_window,
            "aligned_to": "the first invoice write; the first and last windows are dropped",
            "invoices": self.invoices,
            "calls": self.calls,
            "rate_limited": self.rate_limited,
            "span_seconds": round(self.span_seconds, 3),
            "steady_windows": len(self.steady),
            "sustained_invoices_per_window": self.sustained_invoices_per_window,
            "sustained_share_of_bound": self.sustained_share,
            "accepted_calls_per_steady_window": self.accepted_calls_per_steady_window,
            "share_429": self.share_429,
            "windows": [
                {
                    "index": w.index,
                    "steady": w.steady,
                    "invoices": w.invoices,
                    "accepted_calls": w.accepted_calls,
                    "invoice_calls": w.invoice_calls,
                    "rate_limited": w.rate_limited,
                }
                for w in self.windows
            ],
        }


def per_window(calls: list[XeroCall], window_seconds: float, calls_per_window: int, batch: int) -> WindowReport:
    """Bucket the log into windows from the first invoice write; mark the full ones between first and last."""
    report = WindowReport(window_seconds, calls_per_window, batch * calls_per_window)
    report.calls = len(calls)
    report.rate_limited = sum(1 for c in calls if c.status == 429)
    writes = [c for c in calls if c.invoices_written]
    report.invoices = sum(c.invoices_written for c in writes)
    if not writes:
        return report
    start, end = writes[0].at, writes[-1].at
    report.span_seconds = end - start
    last = int((end - start) // window_seconds)
    report.windows = [Window(k, steady=0 < k < last) for k in range(last + 1)]
    for call in calls:
        k = int((call.at - start) // window_seconds)
        if not 0 <= k <= last:
            continue  # before the first write (contact cache, accounts) or after the last one
        window = report.windows[k]
        window.invoices += call.invoices_written
        if call.status == 429:
            window.rate_limited += 1
        else:
            window.accepted_calls += 1
        if call.endpoint in INVOICE_WRITES:
            window.invoice_calls += 1
    return report
