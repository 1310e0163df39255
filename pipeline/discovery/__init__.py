"""Discovery: which Cin7 documents changed (poll) and what they hold now (fetch)."""
