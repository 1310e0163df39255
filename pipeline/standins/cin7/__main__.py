"""``python -m pipeline.standins.cin7``: run the Cin7 stand-in in the foreground until Ctrl-C."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from pipeline.standins.cin7.server import Cin7StandIn
from pipeline.standins.cin7.state import DEFAULT_ACCOUNT_ID, DEFAULT_APPLICATION_KEY
from pipeline.standins.generator import generate, generate_purchases, with_purchases
from pipeline.standins.serving import serve_until_signalled


def main(argv: list[str] | None = None) -> None:
    """Run the stand-in in the foreground: ``python -m pipeline.standins.cin7 --sales 500``."""
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.standins.cin7", description="Cin7 Core ExternalApi v2 stand-in"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8701)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sales", type=int, default=200)
    parser.add_argument("--purchases", type=int, default=0, help="also serve this many purchases and their suppliers")
    parser.add_argument("--no-hostile", action="store_true", help="omit the deliberately failing invoices")
    parser.add_argument("--rate-limit-per-minute", type=int, default=None)
    parser.add_argument("--window-seconds", type=float, default=60.0)
    parser.add_argument("--throttle-status", type=int, default=429, choices=(429, 503))
    parser.add_argument("--account-id", default=DEFAULT_ACCOUNT_ID)
    parser.add_argument("--application-key", default=DEFAULT_APPLICATION_KEY)
    args = parser.parse_args(argv)
    now = datetime.now(UTC)
    dataset = generate(args.seed, args.sales, now=now, hostile=not args.no_hostile)
    if args.purchases > 0:
        bought = generate_purchases(args.seed, args.purchases, now=now, customers=dataset.customers)
        dataset = with_purchases(dataset, bought)
    standin = Cin7StandIn(
        args.host,
        args.port,
        account_id=args.account_id,
        application_key=args.application_key,
        dataset=dataset,
        rate_limit_per_minute=args.rate_limit_per_minute,
        window_seconds=args.window_seconds,
        throttle_status=args.throttle_status,
    ).start()
    print(f"Cin7 Core stand-in on {standin.url} (API {standin.api_url}); Ctrl-C to stop", flush=True)
    serve_until_signalled(standin)


if __name__ == "__main__":
    main()
