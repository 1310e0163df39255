"""Stand-in Cin7 Core and Xero servers over real HTTP, and the hostile sales generator."""
