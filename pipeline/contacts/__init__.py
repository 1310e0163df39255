"""Cin7 customers -> Xero contacts, resolved in bulk and never with one search per order.

Order of resolution for a customer: the ledger link; a Xero contact whose ContactNumber is the Cin7
CustomerID; an active contact with the same e-mail (case-insensitive) and no ContactNumber; an active
contact with the same name and no ContactNumber. Archived contacts are never adopted.

Candidates come from a cache of Xero's contacts in the ledger: read in full (1000 a page) on the
first run, then with If-Modified-Since every few minutes, and updated with every contact we create
or adopt. A contact made in Xero since the last read is still found: Xero refuses a second contact
with its name, and that refusal triggers a targeted search and the usual adoption order.

A customer new to Xero costs no call of its own: its first invoice names the contact by Name alone,
which Xero finds or creates (the one documented way to create a contact inside an invoice), and the
link is taken from the invoice Xero returns. What an invoice cannot carry safely (ContactNumber, whose
meaning inside an invoice differs between sources, and the details) follows in batches of 50 when the
invoice queue is quiet: `push_contacts`, which also sends Cin7 edits of customers we created. An
adopted contact gets our ContactNumber the same way and nothing else: its details are the
bookkeeper's. At the API ceiling this is what lets every call carry 50 invoices.
"""
