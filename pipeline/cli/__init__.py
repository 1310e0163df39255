"""The cin7xero command line: sync, status, dead letters, reconcile, webhooks, the demo."""
