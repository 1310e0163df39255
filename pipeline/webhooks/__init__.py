"""The Cin7 webhook receiver: events, auth, the durable inbox, processing, the HTTP server."""
