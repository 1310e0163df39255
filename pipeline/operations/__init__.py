"""Running it: alerts, tenant pauses and the status an operator reads."""
