"""The Xero writer: claim ready rows, batch them, write them, record each element's outcome."""
