"""An in-memory stand-in for Xero's Accounting API and OAuth 2.0 endpoints.

Standard library only (``http.server.ThreadingHTTPServer``). It speaks the wire format that the official
``xero-python`` SDK parses: Xero's envelopes, MS-JSON dates, ``summarizeErrors`` element results,
``Idempotency-Key`` replays, rate-limit headers and 429s, rotating refresh tokens, and injectable faults
for chaos tests. All state sits behind one lock; lookups use indexes so that it stays fast under a
throughput benchmark.

Run it in the foreground with ``python -m pipeline.standins.xero --port 8080``.
"""

from pipeline.standins.xero.server import XeroStandIn
from pipeline.standins.xero.state import DEFAULT_TENANT_ID, XeroOptions

__all__ = ["DEFAULT_TENANT_ID", "XeroOptions", "XeroStandIn"]
