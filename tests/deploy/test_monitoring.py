"""The shipped Prometheus alert rules and Grafana dashboard: valid PromQL, on series the pipeline serves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml

from pipeline.operations.metrics import METRIC_NAMES

MONITORING = Path(__file__).resolve().parents[2] / "deploy" / "monitoring"
# Series Prometheus itself makes.
PROMETHEUS_SERIES = frozenset({"up"})


def _series(expr: str) -> set[str]:
    """Every metric an expression selects; ValueError when it is not valid PromQL."""
    names: set[str] = set()

    def visit(node: Any) -> bool:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)
        return True

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def _rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(MONITORING.joinpath("alerts.yml").read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


@pytest.mark.parametrize("rule", _rules(), ids=lambda rule: str(rule.get("alert")))
def test_each_alert_is_valid_promql_on_served_series_with_severity_and_text(rule: dict[str, Any]) -> None:
    unknown = _series(rule["expr"]) - METRIC_NAMES - PROMETHEUS_SERIES
    assert not unknown, f"{rule['alert']} names series nobody serves: {sorted(unknown)}"
    assert rule["labels"]["severity"] in ("warning", "critical")
    assert rule["annotations"]["summary"] and rule["annotations"]["description"]
    promql_parser.parse_duration(rule["for"])


def test_the_alerts_cover_what_an_operator_must_hear_about() -> None:
    by_series: dict[str, set[str]] = {}
    for rule in _rules():
        for name in _series(rule["expr"]):
            by_series.setdefault(name, set()).add(rule["alert"])
    # No successful poll, dead letters open, lag, day budget, a paused tenant, a queue nobody consumes.
    for name in (
        "cin7xero_last_poll_success_timestamp_seconds",
        "cin7xero_dead_letters_open",
        "cin7xero_sync_lag_seconds",
        "cin7xero_xero_day_calls_remaining",
        "cin7xero_tenant_paused",
        "cin7xero_queue_consumers",
    ):
        assert name in by_series, f"no alert on {name}"
    assert len({rule["alert"] for rule in _rules()}) == len(_rules()), "alert names are unique"


def test_a_broken_expression_is_refused() -> None:
    with pytest.raises(ValueError, match="parenthesis"):
        _series("sum by (tenant (cin7xero_tenant_paused)")


def test_the_dashboard_queries_served_series_with_unique_panels() -> None:
    dashboard = json.loads(MONITORING.joinpath("dashboard.json").read_text(encoding="utf-8"))
    panels = dashboard["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels)
    used: set[str] = set()
    for panel in panels:
        for target in panel["targets"]:
            # Grafana's $variables are not PromQL: put a value in their place before parsing.
            expr = target["expr"].replace("$tenant", ".*")
            used |= _series(expr)
    assert used <= METRIC_NAMES, sorted(used - METRIC_NAMES)
    # Every series the pipeline serves is on the dashboard somewhere, bar the scrape's own error count.
    assert METRIC_NAMES - used <= {"cin7xero_metrics_read_errors_total"}
