"""The mapping stage: ledger rows in, Xero payloads and actions out (the mapping itself is in mappings/)."""
