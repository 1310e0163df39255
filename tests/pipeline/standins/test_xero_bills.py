"""The Xero stand-in's bills (ACCPAY), supplier credit notes and supplier contacts, over real HTTP.

What issue 13 sends: generated Cin7 purchases mapped with ``map_bill`` and suppliers with ``map_supplier``,
checked against the chart of accounts and tax rates the stand-in serves, and Xero's rules for bills that
differ from sales invoices (repeatable numbers, no Reference, no discounts, IsSupplier).
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.parse
from decimal import Decimal
from typing import Any

import pytest

from mappings.bill import map_bill
from mappings.cin7purchases import Cin7Purchase, Cin7Supplier
from mappings.reference import OrgReference
from mappings.rules import load_rules
from mappings.supplier import map_supplier
from pipeline.standins.generator import PurchaseSet, generate_purchases
from pipeline.standins.generator.purchase_documents import bills_of
from pipeline.standins.xero import XeroStandIn
from pipeline.standins.xero.contacts import NO_PRIMARY_EMAIL, TOO_MANY_PERSONS
from pipeline.standins.xero.document_lines import NO_BILL_DISCOUNTS, NO_DISCOUNTS
from pipeline.standins.xero.documents import EDIT_SETTLED
from tests.pipeline.standins.test_xero import Sdk, bearer, http, validate

# The main stand-in tests' fixtures (a stand-in, an SDK client on it, the OpenAPI spec, the SDK's token URLs
# restored), re-exported by the redundant aliases so that pytest finds them here.
from tests.pipeline.standins.test_xero import _restore_token_urls as _restore_token_urls  # noqa: PLC0414
from tests.pipeline.standins.test_xero import openapi as openapi  # noqa: PLC0414
from tests.pipeline.standins.test_xero import sdk as sdk  # noqa: PLC0414
from tests.pipeline.standins.test_xero import standin as standin  # noqa: PLC0414

NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
DAY = "2024-03-11"
EXCEEDS = "Payment amount exceeds the amount outstanding on this document"
WRONG_TYPE = "Credit Note cannot be allocated to an incorrect invoice type"


class Api:
    """Raw JSON calls to the stand-in's Accounting API, as the pipeline's payloads travel."""

    def __init__(self, standin: XeroStandIn, sdk: Sdk) -> None:
        self.base = standin.api_url
        self.headers = {**bearer(sdk), "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: Any = None, **query: str) -> Any:
        url = self.base + path + ("?" + urllib.parse.urlencode(query) if query else "")
        data = json.dumps(body).encode() if body is not None else None
        status, _, raw = http(method, url, data, self.headers)
        assert status == 200, (status, raw[:500])
        return json.loads(raw, parse_float=Decimal)

    def put(self, resource: str, *items: dict[str, Any]) -> list[dict[str, Any]]:
        """PUT items with ``summarizeErrors=false``: one result per element, failures included."""
        answer = self.call("PUT", f"/{resource}", {resource: list(items)}, summarizeErrors="false", unitdp="4")
        results: list[dict[str, Any]] = answer[resource]
        return results

    def created(self, resource: str, *items: dict[str, Any]) -> list[dict[str, Any]]:
        results = self.put(resource, *items)
        assert all(r["StatusAttributeString"] == "OK" for r in results), [errors(r) for r in results]
        return results

    def get(self, path: str, key: str, **query: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.call("GET", path, **query)[key]
        return found


def errors(result: dict[str, Any]) -> list[str]:
    return [e["Message"] for e in result.get("ValidationErrors") or []]


@pytest.fixture
def api(standin: XeroStandIn, sdk: Sdk) -> Api:
    return Api(standin, sdk)


@pytest.fixture(scope="module")
def purchases() -> PurchaseSet:
    return generate_purchases(7, 60, now=NOW)


def supplier_contact(api: Api, name: str = "Wombat Fasteners Pty Ltd", number: str = "SUP-1", **extra: Any) -> str:
    contact_id: str = api.created("Contacts", {"Name": name, "ContactNumber": number, **extra})[0]["ContactID"]
    return contact_id


def bill(contact_id: str, number: str = "SI-100", *lines: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "Type": "ACCPAY",
        "Contact": {"ContactID": contact_id},
        "InvoiceNumber": number,
        "Date": DAY,
        "DueDate": "2024-04-10",
        "Status": "AUTHORISED",
        "LineAmountTypes": "Exclusive",
        "LineItems": list(lines) or [bill_line()],
        **extra,
    }


def bill_line(unit: str = "100.00", account: str = "630", tax: str = "INPUT", **extra: Any) -> dict[str, Any]:
    line = {"Description": "Screw Pack M6", "Quantity": 1, "UnitAmount": unit, "AccountCode": account}
    return {**line, "TaxType": tax, **extra}


# ------------------------------------------------------------------------------ accounts and tax rates


def test_the_chart_of_accounts_holds_every_account_purchases_use(
    openapi: dict[str, Any], api: Api, purchases: PurchaseSet
) -> None:
    answer = api.call("GET", "/Accounts")
    validate(openapi, "Accounts", answer)
    accounts = {a["Code"]: a for a in answer["Accounts"]}
    used = {line["Account"] for p in purchases.purchases for b in bills_of(p) for line in b["Lines"]}
    used |= {c["Account"] for p in purchases.purchases for b in bills_of(p) for c in b.get("AdditionalCharges") or []}
    rules = load_rules()
    if rules.default_expense_account:
        used.add(rules.default_expense_account)
    assert used and used <= set(accounts)
    kinds = {code: (accounts[code]["Type"], accounts[code]["Class"]) for code in ("300", "425", "429", "630", "800")}
    assert kinds == {
        "300": ("DIRECTCOSTS", "EXPENSE"),
        "425": ("EXPENSE", "EXPENSE"),
        "429": ("EXPENSE", "EXPENSE"),
        "630": ("INVENTORY", "ASSET"),
        "800": ("CURRLIAB", "LIABILITY"),
    }
    assert accounts["800"]["SystemAccount"] == "CREDITORS"
    assert all(accounts[code]["Status"] == "ACTIVE" for code in used)


def test_tax_rates_hold_the_purchase_types_the_rules_map_to(openapi: dict[str, Any], api: Api) -> None:
    answer = api.call("GET", "/TaxRates")
    validate(openapi, "TaxRates", answer)
    rates = {r["TaxType"]: r for r in answer["TaxRates"]}
    purchase_types = {str(t) for t in load_rules().purchase_tax_types.values()}
    assert purchase_types <= set(rates)
    assert {"INPUT", "EXEMPTEXPENSES", "GSTONIMPORTS", "INPUTTAXED", "BASEXCLUDED"} <= set(rates)
    effective = {t: rates[t]["EffectiveRate"] for t in ("INPUT", "EXEMPTEXPENSES", "GSTONIMPORTS", "INPUTTAXED")}
    assert effective == {"INPUT": 10, "EXEMPTEXPENSES": 0, "GSTONIMPORTS": 0, "INPUTTAXED": 0}
    flags = ("CanApplyToAssets", "CanApplyToEquity", "CanApplyToExpenses", "CanApplyToLiabilities", "CanApplyToRevenue")
    # As the spec's example organisation has them: INPUT2 for INPUT, OUTPUT2 for OUTPUT, its GSTONIMPORTS.
    assert [rates["INPUT"][f] for f in flags] == [True, True, True, True, False]
    assert [rates["OUTPUT"][f] for f in flags] == [True, True, False, True, True]
    assert [rates["GSTONIMPORTS"][f] for f in flags] == [False, False, False, True, False]
    assert all(rates[t]["CanApplyToExpenses"] for t in ("EXEMPTEXPENSES", "INPUTTAXED", "BASEXCLUDED"))
    assert all(rates[t]["Status"] == "ACTIVE" for t in purchase_types)


# --------------------------------------------------------------------------- generated bills, to the cent


def _reference(api: Api) -> OrgReference:
    """What the pipeline reads from Xero before mapping: account codes, the Rounding account, tax rates."""
    accounts = api.get("/Accounts", "Accounts")
    rates = api.get("/TaxRates", "TaxRates")
    return OrgReference(
        account_codes=frozenset(a["Code"] for a in accounts if a["Status"] == "ACTIVE"),
        base_currency="AUD",
        rounding_account=next(a["Code"] for a in accounts if a.get("SystemAccount") == "ROUNDING"),
        xero_tax_rates={r["TaxType"]: Decimal(str(r["EffectiveRate"])) for r in rates if r["Status"] == "ACTIVE"},
    )


def test_generated_purchases_mapped_with_map_bill_are_accepted_with_cin7s_totals(
    standin: XeroStandIn, api: Api, purchases: PurchaseSet
) -> None:
    rules, reference = load_rules(), _reference(api)
    suppliers = {s["ID"]: Cin7Supplier.model_validate(s) for s in purchases.suppliers}
    contacts = [map_supplier(s).payload.to_json() for s in suppliers.values()]
    api.created("Contacts", *contacts)
    sent: list[tuple[dict[str, Any], Any]] = []
    for raw in purchases.purchases:
        purchase = Cin7Purchase.model_validate(raw)
        for invoice in purchase.invoices:
            if invoice.status in ("AUTHORISED", "PAID"):
                mapped = map_bill(
                    purchase, invoice, supplier=suppliers[purchase.supplier_id], rules=rules, reference=reference
                )
                sent.append((mapped.to_json(), invoice))
    kinds = {(payload["LineAmountTypes"], payload["CurrencyCode"]) for payload, _ in sent}
    assert {("Exclusive", "AUD"), ("Inclusive", "AUD")} <= kinds and any(c != "AUD" for _, c in kinds)
    results = api.put("Invoices", *(payload for payload, _ in sent))
    assert [errors(r) for r in results if r["StatusAttributeString"] != "OK"] == []
    for result, (payload, invoice) in zip(results, sent, strict=True):
        totals = (Decimal(str(result[k])) for k in ("SubTotal", "TotalTax", "Total"))
        assert tuple(totals) == (invoice.total_before_tax, invoice.tax, invoice.total), payload["InvoiceNumber"]
        assert result["Type"] == "ACCPAY" and result["InvoiceNumber"] == payload["InvoiceNumber"]
        assert result["Contact"]["ContactNumber"] == payload["Contact"]["ContactNumber"]
        assert Decimal(str(result["CurrencyRate"])) == Decimal(payload.get("CurrencyRate", "1"))
    assert {c["ContactNumber"] for c in standin.contacts() if c["IsSupplier"]} == {
        p["Contact"]["ContactNumber"] for p, _ in sent
    }


def test_a_mapped_supplier_keeps_its_tax_number_and_five_people(
    openapi: dict[str, Any], api: Api, purchases: PurchaseSet
) -> None:
    crowded = next(s for s in purchases.suppliers if len(s["Contacts"]) > 6 and s.get("TaxNumber"))
    mapped = map_supplier(Cin7Supplier.model_validate(crowded))
    created = api.created("Contacts", mapped.payload.to_json())[0]
    assert len(created["ContactPersons"]) == 5 and mapped.left_out
    answer = api.call("GET", f"/Contacts/{created['ContactID']}")
    validate(openapi, "Contacts", answer)
    got = answer["Contacts"][0]
    assert got["TaxNumber"] == "".join(crowded["TaxNumber"].split())
    assert got["ContactPersons"] == mapped.payload.to_json()["ContactPersons"]
    assert got["IsSupplier"] is False


# ------------------------------------------------------------------------------------------- validation


def test_bills_are_validated_like_sales_invoices_with_xeros_purchase_rules(standin: XeroStandIn, api: Api) -> None:
    contact_id = supplier_contact(api)
    results = api.put(
        "Invoices",
        bill(contact_id, "V-1", bill_line(tax="OUTPUT")),
        bill(contact_id, "V-2", bill_line(tax="NOPE")),
        bill(contact_id, "V-3", bill_line(account="999")),
        bill(contact_id, "V-4", bill_line(account="800")),
        bill(contact_id, "V-5", bill_line(DiscountRate=10)),
        bill(contact_id, "V-6", bill_line(LineAmount="99.00")),
        bill(contact_id, "V-7", LineAmountTypes="Gross"),
        {**bill(contact_id, "V-8"), "Contact": {}},
        bill(contact_id, "V-9", bill_line(tax="GSTONIMPORTS", account="429"), Reference="ignored on bills"),
    )
    assert [errors(r) for r in results] == [
        ["The TaxType code 'OUTPUT' does not exist or cannot be used for this type of transaction."],
        ["The TaxType code 'NOPE' does not exist or cannot be used for this type of transaction."],
        ["Account code '999' is not a valid code for this document."],
        ["Account code '800' is not a valid code for this document."],
        [NO_BILL_DISCOUNTS],
        ["The line total 99.00 does not match the expected line total 100.00 (Quantity x UnitAmount less discount)."],
        ["'Gross' is not a valid LineAmountTypes value."],
        ["A Contact must be specified for this type of transaction"],
        [],
    ]
    assert "Reference" not in results[8] and results[8]["Total"] == 100
    inclusive = api.created("Invoices", bill(contact_id, "V-10", bill_line(unit="110.00"), LineAmountTypes="Inclusive"))
    assert (inclusive[0]["SubTotal"], inclusive[0]["TotalTax"], inclusive[0]["Total"]) == (100, 10, 110)
    assert [i["InvoiceNumber"] for i in standin.invoices()] == ["V-9", "V-10"]


def test_a_bill_finds_or_creates_its_supplier_by_number_or_name(standin: XeroStandIn, api: Api) -> None:
    contact_id = supplier_contact(api, number="SUP-7")
    by_number = {**bill(contact_id, "C-1"), "Contact": {"ContactNumber": "SUP-7"}}
    by_name = {**bill(contact_id, "C-2"), "Contact": {"Name": "Brolga Paper Mills"}}
    unknown = {**bill(contact_id, "C-3"), "Contact": {"ContactNumber": "NOPE"}}
    results = api.put("Invoices", by_number, by_name, unknown)
    assert results[0]["Contact"]["ContactID"] == contact_id
    assert results[1]["StatusAttributeString"] == "OK" and results[1]["Contact"]["ContactID"] != contact_id
    assert errors(results[2]) == ["The contact with ContactNumber NOPE could not be found."]
    assert {c["Name"]: c["IsSupplier"] for c in standin.contacts()} == {
        "Wombat Fasteners Pty Ltd": True,
        "Brolga Paper Mills": True,
    }


def test_bill_numbers_may_repeat_and_every_lookup_finds_all_of_them(api: Api) -> None:
    first, second = supplier_contact(api), supplier_contact(api, "Eureka Plastics", "SUP-2")
    a, b = api.created("Invoices", bill(first, "1001"), bill(second, "1001"))
    again = api.created("Invoices", bill(first, "1001"))[0]
    assert len({a["InvoiceID"], b["InvoiceID"], again["InvoiceID"]}) == 3
    # Sales invoice numbers stay unique, and a bill's number does not block a sale's.
    sale = {**bill(first, "1001"), "Type": "ACCREC", "LineItems": [bill_line(account="200", tax="OUTPUT")]}
    assert api.put("Invoices", sale)[0]["StatusAttributeString"] == "OK"
    assert errors(api.put("Invoices", sale)[0]) == ["Invoice # must be unique."]
    bills = {a["InvoiceID"], b["InvoiceID"], again["InvoiceID"]}
    by_number = api.get("/Invoices", "Invoices", InvoiceNumbers="1001")
    assert {i["InvoiceID"] for i in by_number if i["Type"] == "ACCPAY"} == bills and len(by_number) == 4
    by_ids = api.get("/Invoices", "Invoices", IDs=f"{a['InvoiceID']},{b['InvoiceID']}")
    assert {i["InvoiceID"] for i in by_ids} == {a["InvoiceID"], b["InvoiceID"]}
    where = f'Type=="ACCPAY" AND Contact.ContactID==guid("{first}")'
    found = api.get("/Invoices", "Invoices", where=where)
    assert {i["InvoiceID"] for i in found} == {a["InvoiceID"], again["InvoiceID"]}
    both = api.get("/Invoices", "Invoices", where=where + ' AND InvoiceNumber=="1001"', page="1")
    assert {i["InvoiceID"] for i in both} == {a["InvoiceID"], again["InvoiceID"]}
    assert all(i["LineItems"] for i in both)
    assert api.get("/Invoices", "Invoices", where=f'Type=="ACCREC" && Contact.ContactID==guid("{second}")') == []


# ------------------------------------------------------------------------------- payments and credit notes


def test_payments_on_a_bill_reduce_what_is_owed_until_it_is_paid(api: Api) -> None:
    contact_id = supplier_contact(api)
    doc = api.created("Invoices", bill(contact_id))[0]  # 100.00 + GST = 110.00
    payment = {"Invoice": {"InvoiceID": doc["InvoiceID"]}, "Account": {"Code": "090"}, "Date": DAY, "Amount": 60}
    paid = api.created("Payments", payment)[0]
    assert paid["PaymentType"] == "ACCPAYPAYMENT" and paid["Invoice"]["InvoiceID"] == doc["InvoiceID"]
    partly = api.get(f"/Invoices/{doc['InvoiceID']}", "Invoices")[0]
    assert (partly["Status"], partly["AmountPaid"], partly["AmountDue"]) == ("AUTHORISED", 60, 50)
    assert errors(api.put("Payments", {**payment, "Amount": 51})[0]) == [EXCEEDS]
    api.created("Payments", {**payment, "Amount": 50})
    settled = api.get(f"/Invoices/{doc['InvoiceID']}", "Invoices")[0]
    assert (settled["Status"], settled["AmountDue"], len(settled["Payments"])) == ("PAID", 0, 2)
    edit = {"InvoiceID": doc["InvoiceID"], "DueDate": "2024-05-01"}
    answer = api.call("POST", "/Invoices", {"Invoices": [edit]}, summarizeErrors="false")
    assert errors(answer["Invoices"][0]) == [EDIT_SETTLED]


def test_supplier_credit_notes_allocate_to_bills_only(api: Api) -> None:
    contact_id = supplier_contact(api)
    doc = api.created("Invoices", bill(contact_id))[0]
    sale = api.created(
        "Invoices", {**bill(contact_id, "S-1"), "Type": "ACCREC", "LineItems": [bill_line(account="200", tax="OUTPUT")]}
    )[0]
    note = {
        "Type": "ACCPAYCREDIT",
        "Contact": {"ContactID": contact_id},
        "CreditNoteNumber": "CR-1",
        "Date": DAY,
        "Status": "AUTHORISED",
        "LineItems": [bill_line(unit="20.00")],
    }
    discounted = {**note, "LineItems": [bill_line(unit="20.00", DiscountRate=5)]}
    supplier_note, refused = api.put("CreditNotes", note, discounted)
    assert supplier_note["StatusAttributeString"] == "OK" and supplier_note["Total"] == 22
    assert errors(refused) == [NO_DISCOUNTS]
    sales_lines = [bill_line(unit="20.00", account="200", tax="OUTPUT")]
    sales_note = api.created("CreditNotes", {**note, "Type": "ACCRECCREDIT", "LineItems": sales_lines})[0]

    def allocate(credit: dict[str, Any], invoice: dict[str, Any], amount: str) -> dict[str, Any]:
        body = {"Allocations": [{"Invoice": {"InvoiceID": invoice["InvoiceID"]}, "Amount": amount, "Date": DAY}]}
        path = f"/CreditNotes/{credit['CreditNoteID']}/Allocations"
        result: dict[str, Any] = api.call("PUT", path, body, summarizeErrors="false")["Allocations"][0]
        return result

    assert errors(allocate(supplier_note, sale, "5.00")) == [WRONG_TYPE]
    assert errors(allocate(sales_note, doc, "5.00")) == [WRONG_TYPE]
    assert allocate(supplier_note, doc, "22.00")["StatusAttributeString"] == "OK"
    credited = api.get(f"/Invoices/{doc['InvoiceID']}", "Invoices")[0]
    assert (credited["AmountCredited"], credited["AmountDue"]) == (22, 88)
    remaining = api.get(f"/CreditNotes/{supplier_note['CreditNoteID']}", "CreditNotes")[0]
    assert (remaining["Status"], remaining["RemainingCredit"]) == ("PAID", 0)


# ------------------------------------------------------------------------------------------- contacts


def test_contacts_keep_tax_numbers_and_people_and_become_suppliers_through_a_bill(
    openapi: dict[str, Any], standin: XeroStandIn, api: Api
) -> None:
    people = [
        {"FirstName": "Ada", "LastName": "Byrne", "EmailAddress": "ada@wombat.example.com", "IncludeInEmails": True},
        {"FirstName": "Bo", "LastName": "Ng", "EmailAddress": "bo@wombat.example.com", "IncludeInEmails": False},
    ]
    contact_id = supplier_contact(
        api, TaxNumber="53004085616", EmailAddress="accounts@wombat.example.com", ContactPersons=people
    )
    api.created("Contacts", {"Name": "Other Co", "TaxNumber": "11222333444"})
    found = api.get("/Contacts", "Contacts", where='TaxNumber=="53004085616"')
    assert [c["ContactID"] for c in found] == [contact_id]
    assert "ContactPersons" not in found[0]
    paged = api.get("/Contacts", "Contacts", where='TaxNumber=="53004085616"', page="1")
    assert paged[0]["ContactPersons"] == people
    assert "ContactPersons" not in api.get("/Contacts", "Contacts", page="1", summaryOnly="true")[0]
    single = api.call("GET", f"/Contacts/{contact_id}")
    validate(openapi, "Contacts", single)
    got = single["Contacts"][0]
    assert (got["TaxNumber"], got["ContactPersons"], got["IsSupplier"]) == ("53004085616", people, False)

    six = [{"FirstName": f"P{i}", "EmailAddress": f"p{i}@example.com"} for i in range(6)]
    too_many = {"ContactID": contact_id, "ContactPersons": six}
    no_email = {"Name": "Spinifex Chemicals", "ContactPersons": people[:1]}
    read_only = {"Name": "Numbat Components", "IsSupplier": True, "IsCustomer": True}
    answer = api.call("POST", "/Contacts", {"Contacts": [too_many, no_email, read_only]}, summarizeErrors="false")
    assert [errors(c) for c in answer["Contacts"]] == [[TOO_MANY_PERSONS], [NO_PRIMARY_EMAIL], []]
    assert (answer["Contacts"][2]["IsSupplier"], answer["Contacts"][2]["IsCustomer"]) == (False, False)

    before = api.get(f"/Contacts/{contact_id}", "Contacts")[0]
    api.created("Invoices", bill(contact_id, Status="DRAFT"))
    after = api.get(f"/Contacts/{contact_id}", "Contacts")[0]
    assert (after["IsSupplier"], after["IsCustomer"]) == (True, False)
    # Xero derives the flag without bumping the contact's UpdatedDateUTC.
    assert after["UpdatedDateUTC"] == before["UpdatedDateUTC"]
    suppliers = api.get("/Contacts", "Contacts", where="IsSupplier==true")
    assert [c["ContactID"] for c in suppliers] == [contact_id]
    assert {c["Name"] for c in standin.contacts() if not c["IsSupplier"]} == {"Other Co", "Numbat Components"}


def test_bill_responses_validate_against_the_openapi_schemas(openapi: dict[str, Any], api: Api) -> None:
    contact_id = supplier_contact(api)
    # Numbers, not strings, since a refused element echoes its input.
    refused = bill(contact_id, "X", bill_line(DiscountRate=5) | {"UnitAmount": 100})
    results = api.put("Invoices", bill(contact_id), refused)
    assert errors(results[1]) == [NO_BILL_DISCOUNTS]
    validate(openapi, "Invoices", {"Invoices": results})
    invoice_id = results[0]["InvoiceID"]
    for path in (f"/Invoices/{invoice_id}", "/Invoices?page=1", "/Invoices?where=Type%3D%3D%22ACCPAY%22"):
        validate(openapi, "Invoices", api.call("GET", path))
