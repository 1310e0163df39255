"""``python -m pipeline.standins.xero``: run the Xero stand-in in the foreground until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt

import pipeline.standins.xero as package
from pipeline.standins.serving import serve_until_signalled
from pipeline.standins.xero.server import XeroStandIn
from pipeline.standins.xero.state import DEFAULT_TENANT_ID, XeroOptions


def main(argv: list[str] | None = None) -> None:
    """Run the stand-in in the foreground until SIGTERM/SIGINT; prints the URL once listening."""
    parser = argparse.ArgumentParser(prog="python -m pipeline.standins.xero", description=package.__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--client-id", default="standin-client")
    parser.add_argument("--client-secret", default="standin-secret")
    parser.add_argument("--tenant-id", default=DEFAULT_TENANT_ID)
    parser.add_argument("--org-name", default="Demo Company (AU)")
    parser.add_argument("--minute-limit", type=int, default=None)
    parser.add_argument("--day-limit", type=int, default=None)
    parser.add_argument("--concurrent-limit", type=int, default=None)
    parser.add_argument("--window-seconds", type=float, default=60.0)
    parser.add_argument("--day-window-seconds", type=float, default=86_400.0)
    parser.add_argument("--idempotency-ttl-seconds", type=float, default=360.0)
    parser.add_argument("--access-token-ttl-seconds", type=int, default=1800)
    parser.add_argument("--refresh-grace-seconds", type=float, default=1800.0)
    parser.add_argument("--period-lock-date", default="2020-06-30", help="YYYY-MM-DD, or 'none' for no lock date")
    args = parser.parse_args(argv)
    lock = None if args.period_lock_date.lower() == "none" else dt.date.fromisoformat(args.period_lock_date)
    # Every option but the lock date is a flag of the same name.
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(XeroOptions) if hasattr(args, f.name)}
    options = XeroOptions(**{**given, "period_lock_date": lock})
    standin = XeroStandIn(args.host, args.port, options=options)
    standin.start()
    print(standin.url, flush=True)
    serve_until_signalled(standin)


if __name__ == "__main__":
    main()
