"""The periodic revalidation's metrics (issue 15): how many approved models are past their
revalidation grace, and how many are due. Part of ``metrics.GovernanceCollector`` (6 queries:
``review.revalidation_read.due_clocks``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric

from registry_app.review.revalidation_clock import DUE, OVERDUE
from registry_app.review.revalidation_read import due_clocks

__all__ = ["QUERIES", "revalidation_families"]

QUERIES = 6


def revalidation_families(now: dt.datetime) -> Iterator[Metric]:
    """``governance_revalidation_overdue_models`` and ``governance_revalidation_due_models``."""
    states = [clock.state for _, clock in due_clocks(now=now)]
    overdue = GaugeMetricFamily(
        "governance_revalidation_overdue_models",
        "Approved model versions (deployed, or their group's latest) past their revalidation date and grace",
    )
    overdue.add_metric([], float(states.count(OVERDUE)))
    yield overdue
    due = GaugeMetricFamily(
        "governance_revalidation_due_models",
        "Approved model versions due for revalidation, still within the policy's grace period",
    )
    due.add_metric([], float(states.count(DUE)))
    yield due
