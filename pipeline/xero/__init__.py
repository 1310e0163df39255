"""The Xero side: the xero-python SDK client and OAuth tokens."""
