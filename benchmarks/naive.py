"""The naive baseline: a sequential, single-process sync as most integrations write it.

For each sale in Cin7's list: `sale?ID=`, `customer?ID=`, one Xero contact search by name, one
contact create when none is found, then one invoice create per invoice. Plain `requests`, no
ledger, no batching, no cache; on a 429 it sleeps Retry-After and tries again. The mapping is the
project's own (`mappings.map_invoice`, `mappings.map_contact`), so the work per invoice is the same
as the pipeline's and only the way of talking to the APIs differs.

Run as a subprocess (`python -m benchmarks.naive CONFIG.json OUT.json`) so that its peak RSS is its own.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from mappings import Cin7Customer, Cin7Sale, MappingError, OrgReference, load_rules, map_contact, map_invoice

# No Xero to read reference data from: only the rounding line needs an account.
ROUNDING_ONLY = OrgReference(rounding_account="860")

SYNCABLE = ("AUTHORISED", "AUTHORIZED", "PAID")
CIN7_PAGE_SIZE = 1000


@dataclass
class NaiveConfig:
    """Where the stand-ins are and how much to do."""

    cin7_api_url: str
    cin7_account_id: str
    cin7_application_key: str
    xero_api_url: str
    xero_token_url: str
    xero_connections_url: str
    xero_client_id: str
    xero_client_secret: str
    max_sales: int | None = None


@dataclass
class NaiveResult:
    """What the naive sync did, with wall-clock times (epoch seconds)."""

    started: float = 0.0
    finished: float = 0.0
    sales: int = 0
    synced: int = 0
    failed: int = 0
    retries_after_429: int = 0
    contacts_created: int = 0
    last_synced: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    peak_rss_mb: float = 0.0


class _Http:
    """A requests session that waits out 429s (Retry-After) and retries 5xx a few times."""

    def __init__(self, result: NaiveResult) -> None:
        self.session = requests.Session()
        self.result = result

    def call(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        for _attempt in range(50):
            response = self.session.request(method, url, timeout=(5, 60), **kwargs)
            if response.status_code == 429:
                self.result.retries_after_429 += 1
                time.sleep(float(response.headers.get("Retry-After") or 1))
                continue
            if response.status_code >= 500:
                time.sleep(0.5)
                continue
            return response
        return response


def _xero_literal(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _messages(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:300]}"
    found: list[str] = []
    for key in ("Invoices", "Contacts"):
        for element in body.get(key) or []:
            found.extend(str(e.get("Message")) for e in element.get("ValidationErrors") or [])
    for element in body.get("Elements") or []:
        found.extend(str(e.get("Message")) for e in element.get("ValidationErrors") or [])
    return f"HTTP {response.status_code}: {'; '.join(found) or str(body.get('Message') or '')[:300]}"


def _ok(response: requests.Response, key: str) -> dict[str, Any] | None:
    if response.status_code != 200:
        return None
    elements = response.json().get(key) or []
    if not elements or elements[0].get("HasErrors") or elements[0].get("ValidationErrors"):
        return None
    return dict(elements[0])


def run_naive(config: NaiveConfig) -> NaiveResult:
    """Sync every sale (or the first `max_sales`) one call at a time."""
    result = NaiveResult(started=time.time())
    http = _Http(result)
    rules = load_rules(None)
    cin7_headers = {
        "api-auth-accountid": config.cin7_account_id,
        "api-auth-applicationkey": config.cin7_application_key,
        "Accept": "application/json",
    }
    token = http.call(
        "POST",
        config.xero_token_url,
        data={"grant_type": "client_credentials"},
        auth=(config.xero_client_id, config.xero_client_secret),
    ).json()["access_token"]
    tenant = http.call("GET", config.xero_connections_url, headers={"Authorization": f"Bearer {token}"}).json()[0][
        "tenantId"
    ]
    xero_headers = {
        "Authorization": f"Bearer {token}",
        "xero-tenant-id": tenant,
        "Accept": "application/json",
        "Content-Type": "application/json",
    }

    rows: list[dict[str, Any]] = []
    page = 1
    while True:
        body = http.call(
            "GET",
            f"{config.cin7_api_url}/saleList",
            params={"Page": page, "Limit": CIN7_PAGE_SIZE},
            headers=cin7_headers,
        ).json()
        chunk = list(body.get("SaleList") or [])
        rows.extend(chunk)
        if len(chunk) < CIN7_PAGE_SIZE:
            break
        page += 1
    if config.max_sales is not None:
        rows = rows[: config.max_sales]
    discovered = time.time()

    for row in rows:
        result.sales += 1
        sale_json = http.call(
            "GET", f"{config.cin7_api_url}/sale", params={"ID": row["SaleID"]}, headers=cin7_headers
        ).json()
        sale = Cin7Sale.model_validate(sale_json)
        invoices = [i for i in sale.invoices if str(i.status or "").upper() in SYNCABLE]
        if not invoices:
            continue
        customer_rows = (
            http.call("GET", f"{config.cin7_api_url}/customer", params={"ID": sale.customer_id}, headers=cin7_headers)
            .json()
            .get("CustomerList")
            or []
        )
        customer = Cin7Customer.model_validate(customer_rows[0]) if customer_rows else None
        contact_id = _contact(http, config, xero_headers, customer, result) if customer else None
        if contact_id is None:
            result.failed += len(invoices)
            continue
        for invoice in invoices:
            try:
                payload = map_invoice(sale, invoice, customer=customer, rules=rules, reference=ROUNDING_ONLY).to_json()
            except MappingError as exc:
                result.failed += 1
                result.errors.append(str(exc)[:300])
                continue
            payload["Contact"] = {"ContactID": contact_id}
            response = http.call(
                "PUT",
                f"{config.xero_api_url}/Invoices",
                params={"summarizeErrors": "false", "unitdp": 4},
                headers=xero_headers,
                data=json.dumps({"Invoices": [payload]}),
            )
            if _ok(response, "Invoices") is None:
                result.failed += 1
                result.errors.append(f"{invoice.invoice_number}: {_messages(response)}")
                continue
            now = time.time()
            result.synced += 1
            result.last_synced = now
            result.latencies.append(now - discovered)
    result.finished = time.time()
    result.errors = result.errors[:20]
    return result


def _contact(
    http: _Http, config: NaiveConfig, headers: dict[str, str], customer: Cin7Customer, result: NaiveResult
) -> str | None:
    """One search by name per order; one create when nothing active has the name."""
    name = (customer.name or "").strip()
    found = http.call(
        "GET", f"{config.xero_api_url}/Contacts", params={"where": f"Name=={_xero_literal(name)}"}, headers=headers
    )
    if found.status_code == 200:
        for contact in found.json().get("Contacts") or []:
            if str(contact.get("ContactStatus") or "ACTIVE").upper() == "ACTIVE":
                return str(contact["ContactID"])
    try:
        payload = map_contact(customer, name=name).to_json()
        # A naive sync keys contacts by name only; it does not know the ContactNumber trick.
        payload.pop("ContactNumber", None)
    except MappingError as exc:
        result.errors.append(str(exc)[:300])
        return None
    created = http.call(
        "PUT",
        f"{config.xero_api_url}/Contacts",
        params={"summarizeErrors": "false"},
        headers=headers,
        data=json.dumps({"Contacts": [payload]}),
    )
    element = _ok(created, "Contacts")
    if element is None:
        result.errors.append(f"contact {name!r}: {_messages(created)}")
        return None
    result.contacts_created += 1
    return str(element["ContactID"])


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return 0.0


def main(argv: list[str] | None = None) -> None:
    """`python -m benchmarks.naive CONFIG.json OUT.json`."""
    args = argv if argv is not None else sys.argv[1:]
    config = NaiveConfig(**json.loads(Path(args[0]).read_text()))
    result = run_naive(config)
    result.peak_rss_mb = _peak_rss_mb()
    payload = asdict(result)
    payload["finished_at"] = datetime.fromtimestamp(result.finished, UTC).isoformat()
    Path(args[1]).write_text(json.dumps(payload))


if __name__ == "__main__":
    main()
