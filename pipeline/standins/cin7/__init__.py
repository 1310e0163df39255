"""A Cin7 Core ExternalApi v2 stand-in: a real HTTP server (standard library only) with Cin7's quirks.

What it imitates, from Cin7 Core's published API documentation:

* paths and query parameter names are case-insensitive; auth is the ``api-auth-accountid`` and
  ``api-auth-applicationkey`` headers, and bad credentials give **403**;
* ``saleList``/``customer``/``supplier``/``purchaseList``/``ref/*`` paging with ``Page`` (1-based) and
  ``Limit`` (default 100, clamped to 1..1000), responses ``{Total, Page, <List>}``;
* ``saleList`` rows are ordered by ``Updated`` ascending, then ``SaleID``. ``UpdatedSince`` keeps rows with
  ``Updated >= UpdatedSince`` (real Cin7 does not document ``>`` vs ``>=``; ``>=`` is the one that forces a
  client to cope with re-delivered rows, which it must anyway). ``CreatedSince`` is accepted and ignored;
* ``purchaseList`` rows are ordered the same way by ``LastUpdatedDate`` (its ``UpdatedSince`` watermark);
  ``advanced-purchase?ID=`` serves simple and service purchases (one ``Invoice``/``CreditNote`` object) and
  advanced ones (arrays under the same keys);
* an unknown sale id gives HTTP 404 with ``[{"ErrorCode":404,"Exception":"Sale not found"}]`` (wrapped in a
  list, as Cin7 sometimes does); a path under ``/ExternalApi/v2/sale/<anything>`` gives HTTP 200 with an
  HTML "Page not found" page;
* a rate limit of N calls per sliding window over all endpoints, answered with 429 (text body "You reached
  N calls per minute API limit") or 503, never with ``Retry-After``. Throttled calls do not use up the window;
* injectable faults: ``throttle_next``, ``outage_seconds`` (HTTP 500), ``error_in_200_next`` (HTTP 200 with an
  ``ErrorCode`` body).

Admin endpoints under ``/_standin/`` are not counted, limited or authenticated.

Amounts are held as ``Decimal`` and written as JSON numbers with the Decimal's own digits.
"""

from pipeline.standins.cin7.encoding import dumps
from pipeline.standins.cin7.server import Cin7StandIn
from pipeline.standins.cin7.state import DEFAULT_ACCOUNT_ID, DEFAULT_APPLICATION_KEY

__all__ = ["DEFAULT_ACCOUNT_ID", "DEFAULT_APPLICATION_KEY", "Cin7StandIn", "dumps"]
