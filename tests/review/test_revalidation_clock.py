"""Issue 15: the revalidation clock, pure (``review/revalidation_clock.py``) and from rows
(``review/revalidation_read.py``), with a frozen clock passed as ``now``."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from registry_app.models import ApprovalPolicy, Decision, Revalidation
from registry_app.models.registry import ApprovalStatus
from registry_app.review.revalidation_clock import (
    CURRENT,
    DUE,
    NOT_SUBJECT,
    OVERDUE,
    VersionFacts,
    clock_state,
    subject_ids,
)
from registry_app.review.revalidation_read import (
    approval_times,
    due_clocks,
    overdue_count,
    revalidation_clock_at,
    revalidation_clocks,
)
from tests.factories import (
    EndpointVariantFactory,
    ModelPackageFactory,
    ModelPackageGroupFactory,
    PackageObservationFactory,
)

T0 = dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC)


def _at(days: float) -> dt.datetime:
    return T0 + dt.timedelta(days=days)


def _clock(now: dt.datetime, **kw: Any) -> str:
    args: dict[str, Any] = {"subject": True, "every_days": 365, "grace_days": 30, "approved_at": T0}
    args["last_passed_at"] = None
    return clock_state(**(args | kw), now=now).state


# --------------------------------------------------------------------------------------------- pure


def test_current_then_due_then_overdue() -> None:
    assert _clock(_at(0)) == CURRENT
    assert _clock(_at(364.99)) == CURRENT
    assert _clock(_at(365)) == DUE  # now >= due_at
    assert _clock(_at(394.99)) == DUE
    assert _clock(_at(395)) == OVERDUE  # now >= due_at + grace


def test_zero_grace_is_overdue_at_once() -> None:
    assert _clock(_at(365), grace_days=0) == OVERDUE


def test_a_passed_revalidation_resets_the_anchor() -> None:
    state = clock_state(
        subject=True, every_days=365, grace_days=30, approved_at=T0, last_passed_at=_at(400), now=_at(500)
    )
    assert state.state == CURRENT
    assert state.anchor == _at(400) and state.due_at == _at(765) and state.overdue_at == _at(795)
    # An older revalidation than the approval (a re-approval since) does not move the anchor back.
    older = clock_state(subject=True, every_days=10, grace_days=0, approved_at=_at(5), last_passed_at=T0, now=_at(9))
    assert older.anchor == _at(5) and older.state == CURRENT


@pytest.mark.parametrize(
    "kw", [{"subject": False}, {"every_days": None}, {"approved_at": None}], ids=["not-subject", "never", "unknown"]
)
def test_not_subject(kw: dict[str, Any]) -> None:
    assert _clock(_at(1000), **kw) == NOT_SUBJECT


def test_subject_is_the_deployed_approved_version_else_the_latest_approved() -> None:
    deployed_group = [
        VersionFacts(1, 10, 1, approved=True, deployed=True),
        VersionFacts(2, 10, 2, approved=True, deployed=False),
        VersionFacts(3, 10, 3, approved=False, deployed=False),
    ]
    undeployed_group = [
        VersionFacts(4, 20, 1, approved=True, deployed=False),
        VersionFacts(5, 20, 2, approved=True, deployed=False),
        VersionFacts(6, 20, 3, approved=False, deployed=False),
    ]
    # A group serving only an unapproved version: nothing approved serves, and the latest approved does not.
    unapproved_serving = [
        VersionFacts(7, 30, 1, approved=True, deployed=False),
        VersionFacts(8, 30, 2, approved=False, deployed=True),
    ]
    assert subject_ids(deployed_group + undeployed_group + unapproved_serving) == {1, 5}


# --------------------------------------------------------------------------------------------- from rows

pytestmark = pytest.mark.django_db


def _high_risk(every: int = 365, grace: int = 30) -> None:
    ApprovalPolicy.objects.create(
        name="high",
        spec={"name": "high", "revalidate_every_days": every, "revalidation_grace_days": grace},
        is_default=True,
    )


def _approved(group: Any, version: int, approved_at: dt.datetime, **kw: Any) -> Any:
    package = ModelPackageFactory(group=group, version=version, approval_status=ApprovalStatus.APPROVED, **kw)
    Decision.objects.filter(pk=Decision.objects.create(package=package, kind="policy", status="Approved").pk).update(
        created_at=approved_at
    )
    return package


def test_rows_deployed_versus_latest_approved_and_reset() -> None:
    _high_risk()
    served, idle = ModelPackageGroupFactory(name="served"), ModelPackageGroupFactory(name="idle")
    v1 = _approved(served, 1, T0)
    v2 = _approved(served, 2, _at(100))
    EndpointVariantFactory(package=v1, endpoint__source=served.source)
    w1 = _approved(idle, 1, T0)
    w2 = _approved(idle, 2, _at(10))
    clocks = revalidation_clocks([v1, v2, w1, w2], now=_at(380))
    assert clocks[v1.pk].state == DUE  # deployed: due 365 days after its approval
    assert clocks[v2.pk].state == NOT_SUBJECT  # approved but not deployed while v1 is
    assert clocks[w1.pk].state == NOT_SUBJECT  # not the latest approved
    assert clocks[w2.pk].state == DUE and clocks[w2.pk].due_at == _at(375)
    assert revalidation_clocks([v1], now=_at(396))[v1.pk].state == OVERDUE

    Revalidation.objects.create(
        package=v1, policy_name="high", outcome=Revalidation.Outcome.PASSED, completed_at=_at(390)
    )
    reset = revalidation_clocks([v1], now=_at(396))[v1.pk]
    assert reset.state == CURRENT and reset.due_at == _at(755) and reset.last_revalidated_at == _at(390)


def test_approval_time_falls_back_to_when_the_mirror_saw_it_approved() -> None:
    package = ModelPackageFactory(approval_status=ApprovalStatus.APPROVED)
    PackageObservationFactory(package=package, observed_at=_at(3))
    PackageObservationFactory(package=package, observed_at=_at(1), changes={"description": ["a", "b"]})
    assert approval_times([package.pk]) == {package.pk: _at(3)}
    assert approval_times([package.pk], at=_at(2)) == {}


def test_clocks_cost_constant_queries(django_assert_num_queries: Any) -> None:
    _high_risk()
    packages = []
    for i in range(6):
        group = ModelPackageGroupFactory(name=f"g{i}")
        packages.append(_approved(group, 1, T0))
        EndpointVariantFactory(package=packages[-1], endpoint__source=group.source)
    packages = list(type(packages[0]).objects.filter(pk__in=[p.pk for p in packages]).select_related("group"))
    with django_assert_num_queries(5):
        clocks = revalidation_clocks(packages, now=_at(400))
    assert {c.state for c in clocks.values()} == {OVERDUE}


def test_due_list_and_overdue_gauge() -> None:
    _high_risk(every=30, grace=10)
    due = _approved(ModelPackageGroupFactory(), 1, _at(-35))
    overdue = _approved(ModelPackageGroupFactory(), 1, _at(-45))
    _approved(ModelPackageGroupFactory(), 1, _at(-5))  # current
    listed = due_clocks(now=T0)
    assert [(p.pk, c.state) for p, c in listed] == [(overdue.pk, OVERDUE), (due.pk, DUE)]
    assert overdue_count(now=T0) == 1


def test_clock_at_a_past_instant_uses_what_was_known_then() -> None:
    _high_risk(every=30, grace=10)
    package = _approved(ModelPackageGroupFactory(), 1, T0)
    Revalidation.objects.create(
        package=package, policy_name="high", outcome=Revalidation.Outcome.PASSED, completed_at=_at(35)
    )
    assert revalidation_clock_at(package, _at(20)).state == CURRENT
    assert revalidation_clock_at(package, _at(32)).state == DUE  # the revalidation had not happened yet
    assert revalidation_clock_at(package, _at(50)).state == CURRENT  # after it: anchor moved to day 35
    assert revalidation_clock_at(package, _at(-1)).state == NOT_SUBJECT  # not approved yet
