"""The Grafana dashboard and the Prometheus alert rules in ``deploy/`` are valid and read only real metrics.

``promtool check rules`` (Debian's ``prometheus`` package) checks the rules file; its unit tests
(``alerts.test.yml``) check that the alerts fire on the series they are about. Every ``billing_*``
name in a dashboard or rule expression must be a series ``worker.metrics.REGISTRY`` exposes: a
counter as ``<name>_total``, a histogram as ``<name>_bucket``, ``_sum`` and ``_count``, a gauge as
its own name (prometheus_client's naming; the ``_created`` series are turned off).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

import worker.metrics  # noqa: F401 - registers the metrics the shell defines (webhooks)
from jobs.metrics import REGISTRY

ROOT = Path(__file__).resolve().parents[3]
DASHBOARD = ROOT / "deploy" / "grafana" / "billing-worker.json"
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "alerts.test.yml"

SUFFIXES_BY_TYPE: dict[str, tuple[str, ...]] = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("", "_sum", "_count"),
    "info": ("_info",),
    "stateset": ("",),
    "unknown": ("",),
}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_BILLING_NAME = re.compile(r"(?<![A-Za-z0-9_:])billing_[A-Za-z0-9_:]*")


def metric_families(registry: CollectorRegistry) -> dict[str, str]:
    """Our metric families on ``registry``: name (as prometheus_client keeps it, no ``_total``) to type."""
    return {family.name: family.type for family in registry.collect() if family.name.startswith("billing_")}


def family_of(series: str, families: dict[str, str]) -> str | None:
    """The family a referenced series name belongs to, or None when no metric exposes that series."""
    for family, kind in families.items():
        if any(series == family + suffix for suffix in SUFFIXES_BY_TYPE[kind]):
            return family
    return None


def referenced_names(expression: str) -> set[str]:
    """The ``billing_*`` identifiers of a PromQL expression, outside string literals (label values)."""
    return set(_BILLING_NAME.findall(_STRING.sub('""', expression)))


def dashboard_expressions(node: Any) -> Iterator[str]:
    """Every PromQL expression of a dashboard: targets' ``expr`` and templating variables' queries."""
    if isinstance(node, dict):
        for key, value in node.items():
            promql = key == "expr" or (key in {"query", "definition"} and "billing_" in str(value))
            if promql and isinstance(value, str):
                yield value
            else:
                yield from dashboard_expressions(value)
    elif isinstance(node, list):
        for item in node:
            yield from dashboard_expressions(item)


def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return loaded


FAMILIES = metric_families(REGISTRY)


def test_the_name_rules_follow_prometheus_client() -> None:
    assert family_of("billing_messages_total", FAMILIES) == "billing_messages"
    assert family_of("billing_bill_run_seconds_bucket", FAMILIES) == "billing_bill_run_seconds"
    assert family_of("billing_message_seconds_count", FAMILIES) == "billing_message_seconds"
    assert family_of("billing_outbox_lag_seconds", FAMILIES) == "billing_outbox_lag_seconds"
    for wrong in ("billing_messages", "billing_bill_run_seconds", "billing_bill_run_seconds_total",
                  "billing_outbox_lag_seconds_count", "billing_queue_depth_total", "billing_messages_total_total",
                  "billing_no_such_metric_total"):
        assert family_of(wrong, FAMILIES) is None, wrong


def test_names_inside_label_values_are_not_references() -> None:
    expression = 'sum by (queue) (billing_queue_depth{queue="billing_not_a_metric"}) > 0'

    assert referenced_names(expression) == {"billing_queue_depth"}


def test_every_dashboard_expression_reads_exported_metrics() -> None:
    expressions = list(dashboard_expressions(dashboard()))
    referenced = set().union(*(referenced_names(expression) for expression in expressions))

    assert len(expressions) >= 20
    assert {name for name in referenced if family_of(name, FAMILIES) is None} == set()
    used = {family_of(name, FAMILIES) for name in referenced}
    assert used >= {"billing_messages", "billing_rejections", "billing_outbox_lag_seconds", "billing_queue_depth",
                    "billing_dead_letters", "billing_bill_runs", "billing_bill_run_seconds",
                    "billing_bill_run_failed_accounts", "billing_bill_run_last_finished_timestamp_seconds",
                    "billing_invoices"}


def test_the_dashboard_is_well_formed() -> None:
    board = dashboard()
    panels = board["panels"]
    ids = [panel["id"] for panel in panels]

    assert board["uid"] == "billing-worker"
    assert len(ids) == len(set(ids))
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        assert all(target["expr"].strip() for target in panel["targets"]), panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}"


def test_every_rule_expression_reads_exported_metrics() -> None:
    found = rules()
    referenced = set().union(*(referenced_names(rule["expr"]) for rule in found))

    assert {name for name in referenced if family_of(name, FAMILIES) is None} == set()
    assert {rule["alert"] for rule in found} >= {
        "BillingOutboxLagHigh", "BillingBillRunFailed", "BillingBillRunMissing", "BillingDeadLettersGrowing",
        "BillingRejectionsSpiking",
    }
    for rule in found:
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool is not on PATH (Debian: apt-get install prometheus)")
    return found


def test_promtool_accepts_the_rules() -> None:
    result = subprocess.run([promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules())} rules found" in result.stdout


def test_the_alerts_fire_on_the_series_they_watch() -> None:
    result = subprocess.run([promtool(), "test", "rules", RULE_TESTS.name], cwd=RULE_TESTS.parent,
                            capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stdout + result.stderr
