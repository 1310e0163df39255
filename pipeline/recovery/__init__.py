"""Recovery: the sweep that heals lost messages, poison counting, and dead letters."""
