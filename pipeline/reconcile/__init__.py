"""Reconciliation: compare Cin7 with Xero on a schedule and write a report a bookkeeper can read."""
