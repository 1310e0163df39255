"""Cin7 Core (formerly DEAR): its API client, webhook registrar and event types."""
