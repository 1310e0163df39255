"""The Cin7 -> Xero sync: shared infrastructure at the top, one folder per stage below."""
