"""What Xero's contacts, invoices, credit notes and payments may hold: types, statuses, field specs.

The field specs (``CONTACT_SCHEMA``, ``INVOICE_SCHEMA``, ``CREDIT_NOTE_SCHEMA``, ``PAYMENT_SCHEMA``) tell
the ``where`` and ``order`` parser which fields exist and of what type; the tuples list the values the
endpoints accept.
"""

from __future__ import annotations

from pipeline.standins.xero.where import FieldSpec

INVOICE_TYPES = ("ACCREC", "ACCPAY")
CREDIT_NOTE_TYPES = ("ACCRECCREDIT", "ACCPAYCREDIT")
#: The PaymentType of a payment on each type of document (a payment on a credit note is a refund).
PAYMENT_TYPES = {
    "ACCREC": "ACCRECPAYMENT",
    "ACCPAY": "ACCPAYPAYMENT",
    "ACCRECCREDIT": "ARCREDITPAYMENT",
    "ACCPAYCREDIT": "APCREDITPAYMENT",
}
#: The invoice type a credit note of each type may be allocated to.
ALLOCATABLE_TYPES = {"ACCRECCREDIT": "ACCREC", "ACCPAYCREDIT": "ACCPAY"}
INVOICE_STATUSES = ("DRAFT", "SUBMITTED", "AUTHORISED", "PAID", "VOIDED", "DELETED")
STATUS_TRANSITIONS: dict[str, frozenset[str]] = {
    "DRAFT": frozenset({"SUBMITTED", "AUTHORISED", "DELETED"}),
    "SUBMITTED": frozenset({"AUTHORISED", "DRAFT", "DELETED"}),
    "AUTHORISED": frozenset({"VOIDED"}),
}
LINE_AMOUNT_TYPES = {"exclusive": "Exclusive", "inclusive": "Inclusive", "notax": "NoTax"}
CONTACT_STATUSES = ("ACTIVE", "ARCHIVED", "GDPRREQUEST")
ADDRESS_TYPES = ("POBOX", "STREET")
PHONE_TYPES = ("DEFAULT", "DDI", "FAX", "MOBILE", "OFFICE")
CONTACT_TEXT_FIELDS = (
    "ContactNumber",
    "AccountNumber",
    "Name",
    "FirstName",
    "LastName",
    "EmailAddress",
    "CompanyNumber",
    "BankAccountDetails",
    "TaxNumber",
    "AccountsReceivableTaxType",
    "AccountsPayableTaxType",
    "Website",
    "SalesDefaultAccountCode",
    "PurchasesDefaultAccountCode",
    "DefaultCurrency",
    "XeroNetworkKey",
)
# The text fields a ``summaryOnly`` listing leaves out; the others it shows, in the same order.
_DETAIL_ONLY_FIELDS = frozenset(
    {
        "BankAccountDetails",
        "AccountsReceivableTaxType",
        "AccountsPayableTaxType",
        "Website",
        "SalesDefaultAccountCode",
        "PurchasesDefaultAccountCode",
        "XeroNetworkKey",
    }
)
CONTACT_SUMMARY_FIELDS = tuple(key for key in CONTACT_TEXT_FIELDS if key not in _DETAIL_ONLY_FIELDS)


CONTACT_SCHEMA: FieldSpec = {
    "ContactID": "guid",
    "ContactNumber": "string",
    "AccountNumber": "string",
    "ContactStatus": "string",
    "Name": "string",
    "FirstName": "string",
    "LastName": "string",
    "EmailAddress": "string",
    "CompanyNumber": "string",
    "TaxNumber": "string",
    "Website": "string",
    "DefaultCurrency": "string",
    "IsSupplier": "bool",
    "IsCustomer": "bool",
    "UpdatedDateUTC": "datetime",
}
# The fields invoices and credit notes share.
_DOCUMENT_FIELDS: dict[str, str | FieldSpec] = {
    "Type": "string",
    "Reference": "string",
    "Status": "string",
    "Date": "date",
    "DueDate": "date",
    "UpdatedDateUTC": "datetime",
    "FullyPaidOnDate": "date",
    "CurrencyCode": "string",
    "CurrencyRate": "number",
    "LineAmountTypes": "string",
    "SubTotal": "number",
    "TotalTax": "number",
    "Total": "number",
    "HasAttachments": "bool",
    "Contact": CONTACT_SCHEMA,
}
INVOICE_SCHEMA: FieldSpec = {
    "InvoiceID": "guid",
    "InvoiceNumber": "string",
    **_DOCUMENT_FIELDS,
    "AmountDue": "number",
    "AmountPaid": "number",
    "AmountCredited": "number",
    "SentToContact": "bool",
    "IsDiscounted": "bool",
    "Url": "string",
}
CREDIT_NOTE_SCHEMA: FieldSpec = {
    "CreditNoteID": "guid",
    "CreditNoteNumber": "string",
    **_DOCUMENT_FIELDS,
    "RemainingCredit": "number",
}
_ACCOUNT_REF_SCHEMA: FieldSpec = {"AccountID": "guid", "Code": "string"}
PAYMENT_SCHEMA: FieldSpec = {
    "PaymentID": "guid",
    "Date": "date",
    "Amount": "number",
    "CurrencyRate": "number",
    "Reference": "string",
    "Status": "string",
    "PaymentType": "string",
    "IsReconciled": "bool",
    "UpdatedDateUTC": "datetime",
    "Invoice": INVOICE_SCHEMA,
    "CreditNote": CREDIT_NOTE_SCHEMA,
    "Account": _ACCOUNT_REF_SCHEMA,
}
