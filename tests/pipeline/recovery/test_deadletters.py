"""An operator fixes the rules and requeues the dead letters: each invoice then syncs, once."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.ledger.models import DocumentState
from tests.pipeline.commands import run_cli
from tests.pipeline.conftest import Pipeline

pytestmark = pytest.mark.pipeline


def _cli(p: Pipeline, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli({**os.environ, **p.env}, *args, timeout=120)


def test_requeue_after_fixing_the_rules_syncs_each_invoice_once(
    make_pipeline: Callable[..., Pipeline], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = tmp_path / "rules.toml"
    monkeypatch.setenv("MAPPING_RULES_FILE", str(rules))  # absent for now: the packaged defaults apply
    p = make_pipeline(sales=80, seed=5)
    p.poll_and_wait()
    mapping_failures = {e.invoice_number for e in p.dataset.expectations if e.outcome == "dead_mapping"}
    assert mapping_failures and mapping_failures <= set(p.dead_reasons())

    listed = _cli(p, "dlq", "list", "--json", "--error-class", "mapping")
    assert listed.returncode == 0, listed.stderr
    letters = json.loads(listed.stdout)
    assert {letter["document_number"] for letter in letters} == mapping_failures
    shown = _cli(p, "dlq", "show", str(letters[0]["id"]))
    assert shown.returncode == 0 and letters[0]["document_number"] in shown.stdout

    dry = _cli(p, "dlq", "requeue", "--error-class", "mapping", "--dry-run")
    assert dry.returncode == 0 and dry.stdout.count("would requeue") == len(letters)

    # The operator maps the missing tax rule, the 0 % rule sent as GST and the unknown account, then requeues.
    rules.write_text(
        '[tax_types]\n"Zero Rated Imports" = "EXEMPTOUTPUT"\n"Tax on Sales" = "EXEMPTOUTPUT"\n\n'
        '[account_codes]\n"999" = "260"\n'
    )
    requeued = _cli(p, "dlq", "requeue", "--error-class", "mapping")
    assert requeued.returncode == 0, requeued.stderr
    p.poll_and_wait()
    # Requeueing again (a nervous operator) creates nothing twice.
    again = _cli(p, "dlq", "requeue", *[str(letter["id"]) for letter in letters])
    assert again.returncode == 0
    p.poll_and_wait()

    documents = p.documents()
    in_xero = [str(i["InvoiceNumber"]) for i in p.xero.invoices()]
    for number in mapping_failures:
        assert documents[number].state == DocumentState.SYNCED, documents[number].last_error
        assert in_xero.count(number) == 1
    assert not mapping_failures & set(p.dead_reasons())
    # Xero's own rejections are untouched by a rules fix and stay dead letters.
    assert {e.invoice_number for e in p.dataset.expectations if e.outcome == "dead_xero"} <= set(p.dead_reasons())
